"""Run directories for the dashboard tests, made by real tiny training runs (built once per session).

completed-a / completed-b: full runs with an eval (a also has eval_before/, the real eval of a
2-step run of the same config, as a baseline), failed (a simulated kill), interrupted (Ctrl-C
raised from the metrics writer), malformed and half-written (damaged copies), running (a live
writer appends metrics.jsonl lines while the test reads them).
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from helpers_train import scratch_config
from tunix_rt.evidence import EVAL_BEFORE_DIR, EVAL_DIR

_BUILT: dict[str, Path] = {}
N_EVAL = 6
N_STEPS_A = 60


def write_constant_traces(path: Path, n: int = 32) -> Path:
    """Traces whose answer is always 7: a tiny model learns to write `Answer: 7` in 60 steps, so its
    real eval has right items (expected 7) and wrong ones (expected 8)."""
    rows = [{"trace_version": "1.0", "prompt": f"What is {k} plus 1?",
             "steps": [{"i": 0, "type": "result", "content": "It is 7."}], "final_answer": "7"}
            for k in range(n)]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_eval_set(path: Path) -> Path:
    rows = [
        {"id": f"q{k}", "prompt": f"What is {k} plus 1?", "expected_answer": "7" if k % 2 == 0 else "8",
         "section": "core", "category": "addition" if k < 3 else "subtraction",
         "difficulty": "easy" if k % 3 else "hard"}
        for k in range(N_EVAL)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


class _SimulatedKill(BaseException):
    """Ends a training run from outside, the way kill -9 ends its process's work (the run's
    manifest records it as the error of a "failed" run)."""


def _train(dataset: Path, output: Path, **training: Any) -> None:
    from tunix_rt.config import load_config
    from tunix_rt.recipes.sft import train
    from tunix_rt.train.request import TrainRequest

    config, notes = load_config(scratch_config(**training))
    train(TrainRequest(config=config, dataset=str(dataset), output=output, notes=notes,
                       argv=["tunix-rt", "train", "-o", str(output)]))  # fmt: skip


def _die_after_checkpoint(patch: pytest.MonkeyPatch, step: int) -> None:
    """The run dies right after its checkpoint of `step` is on disk."""
    from tunix_rt.train import checkpoint as ckpt

    real_save = ckpt.save_checkpoint

    def save_then_die(run_dir, **kwargs):
        path = real_save(run_dir, **kwargs)
        if kwargs["state"]["step"] == step:
            raise _SimulatedKill
        return path

    patch.setattr(ckpt, "save_checkpoint", save_then_die)


def _ctrl_c_after_step(patch: pytest.MonkeyPatch, step: int) -> None:
    """Ctrl-C arrives while the metrics line of `step` is written (as a KeyboardInterrupt would)."""
    from tunix_rt.evidence import RunDirectory

    original = RunDirectory.append_metrics

    def append(self, record):
        original(self, record)
        if record.get("step", 0) >= step:
            raise KeyboardInterrupt

    patch.setattr(RunDirectory, "append_metrics", append)


def build_runs(base: Path) -> Path:
    """ROOT with one directory per kind of run; returns ROOT. Cached for the session."""
    if "root" in _BUILT:
        return _BUILT["root"]
    data = write_constant_traces(base / "traces.jsonl")
    evalset = write_eval_set(base / "evalset.jsonl")
    root = base / "runs"
    root.mkdir()
    common = {"eval_set": str(evalset), "eval_max_new_tokens": 16, "save_every_steps": 20}
    _train(data, root / "completed-a", max_steps=N_STEPS_A, learning_rate=1e-2, **common)
    _train(data, root / "completed-b", max_steps=20, learning_rate=3e-3, **common)
    with pytest.MonkeyPatch.context() as patch, pytest.raises(_SimulatedKill):
        _die_after_checkpoint(patch, step=3)  # the run is meant to die: its directory is the "failed" case
        _train(data, root / "failed", max_steps=8, save_every_steps=3)
    with pytest.MonkeyPatch.context() as patch, pytest.raises(KeyboardInterrupt):
        _ctrl_c_after_step(patch, step=3)  # Ctrl-C at step 3: the "interrupted" case
        _train(data, root / "interrupted", max_steps=8)
    _damage(root)
    # completed-a/eval_before: the real eval of a 2-step run of the same config, as a baseline.
    _train(data, base / "short", max_steps=2, learning_rate=1e-2, **common)
    shutil.copytree(base / "short" / EVAL_DIR, root / "completed-a" / EVAL_BEFORE_DIR)
    (root / "datasets").mkdir()
    shutil.copy(data, root / "datasets" / "traces.jsonl")
    bad = root / "datasets" / "broken.jsonl"
    bad.write_text(data.read_text().splitlines()[0] + "\n" + '{"prompt": "x", "steps": []}\nnot json\n')
    _BUILT["root"] = root
    return root


def _damage(root: Path) -> None:
    malformed = root / "malformed"
    shutil.copytree(root / "completed-b", malformed)
    (malformed / "run_manifest.json").write_text('["not", "an", "object"]')
    (malformed / "eval" / "eval_summary.json").write_text("{broken")
    half = root / "half-written"
    shutil.copytree(root / "completed-b", half)
    text = (half / "run_manifest.json").read_text()
    (half / "run_manifest.json").write_text(text[: len(text) // 2])
    metrics = (half / "metrics.jsonl").read_text()
    (half / "metrics.jsonl").write_text(metrics[: len(metrics) - 20])


class LiveWriter:
    """Appends a finished run's metrics lines to ROOT/running/metrics.jsonl, one per `every`
    seconds, with status "running" in its manifest, like a training process would."""

    def __init__(self, root: Path, source: str = "completed-a", name: str = "running", every: float = 0.4):
        src, self.dir = root / source, root / name
        if self.dir.exists():
            shutil.rmtree(self.dir)
        shutil.copytree(
            src,
            self.dir,
            ignore=shutil.ignore_patterns(
                "eval*", "metrics.jsonl", "README.md", "final_model", "report.html"
            ),
        )
        manifest = json.loads((src / "run_manifest.json").read_text())
        manifest.update(status="running", summary=None, eval=None)
        (self.dir / "run_manifest.json").write_text(json.dumps(manifest))
        self.lines = [ln for ln in (src / "metrics.jsonl").read_text().splitlines() if '"loss"' in ln]
        self.every = every
        self.written = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def write_line(self) -> None:
        with open(self.dir / "metrics.jsonl", "a", encoding="utf-8") as handle:
            handle.write(self.lines[self.written] + "\n")
            handle.flush()
        self.written += 1

    def _run(self) -> None:
        while self.written < len(self.lines) and not self._stop.wait(self.every):
            self.write_line()

    def start(self) -> LiveWriter:
        self.write_line()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def wait_for(predicate, timeout: float = 20.0, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False
