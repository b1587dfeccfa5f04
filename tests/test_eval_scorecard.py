"""Scorecard arithmetic: accuracy over scored items, per-group counts, format compliance."""

from __future__ import annotations

from tunix_rt.eval.scorecard import build_scorecard


def row(section: str, category: str, difficulty: str, correct: bool, answer: str | None, scored: bool = True):
    return {"section": section, "category": category, "difficulty": difficulty, "correct": correct,
            "answer": answer, "scored": scored}  # fmt: skip


def test_scorecard_arithmetic() -> None:
    rows = [
        row("core", "arithmetic", "easy", True, "4"),
        row("core", "arithmetic", "easy", False, "5"),
        row("core", "geometry", "hard", True, "90"),
        row("edge_case", "formatting", "easy", False, None),
        row("edge_case", "formatting", "medium", False, None, scored=False),
    ]
    card = build_scorecard(rows)
    assert (card["n_items"], card["n_scored"], card["n_skipped"], card["n_correct"]) == (5, 4, 1, 2)
    assert card["accuracy"] == 0.5
    assert card["format_compliance"] == 0.6  # 3 of 5 outputs had an Answer line
    assert card["section_scores"] == {
        "core": {"accuracy": 0.666667, "n": 3, "correct": 2},
        "edge_case": {"accuracy": 0.0, "n": 1, "correct": 0},
    }
    assert card["category_scores"]["arithmetic"] == {"accuracy": 0.5, "n": 2, "correct": 1}
    assert card["difficulty_scores"] == {
        "easy": {"accuracy": 0.333333, "n": 3, "correct": 1},
        "hard": {"accuracy": 1.0, "n": 1, "correct": 1},
    }
    assert sum(g["n"] for g in card["section_scores"].values()) == card["n_scored"]


def test_empty_scorecard() -> None:
    card = build_scorecard([])
    assert card["accuracy"] == 0.0 and card["format_compliance"] == 0.0 and card["section_scores"] == {}
