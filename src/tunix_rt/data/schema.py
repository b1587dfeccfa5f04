"""The native reasoning-trace record: what every loader, generator and trainer agrees on.

Compatible with the original tunix-rt `ReasoningTrace` (same field names and limits), so its
files load unchanged.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

SCHEMA_VERSION = "1.0"
MAX_PROMPT_CHARS = 50_000
MAX_STEP_CHARS = 20_000
MAX_STEPS = 1_000
# meta key holding the turns of a chat record before its question ([{role, content}], oldest
# first), so the whole conversation is rendered; see data/convert.py and train/render.py.
CHAT_HISTORY = "chat_history"
HISTORY_ROLES = ("system", "user", "assistant")


class TraceStep(BaseModel):
    """One reasoning step; `i` orders the steps (unique within a trace)."""

    # Strict: a step index of "1" or true is a data bug worth reporting, not coercing.
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    i: StrictInt = Field(ge=0)
    type: StrictStr = "step"
    content: StrictStr = Field(min_length=1, max_length=MAX_STEP_CHARS)

    @field_validator("content")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("step content is blank")
        return value


class ReasoningTrace(BaseModel):
    """A question, its numbered reasoning steps and the final answer."""

    model_config = ConfigDict(strict=True, extra="ignore")

    trace_version: StrictStr = SCHEMA_VERSION
    prompt: StrictStr = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    steps: list[TraceStep] = Field(min_length=1, max_length=MAX_STEPS)
    final_answer: StrictStr = Field(min_length=1)
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("prompt", "final_answer")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is blank")
        return value

    @field_validator("meta")
    @classmethod
    def _valid_chat_history(cls, meta: dict[str, Any]) -> dict[str, Any]:
        # Checked here, not at render time, so a bad history is reported as FILE:LINE: meta.
        history = meta.get(CHAT_HISTORY)
        if history is None:
            return meta
        if not isinstance(history, list):
            raise ValueError(f"{CHAT_HISTORY}: expected a list of {{role, content}} objects")
        for n, turn in enumerate(history):
            if not isinstance(turn, dict) or not isinstance(turn.get("content"), str):
                raise ValueError(f"{CHAT_HISTORY}[{n}]: expected {{role, content}} with string content")
            if turn.get("role") not in HISTORY_ROLES:
                raise ValueError(f"{CHAT_HISTORY}[{n}].role: expected one of {', '.join(HISTORY_ROLES)}")
        return meta

    @field_validator("steps")
    @classmethod
    def _unique_step_indices(cls, steps: list[TraceStep]) -> list[TraceStep]:
        seen: set[int] = set()
        for step in steps:
            if step.i in seen:
                raise ValueError(f"step index i={step.i} occurs more than once")
            seen.add(step.i)
        return steps

    def identity(self) -> tuple[str, str, tuple[tuple[int, str, str], ...]]:
        """What makes two records duplicates: same prompt, final answer and steps."""
        steps = tuple((s.i, s.type, s.content) for s in sorted(self.steps, key=lambda s: s.i))
        return (self.prompt, self.final_answer, steps)

    def to_json_dict(self) -> dict[str, Any]:
        """The record as written to JSONL (field order fixed so builds are byte-identical)."""
        return {
            "trace_version": self.trace_version,
            "prompt": self.prompt,
            "steps": [{"i": s.i, "type": s.type, "content": s.content} for s in self.steps],
            "final_answer": self.final_answer,
            "meta": self.meta,
        }
