"""Built-in rewards on hand-made completions, and user rewards by import path."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tunix_rt.errors import ConfigError
from tunix_rt.rl.config import GrpoConfig
from tunix_rt.rl.rewards import (
    build_rewards,
    correctness,
    format_reward,
    make_length_reward,
    probe_rewards,
    score_completions,
)

GOOD = "1. Add 2 and 2.\nAnswer: 4"


def test_correctness_uses_the_scorer() -> None:
    assert correctness([], [GOOD, "Answer: four", "Answer: 5", "4"], answer=["4"] * 4) == [1.0, 1.0, 0.0, 0.0]


def test_format_checks_each_part() -> None:
    texts = [GOOD, GOOD, "Answer: 4", "1. step\nAnswer: 4\nAnswer: 5", "1. step\nAnswer: 4\nmore"]
    values = format_reward([], texts, stopped=[True, False, True, True, True])
    assert values == pytest.approx([1.0, 2 / 3, 2 / 3, 2 / 3, 2 / 3])


def test_length_soft_penalty() -> None:
    length = make_length_reward(0.25)
    values = length([], ["x"] * 4, completion_lengths=[10, 75, 90, 100], max_completion_length=100)
    # free up to 75 tokens, then linear to -1 at 100
    assert values == pytest.approx([0.0, 0.0, -0.6, -1.0])


def test_weighted_total() -> None:
    rewards = build_rewards({"correctness": 1.0, "format": 0.5}, length_buffer=0.25)
    columns = {
        "answer": ["4", "4"],
        "stopped": [True, True],
        "completion_lengths": [5, 5],
        "max_completion_length": 16,
    }
    per_fn, totals = score_completions(rewards, ["p", "p"], [GOOD, "Answer: 3"], columns)
    assert per_fn["correctness"] == [1.0, 0.0]
    assert totals == pytest.approx([1.5, 0.5 * 2 / 3])


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "my_rewards.py").write_text(
        "def short(prompts, completions, **columns):\n"
        "    return [1.0 / (1 + n) for n in columns['completion_lengths']]\n"
        "def wrong_length(prompts, completions, **columns):\n"
        "    return [0.0]\n"
        "def strings(prompts, completions, **columns):\n"
        "    return ['1'] * len(completions)\n"
        "NOT_A_FUNCTION = 3\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_rewards"
    sys.modules.pop("my_rewards", None)


def test_user_reward_by_import_path(user_module: str) -> None:
    cfg = GrpoConfig(rewards={f"{user_module}:short": 2.0})
    rewards = build_rewards(cfg.rewards, length_buffer=cfg.length_buffer)
    probe_rewards(rewards, "q", "4", 16)
    columns = {"answer": ["4"], "stopped": [True], "completion_lengths": [3], "max_completion_length": 16}
    _, totals = score_completions(rewards, ["p"], ["x"], columns)
    assert totals == [0.5]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("no_such_module_xyz:f", "cannot import"),
        ("my_rewards:missing", "no attribute 'missing'"),
        ("my_rewards:NOT_A_FUNCTION", "not a function"),
        ("my_rewards:wrong_length", "returned 1 values for 2 completions"),
        ("my_rewards:strings", "finite float"),
    ],
)
def test_user_reward_validated_before_training(user_module: str, name: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        probe_rewards(build_rewards({name: 1.0}, length_buffer=0.25), "q", "4", 16)
    assert f"grpo.rewards.{name}" in str(info.value)


def test_config_refuses_unknown_reward_names_and_keys() -> None:
    with pytest.raises(ValueError, match="neither a built-in"):
        GrpoConfig(rewards={"corectness": 1.0})
    with pytest.raises(ValueError, match="extra"):
        GrpoConfig(num_generation=4)
