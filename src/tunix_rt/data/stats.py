"""Summary numbers of a list of traces (used by manifests and `data stats`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from tunix_rt.data.schema import ReasoningTrace


def trace_stats(traces: Sequence[ReasoningTrace]) -> dict[str, Any]:
    """Counts, per-category counts, steps min/mean/max, prompt and answer chars mean."""
    if not traces:
        return {
            "count": 0,
            "categories": {},
            "task_types": {},
            "steps": {"min": 0, "mean": 0.0, "max": 0},
            "prompt_chars_mean": 0.0,
            "answer_chars_mean": 0.0,
        }
    steps = [len(t.steps) for t in traces]
    categories = Counter(str(t.meta.get("category", "(none)")) for t in traces)
    task_types = Counter(str(t.meta.get("task_type", "(none)")) for t in traces)
    return {
        "count": len(traces),
        "categories": dict(sorted(categories.items())),
        "task_types": dict(sorted(task_types.items())),
        "steps": {"min": min(steps), "mean": round(sum(steps) / len(steps), 2), "max": max(steps)},
        "prompt_chars_mean": round(sum(len(t.prompt) for t in traces) / len(traces), 1),
        "answer_chars_mean": round(sum(len(t.final_answer) for t in traces) / len(traces), 1),
    }
