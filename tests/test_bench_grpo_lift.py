"""benchmarks/grpo_lift.py: the paired before/after arithmetic against hand-computed values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers_bench import load_benchmark

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "grpo_lift.py"


def _load_module():
    return load_benchmark("grpo_lift")


lift = _load_module()


@pytest.mark.parametrize(
    ("fixed", "broken", "p"),
    [
        (0, 0, 1.0),  # no discordant items: no evidence
        (5, 0, 2 / 32),  # 2 * C(5,0) / 2^5
        (0, 5, 2 / 32),  # symmetric
        (8, 2, 2 * (1 + 10 + 45) / 1024),  # 2 * (C(10,0)+C(10,1)+C(10,2)) / 2^10 = 0.109375
        (10, 0, 2 / 1024),
        (3, 3, 1.0),  # 2 * 42/64 > 1, capped
    ],
)
def test_sign_test_p_matches_hand_computed_binomial_tails(fixed: int, broken: int, p: float) -> None:
    assert lift.sign_test_p(fixed, broken) == pytest.approx(p, abs=1e-12)


@pytest.mark.parametrize(
    ("correct", "n", "lo", "hi"),
    [
        (0, 10, 0.0, 0.2775),  # textbook values of the Wilson interval
        (5, 10, 0.2366, 0.7634),
        (148, 200, 0.6751, 0.7959),  # centre 0.7496/1.0192, half-width 0.0604
        (10, 10, 0.7225, 1.0),
    ],
)
def test_wilson_interval_matches_hand_computed_values(correct: int, n: int, lo: float, hi: float) -> None:
    got = lift.wilson_interval(correct, n)
    assert got == pytest.approx((lo, hi), abs=1e-4)


def test_wilson_interval_refuses_impossible_counts() -> None:
    with pytest.raises(ValueError, match="0 <= correct <= n"):
        lift.wilson_interval(3, 2)


def _write(path: Path, correct: list[bool]) -> None:
    path.mkdir(parents=True)
    rows = [{"id": f"q{i}", "correct": c} for i, c in enumerate(correct)]
    (path / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_run_lift_pairs_items_by_id_and_prints_the_report(tmp_path: Path, capsys) -> None:
    #            q0     q1     q2     q3    q4     q5
    before = [True, True, False, False, False, True]
    after = [True, False, True, True, True, True]  # q1 broken; q2, q3, q4 fixed
    _write(tmp_path / "eval_before", before)
    _write(tmp_path / "eval", after)
    r = lift.run_lift(tmp_path)
    assert (r["n"], r["before_correct"], r["after_correct"], r["fixed"], r["broken"]) == (6, 3, 5, 3, 1)
    assert r["lift"] == pytest.approx(2 / 6)
    assert r["sign_test_p"] == pytest.approx(2 * (1 + 4) / 16)  # 0.625
    assert lift.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "3/6 = 50.0%" in out and "5/6 = 83.3%" in out and "3 fixed" in out and "1 broken" in out


def test_run_lift_refuses_different_item_sets(tmp_path: Path) -> None:
    _write(tmp_path / "eval_before", [True, False])
    _write(tmp_path / "eval", [True, False, True])
    with pytest.raises(ValueError, match="different items"):
        lift.run_lift(tmp_path)
    assert lift.main([str(tmp_path / "nowhere")]) == 2
