"""benchmarks/mfu_budget.py at --tiny: the budget arithmetic and the floor's parts are consistent."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from helpers_bench import load_benchmark

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "mfu_budget.py"


def _load_module():
    return load_benchmark("mfu_budget")


def test_tiny_budget_run_reports_a_consistent_breakdown(tmp_path: Path) -> None:
    out = tmp_path / "budget.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--tiny", "--workdir", str(tmp_path / "work"), "--json", str(out)],
        capture_output=True, text=True, timeout=170, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r = json.loads(out.read_text())
    layers = r["fixture"]["layers"]
    # GPT-2: four weight matmuls per layer (qkv, attention out, MLP in, MLP out) and the tied LM head.
    assert r["weight_matmuls_per_step"] == 4 * layers + 1
    assert r["step_ms"] > 0 and 0 < r["step_mfu"] < 1
    # The profile is scaled to the measured step, so its kinds add up to it.
    assert sum(r["step_breakdown_ms"].values()) == pytest.approx(r["step_ms"], rel=0.01)
    assert r["step_breakdown_ms"]["weight and attention matmuls"] > 0
    assert r["floor_total_ms"] == pytest.approx(sum(r["floor_ms"].values()), abs=0.02)
    expected_budget = r["gflop_per_step"] / (r["target_mfu"] * r["bf16_peak_gflops"]) * 1e3
    assert r["budget_ms"] == pytest.approx(expected_budget, rel=0.01)
    assert r["floor_batch"]["slots"] >= r["floor_batch"]["tokens"] > r["floor_batch"]["labelled"] > 0
    assert r["floor_budget_ms"] > 0
    assert math.isfinite(r["floor_mfu"]) and r["floor_mfu"] > 0
    assert "by kind of work" in proc.stdout and "floor" in proc.stdout


def test_profiler_ops_are_sorted_into_kinds() -> None:
    budget = _load_module()
    assert budget.kind_of("aten::addmm") == "weight and attention matmuls"
    assert budget.kind_of("aten::_fused_adamw_") == "optimizer and grad clipping"
    assert budget.kind_of("aten::gelu_backward") == "activation"
    assert budget.kind_of("aten::mul") == budget.OTHER


@pytest.mark.parametrize("shape", ["512", "512x", "100x3", "0x3", "axb"])
def test_a_bad_shape_is_refused_by_name(shape: str) -> None:
    budget = _load_module()
    args = budget.parse_args(["--shape", shape])
    with pytest.raises(SystemExit, match="--shape"):
        budget.fixture_size(args)


def test_a_shape_gives_a_gpt2_of_that_width_and_depth() -> None:
    budget = _load_module()
    size = budget.fixture_size(budget.parse_args(["--shape", "512x3"]))
    assert (size.hidden, size.layers, size.heads) == (512, 3, 8)
    assert size.name == "gpt2-512x3"
