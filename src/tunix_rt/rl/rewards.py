"""Reward functions: built-ins, user functions by import path, and their weighted sum.

Every reward function has one signature, the same as TRL's GRPOTrainer reward functions::

    fn(prompts: list[str], completions: list[str], **columns) -> list[float]

with one float per completion. `columns` holds, per completion: `answer` (the gold answer),
`prompt_id`, `completion_lengths` (tokens, stop token included), `stopped` (True when the
completion ended with EOS / end-of-turn rather than at the length limit), plus
`max_completion_length` (an int). A user function should accept `**kwargs` and ignore what it does
not need.

Built in:
* `correctness`: 1.0 when the project's scorer (`tunix_rt.eval.score.score`) judges the
  completion's answer line equal to the gold answer, else 0.0. The same judgement as evaluation.
* `format`: the fraction of three checks passed (0, 1/3, 2/3, 1): exactly one `Answer:` line and it
  is the last line; at least one numbered step line (`1. ...`) before it; the completion ended with
  the stop token (EOS / end-of-turn), not at the length limit.
* `length`: 0 up to (1 - length_buffer) x max_completion_length tokens, then linearly down to -1 at
  the limit (DAPO's soft overlong punishment), so the model learns to finish before it is cut.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tunix_rt.errors import ConfigError
from tunix_rt.eval.score import score

RewardFn = Callable[..., Sequence[float]]

_ANSWER_LINE = re.compile(r"^\s*answer\s*:", re.IGNORECASE)
_STEP_LINE = re.compile(r"^\s*\d+\.\s+\S")


def correctness(prompts: list[str], completions: list[str], *, answer: list[str], **_: Any) -> list[float]:
    return [1.0 if score(text, gold).correct else 0.0 for text, gold in zip(completions, answer, strict=True)]


def format_checks(completion: str, stopped: bool) -> tuple[bool, bool, bool]:
    """(one answer line and it is last, numbered steps before it, ended with the stop token)."""
    lines = [line for line in completion.strip().splitlines() if line.strip()]
    answer_lines = [k for k, line in enumerate(lines) if _ANSWER_LINE.match(line)]
    one_answer_last = len(answer_lines) == 1 and answer_lines[0] == len(lines) - 1
    steps = any(_STEP_LINE.match(line) for line in lines[: answer_lines[0] if answer_lines else len(lines)])
    return one_answer_last, steps, bool(stopped)


def format_reward(
    prompts: list[str], completions: list[str], *, stopped: list[bool], **_: Any
) -> list[float]:
    return [sum(format_checks(text, s)) / 3.0 for text, s in zip(completions, stopped, strict=True)]


def make_length_reward(buffer_fraction: float) -> RewardFn:
    def length(
        prompts: list[str],
        completions: list[str],
        *,
        completion_lengths: list[int],
        max_completion_length: int,
        **_: Any,
    ) -> list[float]:
        buffer = max(1.0, buffer_fraction * max_completion_length)
        free = max_completion_length - buffer
        return [max(-1.0, min(0.0, (free - n) / buffer)) for n in completion_lengths]

    return length


@dataclass(frozen=True)
class Reward:
    name: str  # the config key: a built-in name or module:function
    weight: float
    fn: RewardFn


def build_rewards(weights: dict[str, float], *, length_buffer: float) -> list[Reward]:
    """The configured reward functions, user ones imported (ConfigError naming the key if not)."""
    builtins: dict[str, RewardFn] = {
        "correctness": correctness,
        "format": format_reward,
        "length": make_length_reward(length_buffer),
    }
    return [Reward(name, float(w), builtins.get(name) or import_reward(name)) for name, w in weights.items()]


def import_reward(path: str) -> RewardFn:
    where = f"grpo.rewards.{path}"
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"{where}: expected an import path module:function")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # an import error inside the user's module is theirs to see, named
        raise ConfigError(f"{where}: cannot import {module_name!r}: {type(exc).__name__}: {exc}") from exc
    fn = getattr(module, attr, None)
    if fn is None:
        raise ConfigError(f"{where}: module {module_name!r} has no attribute {attr!r}")
    if not callable(fn):
        raise ConfigError(f"{where}: {attr!r} is a {type(fn).__name__}, not a function")
    return fn


def call_reward(
    reward: Reward, prompts: list[str], completions: list[str], columns: dict[str, Any]
) -> list[float]:
    """reward.fn's values, checked: one finite float per completion (ConfigError otherwise)."""
    where = f"grpo.rewards.{reward.name}"
    try:
        values = reward.fn(prompts, completions, **columns)
    except Exception as exc:
        raise ConfigError(f"{where}: raised {type(exc).__name__}: {exc}") from exc
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ConfigError(f"{where}: returned {type(values).__name__}; expected a list of floats")
    if len(values) != len(completions):
        raise ConfigError(f"{where}: returned {len(values)} values for {len(completions)} completions")
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{where}: returned {value!r}; every value must be a finite float")
        out.append(float(value))
    return out


def score_completions(
    rewards: list[Reward], prompts: list[str], completions: list[str], columns: dict[str, Any]
) -> tuple[dict[str, list[float]], list[float]]:
    """({reward name: values}, weighted total per completion)."""
    per_fn = {r.name: call_reward(r, prompts, completions, columns) for r in rewards}
    totals = [sum(r.weight * per_fn[r.name][k] for r in rewards) for k in range(len(completions))]
    return per_fn, totals


def probe_rewards(rewards: list[Reward], prompt: str, answer: str, max_completion_length: int) -> None:
    """Call every reward once on two made-up completions before training (a bad user function
    fails in the first second, not after the first generation)."""
    completions = [f"1. Work it out.\nAnswer: {answer}", "no answer"]
    columns = {
        "answer": [answer, answer],
        "prompt_id": ["probe", "probe"],
        "completion_lengths": [8, max_completion_length],
        "stopped": [True, False],
        "max_completion_length": max_completion_length,
    }
    for reward in rewards:
        call_reward(reward, [prompt, prompt], completions, columns)
