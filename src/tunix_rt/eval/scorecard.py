"""Per-item judgements -> the scorecard: overall accuracy, per-group scores, format compliance.

An item is *scored* when it has a non-empty expected answer; items without one are *skipped*
(counted, never in a denominator). Accuracy is correct / scored. Format compliance is the share of
all generated outputs that hold a parsable ``Answer:`` line, right or wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

GROUPS = (("section_scores", "section"), ("category_scores", "category"), ("difficulty_scores", "difficulty"))


def _ratio(numerator: int, denominator: int) -> float:
    return round(numerator / denominator, 6) if denominator else 0.0


def group_scores(rows: Iterable[Mapping[str, Any]], field: str) -> dict[str, dict[str, Any]]:
    """{group: {accuracy, n, correct}} over scored rows, groups sorted by name."""
    counts: dict[str, list[int]] = {}
    for row in rows:
        if not row.get("scored", True):
            continue
        n_correct = counts.setdefault(str(row.get(field) or "-"), [0, 0])
        n_correct[0] += 1
        n_correct[1] += int(bool(row.get("correct")))
    return {
        name: {"accuracy": _ratio(correct, n), "n": n, "correct": correct}
        for name, (n, correct) in sorted(counts.items())
    }


def build_scorecard(rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    """rows: dicts with section, category, difficulty, correct, answer and scored (default True)."""
    scored = [row for row in rows if row.get("scored", True)]
    correct = sum(1 for row in scored if row.get("correct"))
    with_answer = sum(1 for row in rows if row.get("answer") is not None)
    # Accuracy among the scored items that gave an answer: separates "learned the format" from
    # "learned to answer" (a lift that is only format leaves this figure where it was).
    answered = [row for row in scored if row.get("answer") is not None]
    card: dict[str, Any] = {
        "n_items": len(rows),
        "n_scored": len(scored),
        "n_skipped": len(rows) - len(scored),
        "n_correct": correct,
        "accuracy": _ratio(correct, len(scored)),
        "format_compliance": _ratio(with_answer, len(rows)),
        "accuracy_answered": _ratio(sum(1 for row in answered if row.get("correct")), len(answered)),
        "n_answered": len(answered),
    }
    for key, field in GROUPS:
        card[key] = group_scores(rows, field)
    return card
