"""benchmarks/lora_throughput.py at --tiny: both sides train LoRA on the same ids and the report adds up.

The tiny run uses a ~100k-parameter Llama with a ChatML tokenizer (not SmolLM2), so it takes
seconds of compute; the TRL row needs the `bench` extra and comes back skipped without it.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

from helpers_bench import load_benchmark

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "lora_throughput.py"
HAVE_TRL = all(importlib.util.find_spec(p) is not None for p in ("trl", "accelerate", "datasets"))


def _load_module():
    return load_benchmark("lora_throughput")


def test_tiny_lora_benchmark_runs_both_sides_and_its_report_adds_up(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--tiny", "--contenders", "tunix-rt-lora,trl-lora",
         "--workdir", str(tmp_path / "work"), "--json", str(out), "--timeout", "400"],
        capture_output=True, text=True, timeout=900, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    fixture, rows = result["fixture"], {row["contender"]: row for row in result["rows"]}
    assert fixture["params"] < 300_000 and fixture["model_name"] == "tiny llama"
    assert math.isfinite(fixture["base_eval_loss"]) and fixture["eval_examples"] > 0
    ours = rows["tunix-rt-lora"]
    if not HAVE_TRL:
        assert rows["trl-lora"]["status"] == "skipped"
    for row in [ours] if not HAVE_TRL else [ours, rows["trl-lora"]]:
        assert row["status"] == "ok", row
        # Both train on the fixture's ids: the same examples, the same non-pad tokens.
        assert (row["train_tokens"], row["examples"]) == (fixture["tokens"], fixture["examples"])
        assert row["trainable_params"] == result["adapter_params"]  # the same LoRA on both sides
        assert row["tokens_per_sec"] == round(row["train_tokens"] / row["train_runtime_s"], 1)
        mean_len = row["train_tokens"] / row["examples"]
        per_token = (
            4 * fixture["params"]
            + 6 * result["adapter_params"]
            + 12 * fixture["layers"] * fixture["hidden"] * mean_len
        )
        achieved = row["train_tokens"] * per_token / row["train_runtime_s"]  # FLOP/s
        peaks = result["peak_gflops"]
        assert row["mfu"] == round(achieved / (peaks[row["dtype"]] * 1e9), 4)
        assert row["mfu_bf16_peak"] == round(achieved / (peaks["bfloat16"] * 1e9), 4)
        assert math.isfinite(row["eval_loss"]) and math.isfinite(row["final_loss"])
        assert row["wall_s"] >= row["train_runtime_s"] > 0
    if HAVE_TRL:
        trl = rows["trl-lora"]
        assert trl["settings"]["completion_only_loss"] is True and trl["settings"]["pretokenized"] is True
        assert trl["settings"]["gradient_checkpointing"] is False
        assert trl["dtype"] == ours["dtype"]  # one precision rule for both sides
        assert ours["ratio_to_trl"] == round(ours["tokens_per_sec"] / trl["tokens_per_sec"], 2)
        assert any(line.startswith("tunix-rt-lora vs trl-lora:") for line in result["notes"])
    assert f"CPU: {result['machine']['cpu']}" in proc.stdout and "tok/s" in proc.stdout


def _fixture(module):
    return module.LoraFixture(
        path=Path("."), model_dir=Path("."), model_name="m", params=100_000_000, layers=30, hidden=576,
        examples=100, tokens=7000, completion_tokens=3000, eval_examples=10, dropped_too_long=0,
        base_eval_loss=3.0, pad_id=0,
    )  # fmt: skip


def test_lora_mfu_ratio_and_verdict_arithmetic() -> None:
    module = _load_module()
    base = {"status": "ok", "train_tokens": 7000, "examples": 100, "final_loss": 1.0, "dtype": "bfloat16"}
    rows = [
        {"contender": "tunix-rt-lora", "train_runtime_s": 10.0, "eval_loss": 1.50, **base},
        {"contender": "trl-lora", "train_runtime_s": 25.0, "eval_loss": 1.52, **base},
        {
            "contender": "trl-lora-fp32",
            "train_runtime_s": 40.0,
            "eval_loss": 1.49,
            **base,
            "dtype": "float32",
        },
    ]
    module.finish_rows(rows, _fixture(module), 2_000_000, {"bfloat16": 500.0, "float32": 250.0})
    ours = rows[0]
    assert ours["tokens_per_sec"] == 700.0 and rows[1]["tokens_per_sec"] == 280.0
    assert ours["ratio_to_trl"] == 2.5 and ours["trl_reference"] == "trl-lora"
    flops = 7000 * (4 * 100_000_000 + 6 * 2_000_000 + 12 * 30 * 576 * 70)
    assert ours["mfu"] == round(flops / 10.0 / 500e9, 4) == ours["mfu_bf16_peak"]
    assert rows[2]["mfu"] == round(flops / 40.0 / 250e9, 4)  # against its own (fp32) peak
    assert rows[2]["mfu_bf16_peak"] == round(flops / 40.0 / 500e9, 4)
    lines = module.verdict(rows, module.OURS, module.TARGET)
    assert "2.50x" in lines[0] and "target >= 2x" in lines[0] and lines[0].endswith(": met")
    rows[1]["train_runtime_s"] = 15.0  # 1.5x: not the 2x the issue asks for
    module.finish_rows(rows, _fixture(module), 2_000_000, {"bfloat16": 500.0, "float32": 250.0})
    assert "NOT met" in module.verdict(rows, module.OURS, module.TARGET)[0]


def test_consistency_notes_name_a_different_lora_size_or_dtype() -> None:
    module = _load_module()
    rows = [
        {"contender": "tunix-rt-lora", "status": "ok", "trainable_params": 100, "dtype": "bfloat16"},
        {"contender": "trl-lora", "status": "ok", "trainable_params": 100, "dtype": "bfloat16"},
        {"contender": "trl-lora-fp32", "status": "ok", "trainable_params": 100, "dtype": "float32"},
    ]
    assert module.consistency_notes(rows, 100) == []
    rows[1].update(trainable_params=120, dtype="float32")
    notes = module.consistency_notes(rows, 100)
    assert any("trl-lora 120" in n for n in notes) and any("different dtypes" in n for n in notes)
