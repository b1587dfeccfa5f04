"""End-to-end training runs on tiny models: equivalences, exact resume, failure handling, evidence."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers_models import make_tiny_model_dir
from helpers_train import pretrained_config, read_metrics, read_weights, scratch_config, write_traces
from tunix_rt.config import load_config
from tunix_rt.errors import ConfigError, RunDirError, TrainingError
from tunix_rt.recipes import sft
from tunix_rt.recipes.sft import train
from tunix_rt.train import checkpoint as ckpt
from tunix_rt.train import step as train_step
from tunix_rt.train.request import TrainRequest


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_traces(tmp_path_factory.mktemp("data") / "traces.jsonl", n=48)


def run(raw: dict, dataset: Path, output: Path, **kwargs) -> dict:
    config, notes = load_config(raw)
    return train(TrainRequest(config=config, dataset=str(dataset), output=output, notes=notes, **kwargs))


class Killed(BaseException):
    """Ends a training run from outside, the way kill -9 ends its process's work."""


def kill_after_checkpoint(monkeypatch, step: int) -> None:
    """Make the run die right after its checkpoint of `step` is on disk."""
    real_save = ckpt.save_checkpoint

    def save_then_die(run_dir, **kwargs):
        path = real_save(run_dir, **kwargs)
        if kwargs["state"]["step"] == step:
            raise Killed
        return path

    monkeypatch.setattr(ckpt, "save_checkpoint", save_then_die)


def assert_same_weights(a: Path, b: Path, atol: float = 1e-5) -> None:
    wa, wb = read_weights(a), read_weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], atol=atol, rtol=0, msg=name)


def test_gradient_accumulation_equals_the_big_batch(dataset, tmp_path) -> None:
    run(scratch_config(batch_size=8), dataset, tmp_path / "big")
    run(scratch_config(batch_size=4, gradient_accumulation_steps=2), dataset, tmp_path / "acc")
    run(scratch_config(batch_size=2, gradient_accumulation_steps=4), dataset, tmp_path / "acc4")
    big = [m["loss"] for m in read_metrics(tmp_path / "big")]
    for other in ("acc", "acc4"):
        losses = [m["loss"] for m in read_metrics(tmp_path / other)]
        assert losses == pytest.approx(big, rel=1e-5)
        assert_same_weights(tmp_path / "big", tmp_path / other)


@pytest.mark.parametrize("arch", ["scratch", "gpt2"])
def test_resume_reproduces_an_uninterrupted_run_exactly(arch, dataset, tmp_path, monkeypatch) -> None:
    # GPT-2 keeps dropout on, so this also proves the RNG state is restored.
    if arch == "scratch":
        raw = scratch_config(max_steps=20, save_every_steps=5, dtype="auto")
    else:
        raw = pretrained_config(
            make_tiny_model_dir(tmp_path / "gpt2", "gpt2"), max_steps=20, save_every_steps=5
        )
    run(raw, dataset, tmp_path / "straight")
    with monkeypatch.context() as patch, pytest.raises(Killed):
        kill_after_checkpoint(patch, step=10)
        run(raw, dataset, tmp_path / "resumed")
    assert json.loads((tmp_path / "resumed/run_manifest.json").read_text())["status"] == "failed"
    summary = run(raw, dataset, tmp_path / "resumed", resume=True)
    assert summary["global_step"] == 20 and summary["steps_this_process"] == 10
    straight, resumed = read_metrics(tmp_path / "straight"), read_metrics(tmp_path / "resumed")
    assert [m["step"] for m in resumed] == list(range(1, 21))  # no step repeated or lost
    assert [m["loss"] for m in resumed] == pytest.approx([m["loss"] for m in straight], abs=1e-5)
    assert_same_weights(tmp_path / "straight", tmp_path / "resumed")


def test_resume_may_extend_max_steps_but_refuses_other_changes(dataset, tmp_path) -> None:
    run(scratch_config(max_steps=4), dataset, tmp_path / "r")
    with pytest.raises(ConfigError, match=r"training\.learning_rate"):
        run(scratch_config(max_steps=4, learning_rate=1e-2), dataset, tmp_path / "r", resume=True)
    summary = run(scratch_config(max_steps=8), dataset, tmp_path / "r", resume=True)
    assert summary["global_step"] == 8
    assert [m["step"] for m in read_metrics(tmp_path / "r")] == list(range(1, 9))


@pytest.mark.parametrize("schedule", ["linear", "cosine", "constant"])
def test_a_resume_that_extends_the_run_continues_the_learning_rate(
    schedule, dataset, tmp_path, monkeypatch
) -> None:
    """Killed at step 4 of 8 and resumed to 12: the LR goes on from its value at step 4 (no jump)
    and decays over the remaining 8 steps to the new end; constant stays constant."""
    peak = 3e-3
    first = scratch_config(max_steps=8, save_every_steps=4, warmup_steps=1, lr_scheduler=schedule)
    with monkeypatch.context() as patch, pytest.raises(Killed):
        kill_after_checkpoint(patch, step=4)
        run(first, dataset, tmp_path / "r")
    run({**first, "training": {**first["training"], "max_steps": 12}}, dataset, tmp_path / "r", resume=True)
    lr = {m["step"]: m["lr"] for m in read_metrics(tmp_path / "r") if "lr" in m}
    assert sorted(lr) == list(range(1, 13))
    at_resume = {
        "linear": peak * 4 / 7,
        "cosine": peak * 0.5 * (1 + math.cos(math.pi * 3 / 7)),
        "constant": peak,
    }
    assert lr[4] == pytest.approx(at_resume[schedule], rel=1e-6)  # written before the kill
    for step in range(5, 13):
        progress = (step - 4) / 8
        shape = {"linear": 1 - progress, "cosine": 0.5 * (1 + math.cos(math.pi * progress)), "constant": 1.0}
        assert lr[step] == pytest.approx(lr[4] * shape[schedule], rel=1e-6, abs=1e-12), step
    # Continuous: the first resumed step moves the LR by no more than one step of the new decay.
    assert abs(lr[5] - lr[4]) <= lr[4] / 8 + 1e-12
    manifest = json.loads((tmp_path / "r/run_manifest.json").read_text())
    change = manifest["config_changes_on_resume"][-1]
    assert change["at_step"] == 4 and change["changed"]["training.max_steps"] == [8, 12]
    assert change["lr_schedule"]["total_steps"] == [8, 12]
    assert change["lr_schedule"]["lr_at_step"] == pytest.approx(lr[4], rel=1e-6)


def test_an_existing_run_is_never_overwritten_without_overwrite(dataset, tmp_path) -> None:
    run(scratch_config(max_steps=2), dataset, tmp_path / "r")
    with pytest.raises(RunDirError, match="--overwrite"):
        run(scratch_config(max_steps=2), dataset, tmp_path / "r")
    run(scratch_config(max_steps=3), dataset, tmp_path / "r", overwrite=True)
    assert read_metrics(tmp_path / "r")[-1]["step"] == 3


def test_overwrite_replaces_only_a_run_directory_or_an_empty_one(tmp_path, monkeypatch) -> None:
    from tunix_rt.evidence import RunDirectory

    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src/keep.py").write_text("precious = True\n")
    monkeypatch.chdir(project)
    for output in (Path("."), project / "src"):  # `--output . --overwrite` once wiped the directory
        with pytest.raises(RunDirError, match=r"not a tunix-rt run directory \(no run_manifest.json\)"):
            RunDirectory.open(output, resume=False, overwrite=True)
    assert (project / "src/keep.py").read_text() == "precious = True\n"
    with pytest.raises(RunDirError, match="is a file"):
        RunDirectory.open(project / "src/keep.py", resume=False, overwrite=True)

    (tmp_path / "empty").mkdir()
    RunDirectory.open(tmp_path / "empty", resume=False, overwrite=True).close()
    previous = tmp_path / "previous"
    (previous / "checkpoints").mkdir(parents=True)
    (previous / "run_manifest.json").write_text(json.dumps({"run_id": "old", "status": "completed"}))
    RunDirectory.open(previous, resume=False, overwrite=True).close()
    assert not (previous / "checkpoints").exists()
    # The new run's manifest is written at once, so even a run that dies at start can be replaced.
    assert json.loads((previous / "run_manifest.json").read_text())["run_id"] != "old"


def test_metrics_lines_split_on_newlines_only(tmp_path) -> None:
    from tunix_rt.evidence import RunDirectory

    run_dir = RunDirectory.open(tmp_path / "r", resume=False, overwrite=False)
    records = [{"step": 1, "note": "a\u2028b\u0085c"}, {"step": 2}]
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records) + '{"step": 3, "lo'
    (tmp_path / "r/metrics.jsonl").write_text(text, encoding="utf-8")
    try:
        assert run_dir.read_metrics() == records  # the torn last line of a killed run is still ignored
        assert run_dir.truncate_metrics_after(1) == 2
        assert run_dir.read_metrics() == records[:1]
    finally:
        run_dir.close()


def test_the_demo_replaces_only_its_own_runs(tmp_path) -> None:
    from tunix_rt.evidence import ensure_replaceable

    def run_dir(name: str, command: list[str]) -> Path:
        (tmp_path / name).mkdir()
        (tmp_path / name / "run_manifest.json").write_text(json.dumps({"command": command}))
        return tmp_path / name

    ensure_replaceable(
        run_dir("demo", ["tunix-rt", "demo", "--output", "x"]), by="the demo", subcommand="demo"
    )
    with pytest.raises(RunDirError, match="`tunix-rt demo` did not make"):
        ensure_replaceable(run_dir("train", ["tunix-rt", "train"]), by="the demo", subcommand="demo")
    (tmp_path / "other").mkdir()
    (tmp_path / "other/notes.txt").write_text("x")
    with pytest.raises(RunDirError, match="the demo replaces only run directories"):
        ensure_replaceable(tmp_path / "other", by="the demo", subcommand="demo")


def test_resume_logs_and_records_each_config_change_it_accepts(dataset, tmp_path) -> None:
    out = tmp_path / "r"
    run(scratch_config(max_steps=2), dataset, out)
    run(scratch_config(max_steps=3), dataset, out, resume=True)
    run(scratch_config(max_steps=3), dataset, out, resume=True)  # nothing changed: nothing recorded
    run(scratch_config(max_steps=4, logging_steps=2), dataset, out, resume=True)
    manifest = json.loads((out / "run_manifest.json").read_text())
    changes = manifest["config_changes_on_resume"]
    assert [{k: v for k, v in c.items() if k != "lr_schedule"} for c in changes] == [
        {"at_step": 2, "changed": {"training.max_steps": [2, 3]}},
        {"at_step": 3, "changed": {"training.logging_steps": [1, 2], "training.max_steps": [3, 4]}},
    ]
    # A new total also says how the learning rate went on (issue 13 §4).
    assert [c["lr_schedule"]["total_steps"] for c in changes] == [[2, 3], [3, 4]]
    log = (out / "training_log.txt").read_text(encoding="utf-8")
    assert "resume: config training.max_steps changed 2 -> 3" in log
    assert "resume: config training.logging_steps changed 1 -> 2" in log
    # config.resolved holds the latest values; undoing the recorded changes gives the original back.
    resolved = manifest["config"]["resolved"]
    assert resolved["training"]["max_steps"] == 4
    for entry in reversed(manifest["config_changes_on_resume"]):
        for key, (old, _new) in entry["changed"].items():
            section, name = key.split(".")
            resolved[section][name] = old
    assert resolved == load_config(scratch_config(max_steps=2))[0].to_dict()


def test_a_run_that_dies_at_once_still_names_the_command_that_made_it(tmp_path) -> None:
    from tunix_rt.evidence import RunDirectory, ensure_replaceable

    out = tmp_path / "demo"
    RunDirectory.open(out, resume=False, overwrite=False, command=["tunix-rt", "demo"]).close()
    assert json.loads((out / "run_manifest.json").read_text())["command"] == ["tunix-rt", "demo"]
    ensure_replaceable(out, by="the demo", subcommand="demo")  # the next demo may replace it
    with pytest.raises(RunDirError, match="did not make"):
        ensure_replaceable(out, by="the demo", subcommand="train")


def test_a_refused_resume_records_no_config_change(dataset, tmp_path) -> None:
    out = tmp_path / "r"
    run(scratch_config(max_steps=2), dataset, out)
    before = (out / "config.yaml").read_text(encoding="utf-8")
    resolved_before = json.loads((out / "run_manifest.json").read_text())["config"]["resolved"]
    other = write_traces(tmp_path / "other.jsonl", n=48, seed=5)
    # max_steps is safe to change, but another dataset makes the checkpoint refuse the resume.
    with pytest.raises(RunDirError, match="other settings"):
        run(scratch_config(max_steps=3), other, out, resume=True)
    assert (out / "config.yaml").read_text(encoding="utf-8") == before
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert "config_changes_on_resume" not in manifest
    assert manifest["config"]["resolved"] == resolved_before
    assert "config training.max_steps changed" not in (out / "training_log.txt").read_text(encoding="utf-8")


def test_a_crash_while_writing_a_checkpoint_leaves_the_previous_one_usable(
    dataset, tmp_path, monkeypatch
) -> None:
    raw = scratch_config(max_steps=10, save_every_steps=3)
    real_save = torch.save
    calls = {"n": 0}

    def dying_save(obj, path, *args, **kwargs):
        # Die halfway through the second checkpoint (after the model files, before trainer_state).
        if "step-00000006" in str(path) and Path(path).name == "scheduler.pt":
            raise OSError("simulated crash mid-write")
        calls["n"] += 1
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(ckpt.torch, "save", dying_save)
    with pytest.raises(OSError, match="simulated"):
        run(raw, dataset, tmp_path / "r")
    monkeypatch.setattr(ckpt.torch, "save", real_save)
    assert ckpt.latest_checkpoint(tmp_path / "r").name == "step-00000003"
    assert list((tmp_path / "r/checkpoints").glob(".tmp-*"))  # the half-written one is not "complete"
    manifest = json.loads((tmp_path / "r/run_manifest.json").read_text())
    assert manifest["status"] == "failed" and "simulated crash" in manifest["error"]

    run(raw, dataset, tmp_path / "r", resume=True)
    assert not list((tmp_path / "r/checkpoints").glob(".tmp-*"))
    run(raw, dataset, tmp_path / "straight")
    assert_same_weights(tmp_path / "straight", tmp_path / "r")


def train_cli(config: Path, dataset: Path, out: Path) -> list[str]:
    """`tunix-rt train` as a child process: what a user's shell would run."""
    return [sys.executable, "-m", "tunix_rt", "train", "--config", str(config), "--dataset", str(dataset),
            "--output", str(out)]  # fmt: skip


def test_a_run_a_live_process_is_writing_cannot_be_taken_by_a_second_one(dataset, tmp_path) -> None:
    import yaml

    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(scratch_config(max_steps=100_000, save_every_steps=2, logging_steps=1)))
    out = tmp_path / "r"
    first = subprocess.Popen(
        train_cli(config, dataset, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not _checkpointed_at_least(out, 2):
            time.sleep(0.1)
        run_id = json.loads((out / "run_manifest.json").read_text())["run_id"]
        for extra in (["--resume"], ["--overwrite"], []):
            second = subprocess.run(
                [*train_cli(config, dataset, out), *extra], capture_output=True, text=True, timeout=300
            )
            assert second.returncode != 0, extra
            assert "is being written by a live process (pid" in second.stderr, second.stderr
            assert f"pid {first.pid} " in second.stderr  # the holder is named
        assert first.poll() is None  # the first run went on, untouched
        manifest = json.loads((out / "run_manifest.json").read_text())
        assert manifest["run_id"] == run_id and manifest["status"] == "running"
        assert "resume_commands" not in manifest
    finally:
        first.kill()  # SIGKILL: the kernel drops the lock with the process
        first.wait()
    step = ckpt.read_state(ckpt.latest_checkpoint(out))["step"]
    resumed = subprocess.run(
        [*train_cli(config, dataset, out), "--resume", "--set", f"training.max_steps={step + 1}"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((out / "run_manifest.json").read_text())["status"] == "completed"


def test_kill_9_leaves_running_and_resume_takes_it_up(dataset, tmp_path) -> None:
    config = tmp_path / "c.yaml"
    import yaml

    config.write_text(yaml.safe_dump(scratch_config(max_steps=100_000, save_every_steps=2, logging_steps=1)))
    out = tmp_path / "r"
    cmd = train_cli(config, dataset, out)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not _checkpointed_at_least(out, 4):
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["status"] == "running"  # the truth: nobody recorded an ending
    last = ckpt.latest_checkpoint(out)
    assert last is not None
    resumed = subprocess.run(
        [*cmd, "--resume", "--set", "training.max_steps=" + str(ckpt.read_state(last)["step"] + 2)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((out / "run_manifest.json").read_text())["status"] == "completed"
    steps = [m["step"] for m in read_metrics(out)]
    assert steps == list(range(1, steps[-1] + 1))


def _checkpointed_at_least(run_dir: Path, step: int) -> bool:
    last = ckpt.latest_checkpoint(run_dir)
    try:
        return last is not None and ckpt.read_state(last)["step"] >= step
    except FileNotFoundError:  # rotated away between listing and reading
        return False


def test_a_nan_loss_stops_the_run_naming_the_step(dataset, tmp_path, monkeypatch) -> None:
    real = train_step.micro_batch_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(sft, "micro_batch_loss", poisoned)
    with pytest.raises(TrainingError, match="loss is nan at step 3"):
        run(scratch_config(max_steps=6), dataset, tmp_path / "r")
    manifest = json.loads((tmp_path / "r/run_manifest.json").read_text())
    assert manifest["status"] == "failed" and "step 3" in manifest["error"]


def test_the_evidence_folder_is_complete_and_parses(dataset, tmp_path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "r"
    run(
        scratch_config(max_steps=4, save_every_steps=2, logging_steps=2),
        dataset,
        out,
        argv=["tunix-rt", "train"],
    )
    for name in (
        "run_manifest.json",
        "metrics.jsonl",
        "training_log.txt",
        "config.yaml",
        "env_info.txt",
        "torch_version.txt",
        "cuda_check.txt",
        "nvidia_smi.txt",
        "pip_freeze.txt",
        "README.md",
    ):
        assert (out / name).is_file(), name
    manifest = json.loads((out / "run_manifest.json").read_text())
    for key in (
        "run_id",
        "created_at",
        "command",
        "config",
        "dataset",
        "model",
        "tokenizer",
        "device",
        "versions",
        "seed",
        "status",
        "timings",
        "summary",
    ):
        assert key in manifest, key
    assert manifest["status"] == "completed"
    assert set(manifest["summary"]) == {
        "global_step",
        "epochs",
        "final_loss",
        "train_runtime_s",
        "train_tokens",
        "tokens_per_sec",
        "samples_per_sec",
        "peak_memory_mb",
    }
    assert set(manifest["loop"]) >= {"checkpoint_s", "mfu", "first_step_s", "steps_this_process"}
    assert manifest["summary"]["global_step"] == 4
    assert manifest["dataset"]["count"] == 48 and len(manifest["dataset"]["sha256"]) == 64
    assert manifest["device"]["type"] == "cpu" and manifest["device"]["world_size"] == 1
    metrics = read_metrics(out)
    assert [m["step"] for m in metrics] == [2, 4]
    assert set(metrics[0]) >= {
        "step",
        "epoch",
        "loss",
        "lr",
        "grad_norm",
        "tokens",
        "tokens_per_sec",
        "samples_per_sec",
        "elapsed_s",
    }
    assert manifest["summary"]["final_loss"] == pytest.approx(metrics[-1]["loss"], rel=1e-6)
    log = (out / "training_log.txt").read_text(encoding="utf-8")
    assert "step 4/4" in log and "\r" not in log
    assert [p.name for p in ckpt.list_checkpoints(out)] == ["step-00000002", "step-00000004"]
    AutoModelForCausalLM.from_pretrained(out / "final_model")
    AutoTokenizer.from_pretrained(out / "final_model")


def test_ctrl_c_saves_a_checkpoint_at_a_step_boundary_and_resume_continues(dataset, tmp_path) -> None:
    import yaml

    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(scratch_config(max_steps=100_000, logging_steps=1)))
    out = tmp_path / "r"
    cmd = train_cli(config, dataset, out)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (
        (out / "metrics.jsonl").is_file() and len((out / "metrics.jsonl").read_text().splitlines()) >= 3
    ):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    last = ckpt.latest_checkpoint(out)
    state = ckpt.read_state(last)
    assert state["reason"] == "interrupted"
    assert read_metrics(out)[-1]["step"] == state["step"]  # weights and counters agree
    assert "interrupted: checkpoint" in (out / "training_log.txt").read_text()
    assert (out / "README.md").is_file()  # the evidence index exists for interrupted runs too
    resumed = subprocess.run(
        [*cmd, "--resume", "--set", f"training.max_steps={state['step'] + 2}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert [m["step"] for m in read_metrics(out)] == list(range(1, state["step"] + 3))
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["command"][:2] == ["tunix-rt", "train"] and "--resume" not in manifest["command"]
    assert len(manifest["resume_commands"]) == 1 and "--resume" in manifest["resume_commands"][0]


def test_eval_after_training_joins_the_manifest_and_metrics(dataset, tmp_path) -> None:
    evalset = tmp_path / "eval.jsonl"
    evalset.write_text(
        "\n".join(
            json.dumps(
                {
                    "id": f"q{k}",
                    "prompt": f"What is {k} plus 1?",
                    "expected_answer": str(k + 1),
                    "section": "core",
                    "category": "addition",
                    "difficulty": "easy",
                }
            )
            for k in range(5)
        )
        + "\n"
    )
    out = tmp_path / "r"
    run(scratch_config(max_steps=3, eval_set=str(evalset), eval_max_new_tokens=8), dataset, out)
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert manifest["eval"]["n_items"] == 5 and 0.0 <= manifest["eval"]["primary_score"] <= 1.0
    assert (out / "eval/predictions.jsonl").is_file() and (out / "eval/eval_summary.json").is_file()
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["eval_primary_score"] == manifest["eval"]["primary_score"]

    # `tunix-rt eval RUN` on the same eval set gives the very score the run recorded: same dtype,
    # max_new_tokens (the run's own 8, not the command's 256) and rendering, the same predictions.
    from tunix_rt.cli import main

    again = tmp_path / "again"
    assert main(["eval", "--model", str(out), "--eval-set", str(evalset), "--output", str(again)]) == 0
    during = json.loads((out / "eval/eval_summary.json").read_text())
    after = json.loads((again / "eval_summary.json").read_text())
    assert after["primary_score"] == during["primary_score"] == manifest["eval"]["primary_score"]
    for key in ("dtype", "max_new_tokens", "batch_size", "template", "device"):
        assert after["generation"][key] == during["generation"][key], key
    assert (
        during["generation"]["max_new_tokens"] == 8
        and after["generation"]["settings_from"] == "the run's config"
    )

    def predictions(path: Path) -> list[tuple]:
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        return [(r["id"], r["prediction"], r["answer"], r["correct"]) for r in rows]

    assert predictions(again / "predictions.jsonl") == predictions(out / "eval/predictions.jsonl")


def test_resume_refuses_a_changed_dataset(dataset, tmp_path) -> None:
    run(scratch_config(max_steps=2), dataset, tmp_path / "r")
    other = write_traces(tmp_path / "other.jsonl", n=48, seed=5)
    with pytest.raises(RunDirError, match="dataset_sha256"):
        run(scratch_config(max_steps=4), other, tmp_path / "r", resume=True)


def test_adafactor_and_constant_schedule_train(dataset, tmp_path) -> None:
    summary = run(
        scratch_config(max_steps=4, optimizer="adafactor", lr_scheduler="constant"), dataset, tmp_path / "r"
    )
    losses = [m["loss"] for m in read_metrics(tmp_path / "r")]
    assert summary["global_step"] == 4 and losses[-1] < losses[0]
    assert {m["lr"] for m in read_metrics(tmp_path / "r")[1:]} == {3e-3}


def test_packed_and_padded_runs_train_alike_and_the_layout_is_recorded(
    dataset, tmp_path, monkeypatch
) -> None:
    run(scratch_config(batch_size=8), dataset, tmp_path / "packed")
    padded = scratch_config(batch_size=8)
    padded["data"] = {"packing": False}
    run(padded, dataset, tmp_path / "padded")
    layouts = {
        name: json.loads((tmp_path / name / "run_manifest.json").read_text())["plan"]["layout"]
        for name in ("packed", "padded")
    }
    assert layouts == {"packed": "packed", "padded": "padded: data.packing is false"}
    losses = [[m["loss"] for m in read_metrics(tmp_path / name)] for name in ("packed", "padded")]
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)
    assert_same_weights(tmp_path / "packed", tmp_path / "padded", atol=1e-4)

    # A model whose attention would mix packed examples is trained on padded rows, and says so.
    import transformers.masking_utils as masking

    monkeypatch.setattr(masking, "find_packed_sequence_indices", lambda position_ids: None)
    run(scratch_config(batch_size=8), dataset, tmp_path / "fallback")
    manifest = json.loads((tmp_path / "fallback" / "run_manifest.json").read_text())
    assert manifest["plan"]["layout"].startswith("padded: this model's attention lets packed examples see")
    assert "batch layout: padded" in (tmp_path / "fallback" / "training_log.txt").read_text()


def test_torch_compile_trains_the_same_steps_as_eager(dataset, tmp_path) -> None:
    # Opt-in and slow to warm up (~10-30 s here), so one tiny run: the compiled graph must compute
    # what eager computes, packed position ids included, and the warm-up is reported on its own.
    run(scratch_config(batch_size=8, max_steps=3), dataset, tmp_path / "eager")
    summary = run(scratch_config(batch_size=8, max_steps=3, compile=True), dataset, tmp_path / "compiled")
    eager = [m["loss"] for m in read_metrics(tmp_path / "eager")]
    compiled = [m["loss"] for m in read_metrics(tmp_path / "compiled")]
    assert compiled == pytest.approx(eager, rel=1e-4)
    manifest = json.loads((tmp_path / "compiled" / "run_manifest.json").read_text())
    assert manifest["plan"]["layout"] == "packed"
    assert manifest["loop"]["first_step_s"] == summary["first_step_s"] > 0


def test_a_run_from_before_packing_existed_can_be_resumed(dataset, tmp_path) -> None:
    import yaml

    run(scratch_config(max_steps=4), dataset, tmp_path / "r")
    saved = tmp_path / "r" / "config.yaml"
    old = yaml.safe_load(saved.read_text())
    del old["data"]["packing"]  # what an earlier tunix-rt wrote
    saved.write_text(yaml.safe_dump(old))
    assert run(scratch_config(max_steps=6), dataset, tmp_path / "r", resume=True)["global_step"] == 6
