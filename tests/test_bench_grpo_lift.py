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


def test_paired_sampled_lift_matches_hand_computed_values() -> None:
    # Per-item differences (out of k=4): +1/4, 0, 0, +2/4 -> mean 0.1875; deviations 0.0625,
    # -0.1875, -0.1875, 0.3125 -> squares sum 0.171875, / 3 -> sd 0.239357, se = sd / 2 = 0.119678.
    r = lift.paired_sampled_lift([0, 2, 4, 1], [1, 2, 4, 3], 4)
    assert (r["n"], r["k"]) == (4, 4)
    assert (r["before"], r["after"]) == (7 / 16, 10 / 16)
    assert r["before_wilson95"] == lift.wilson_interval(7, 16) and r[
        "after_wilson95"
    ] == lift.wilson_interval(10, 16)
    assert r["lift"] == pytest.approx(0.1875)
    assert r["lift_se"] == pytest.approx(0.119678, abs=1e-6)
    assert r["lift_ci95"] == pytest.approx(
        (0.1875 - 1.959964 * 0.119678, 0.1875 + 1.959964 * 0.119678), abs=1e-5
    )
    assert r["p"] == pytest.approx(0.117185, abs=1e-5)  # 2 (1 - Phi(1.566693)), z = 0.1875 / se
    same = lift.paired_sampled_lift([1, 2], [1, 2], 2)
    assert (same["lift"], same["p"]) == (0.0, 1.0)  # no difference at all: no evidence
    assert lift.paired_sampled_lift([0, 0], [1, 1], 1)["p"] == 0.0  # every item moved the same: exact


@pytest.mark.parametrize(
    ("before", "after", "k"), [([1], [1, 2], 2), ([3], [1], 2), ([], [], 2), ([0], [0], 0)]
)
def test_paired_sampled_lift_refuses_inconsistent_counts(before: list[int], after: list[int], k: int) -> None:
    with pytest.raises(ValueError):
        lift.paired_sampled_lift(before, after, k)


def test_sampled_lift_of_a_learning_grpo_run(tmp_path: Path, capsys) -> None:
    """A GRPO run that learns (the tiny digit task of test_grpo_recipe): the start model and the
    final model are sampled on the run's eval set, and the sampled lift is found beyond noise."""
    import torch

    from helpers_rl import make_digit_model, write_digit_prompts
    from tunix_rt.config import load_config
    from tunix_rt.recipes.grpo import train
    from tunix_rt.train.request import TrainRequest

    model = make_digit_model(tmp_path / "model")
    data = write_digit_prompts(tmp_path / "p.jsonl", 16)
    run = tmp_path / "run"
    training = {
        "device": "cpu", "dtype": "float32", "batch_size": 4, "max_steps": 16, "learning_rate": 1e-2,
        "lr_scheduler": "constant", "warmup_steps": 0, "logging_steps": 1, "seed": 5, "eval_set": str(data),
    }  # fmt: skip
    grpo = {"num_generations": 8, "max_completion_length": 5, "rewards": {"correctness": 1.0, "format": 0.1}}
    raw = {"model": {"model_id": str(model)}, "method": "grpo", "training": training, "grpo": grpo}
    cfg, _ = load_config(raw)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model: one thread is far faster on a shared 2-core machine
    try:
        train(TrainRequest(config=cfg, dataset=str(data), output=run, device="cpu", argv=["test"]))
        r = lift.run_sampled_lift(run, k=4, seed=1)
        assert lift.main([str(run), "--samples", "2"]) == 0
    finally:
        torch.set_num_threads(threads)
    assert (r["n"], r["k"], r["temperature"], r["top_p"]) == (16, 4, 1.0, 1.0)
    assert r["before"] < 0.5 < r["after"] and r["p"] < 0.01, r  # a random digit, then mostly the gold 7
    assert "sampled (avg@2, temperature 1.0" in capsys.readouterr().out


def test_sampled_lift_needs_a_grpo_run(tmp_path: Path) -> None:
    (tmp_path / "run_manifest.json").write_text(json.dumps({"config": {"resolved": {"training": {}}}}))
    with pytest.raises(ValueError, match="not a finished GRPO run"):
        lift.run_sampled_lift(tmp_path, k=2)


def test_sampled_lift_names_a_start_model_that_is_not_here(tmp_path: Path) -> None:
    manifest = {
        "config": {"resolved": {"grpo": {}, "training": {}}},
        "eval": {"eval_set": "reasoning-mix-heldout"},
        "model": {"id": "HuggingFaceTB/SmolLM2-135M-Instruct"},
    }
    (tmp_path / "run_manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="'HuggingFaceTB/SmolLM2-135M-Instruct' is not a directory here"):
        lift.run_sampled_lift(tmp_path, k=2)
    assert lift.main([str(tmp_path), "--samples", "2"]) == 2
