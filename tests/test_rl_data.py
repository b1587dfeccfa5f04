"""Prompts and gold answers: every shape loads, and an uninterpretable gold answer is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers_train import write_traces
from tunix_rt.errors import DataError
from tunix_rt.rl.data import gold_problem, load_prompts


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _eval_item(k: int, answer: str) -> dict:
    return {
        "id": f"q{k}", "prompt": f"What is {k} + 1?", "expected_answer": answer,
        "section": "core", "category": "arithmetic", "difficulty": "easy",
    }  # fmt: skip


def test_trace_dataset_loads_prompts_and_answers(tmp_path: Path) -> None:
    prompts = load_prompts(str(write_traces(tmp_path / "t.jsonl", n=5)))
    assert len(prompts.items) == 5
    assert prompts.items[0].prompt.startswith("What is") and prompts.items[0].line == 1
    assert prompts.items[0].answer.isdigit()


def test_eval_set_and_gsm8k_shapes(tmp_path: Path) -> None:
    evalset = load_prompts(str(_write(tmp_path / "e.jsonl", [_eval_item(1, "2"), _eval_item(2, "3")])))
    assert [(i.id, i.answer) for i in evalset.items] == [("q1", "2"), ("q2", "3")]
    gsm = _write(
        tmp_path / "g.jsonl",
        [{"question": "Tom has 3 apples and buys 4. How many?", "answer": "3 + 4 = <<3+4=7>>7\n#### 7"}],
    )
    item = load_prompts(str(gsm)).items[0]
    assert item.answer == "7" and "Tom" in item.prompt


@pytest.mark.parametrize("gold", ["", "   ", "?!", "**", "4\n5"])
def test_uninterpretable_gold_is_refused_with_file_and_line(tmp_path: Path, gold: str) -> None:
    path = tmp_path / "e.jsonl"
    # A blank line first: the reported line is the file's line, not the record's index.
    path.write_text(
        json.dumps(_eval_item(1, "2")) + "\n\n" + json.dumps(_eval_item(2, gold)) + "\n", encoding="utf-8"
    )
    with pytest.raises(DataError) as info:
        load_prompts(str(path))
    assert f"{path}:3: expected_answer:" in str(info.value)


def test_gold_problem_accepts_ordinary_answers() -> None:
    for gold in ["42", "Paris", "-3.5", "1/2", "a or b"]:
        assert gold_problem(gold) is None, gold
    assert "blank" in gold_problem(" ")
