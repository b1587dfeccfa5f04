"""benchmarks/train_throughput.py at --tiny: every kind of contender trains and reports numbers.

One contender of each kind runs (the tunix-rt CLI, TRL's SFTTrainer, the original HF Trainer
recipe); the fp32 rows run the same code with another dtype and are left to the full benchmark, to
keep this under a minute on 2 cores. Peer rows whose packages (trl, accelerate, datasets: the
`bench` extra) are missing must come back as skipped with the reason, never as a crash, because
`make test` installs only the `dev` extra.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from helpers_bench import load_benchmark

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "train_throughput.py"
CONTENDERS = ("tunix-rt", "trl-bf16", "original")
NEEDS = {"tunix-rt": (), "trl-bf16": ("trl", "accelerate", "datasets"), "original": ("accelerate",)}


def _installed(name: str) -> bool:
    return all(importlib.util.find_spec(p) is not None for p in NEEDS[name])


def _load_module():
    return load_benchmark("train_throughput")


def test_tiny_benchmark_reports_every_installed_contender(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--tiny", "--contenders", ",".join(CONTENDERS),
         "--workdir", str(tmp_path / "work"), "--json", str(out), "--timeout", "300"],
        capture_output=True, text=True, timeout=900, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    rows = {row["contender"]: row for row in result["rows"]}
    assert set(rows) == set(CONTENDERS)
    assert result["fixtures"][0]["params"] < 300_000
    for name in CONTENDERS:
        row = rows[name]
        if not _installed(name):
            assert row["status"] == "skipped", row
            assert "not installed" in row["reason"]
            continue
        assert row["status"] == "ok", row
        assert row["tokens_per_sec"] > 0
        assert math.isfinite(row["final_loss"])
        assert math.isfinite(row["eval_loss"])  # same fixed-subset loss, computed the same way for all
        assert row["train_runtime_s"] > 0 and row["wall_s"] >= row["train_runtime_s"]
        assert row["peak_rss_mb"] > 0
        assert row["mfu"] is not None and row["mfu"] > 0
        # Everyone trains on the same examples, counted the same way (non-pad tokens).
        assert row["train_tokens"] == result["fixtures"][0]["tokens"]
    if _installed("trl-bf16"):
        settings = rows["trl-bf16"]["settings"]
        assert settings["gradient_checkpointing"] is False and settings["completion_only_loss"] is True
    assert "tunix-rt" in proc.stdout and "tok/s" in proc.stdout


def test_missing_peer_packages_mean_skipped_not_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `make test` sees with only the dev extra: the peer rows are skipped with the reason."""
    module = _load_module()
    real = importlib.util.find_spec
    absent = {"trl", "accelerate", "datasets"}  # what a venv with only the dev extra lacks
    monkeypatch.setattr(
        module.importlib.util, "find_spec", lambda name, *a: None if name in absent else real(name, *a)
    )
    assert module.missing_packages(module.CONTENDERS["trl-bf16"]) == ["trl", "accelerate", "datasets"]
    assert module.missing_packages(module.CONTENDERS["tunix-rt"]) == []
    out = tmp_path / "results.json"
    code = module.main(
        ["--tiny", "--contenders", "trl-bf16,original", "--workdir", str(tmp_path / "w"), "--json", str(out)]
    )
    assert code == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["status"] for r in rows] == ["skipped", "skipped"]
    assert "not installed: trl, accelerate, datasets" in rows[0]["reason"]
    assert "not installed: accelerate" in rows[1]["reason"]


def test_ratios_and_mfu_are_computed_from_each_rows_own_counts() -> None:
    module = _load_module()
    fixture = module.Fixture(
        path=Path("."), size=module.FULL, model_dir=Path("."), traces=Path("."), pairs=Path("."),
        params=10_000_000, vocab=2000, examples=100, tokens=4000, completion_tokens=2000,
        dropped_too_long=0, dataset_spec="x",
    )  # fmt: skip
    base = {"status": "ok", "train_tokens": 4000, "examples": 100, "final_loss": 2.0}
    rows = [
        {"contender": "tunix-rt", "train_runtime_s": 1.0, "dtype": "bfloat16", **base},
        {"contender": "trl-bf16", "train_runtime_s": 2.0, "dtype": "bfloat16", **base},
        {"contender": "trl-fp32", "train_runtime_s": 4.0, "dtype": "float32", **base},
        {"contender": "original", "train_runtime_s": 8.0, "dtype": "float32", **base},
        {"contender": "trl-bf16-padfree", "status": "skipped", "reason": "not installed: trl"},
    ]
    module.finish_rows(rows, fixture, {"bfloat16": 1000.0, "float32": 100.0})
    ours = rows[0]
    assert ours["tokens_per_sec"] == 4000.0
    assert ours["ratio_to_trl"] == 2.0 and ours["trl_reference"] == "trl-bf16"
    assert ours["ratio_to_original"] == 8.0
    flops = 4000 * (6 * 10_000_000 + 12 * module.FULL.layers * module.FULL.hidden * 40)
    assert ours["mfu"] == round(flops / 1.0 / 1000e9, 4)
    assert module.verdict(rows)[-1].endswith(": met")
    assert module.logging_steps_for(125) == 5 and module.logging_steps_for(4) == 4


def _verdict(trl_rows: dict[str, tuple[float, float]]) -> list[str]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import train_throughput
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    rows = [{"contender": "tunix-rt", "status": "ok", "tokens_per_sec": 4000.0, "eval_loss": 2.6}]
    rows += [
        {"contender": name, "status": "ok", "tokens_per_sec": tps, "eval_loss": loss}
        for name, (tps, loss) in trl_rows.items()
    ]
    return train_throughput.verdict(rows)


def test_the_verdict_judges_against_the_fastest_trl_row_that_learned_as_well() -> None:
    # A faster TRL row that learned less is shown, not used; the equal-loss row decides.
    lines = _verdict({"trl-fast-worse": (3000.0, 2.9), "trl-equal": (2000.0, 2.55)})
    assert "vs trl-equal: 2.00x" in lines[0] and lines[0].endswith(": met")
    assert "trl-fast-worse" in lines[1] and "learned less" in lines[1]
    # A faster TRL row that learned more is the reference, and tunix-rt then fails the target.
    lines = _verdict({"trl-fast-better": (3000.0, 2.2), "trl-equal": (2000.0, 2.55)})
    assert "vs trl-fast-better" in lines[0] and "NOT met" in lines[0]
    # Equal loss but not fast enough.
    assert "NOT met" in _verdict({"trl-equal": (3000.0, 2.6)})[0]
