"""Bundled eval sets: format, recomputed answers, regeneration, and no leak into training data."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tunix_rt.data.generators import dev_reasoning_v2, reasoning_mix
from tunix_rt.data.generators.heldout import heldout_jsonl
from tunix_rt.data.registry import EVAL_SETS, bundled_eval_set_path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_eval_v1_table import expected_items

FIELDS = {"id", "prompt", "expected_answer", "section", "category", "difficulty"}


def read(key: str) -> list[dict]:
    path = bundled_eval_set_path(key)
    assert path is not None and path.is_file()
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def norm(text: str) -> str:
    return " ".join(text.lower().split())


@pytest.mark.parametrize("key", sorted(EVAL_SETS))
def test_eval_set_format(key):
    items = read(key)
    assert len({i["id"] for i in items}) == len(items)
    assert len({norm(i["prompt"]) for i in items}) == len(items)
    for item in items:
        assert set(item) == FIELDS
        assert item["section"] in {"core", "trace_sensitive", "edge_case"}
        assert item["difficulty"] in {"easy", "medium", "hard"}
        assert all(isinstance(item[f], str) and item[f].strip() for f in FIELDS)


def test_unknown_key_has_no_path():
    assert bundled_eval_set_path("nope") is None


def test_reasoning_eval_v1_answers_recomputed():
    assert read("reasoning-eval-v1") == expected_items()
    assert 90 <= len(expected_items()) <= 120


def test_heldout_regenerates_identically():
    path = bundled_eval_set_path("reasoning-mix-heldout")
    assert path is not None
    assert path.read_text(encoding="utf-8") == heldout_jsonl()
    assert len(read("reasoning-mix-heldout")) == 200


def test_no_eval_prompt_in_training_sets():
    training = {norm(r["prompt"]) for r in reasoning_mix.generate()}
    training |= {norm(r["prompt"]) for r in dev_reasoning_v2.generate()}
    for key in EVAL_SETS:
        leaked = [i["id"] for i in read(key) if norm(i["prompt"]) in training]
        assert not leaked, f"{key}: prompts also in a training set: {leaked}"
