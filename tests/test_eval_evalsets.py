"""Eval-set loading: the original's item format, trace files, bundled keys, located errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunix_rt.data import registry
from tunix_rt.data.evalsets import load_eval_set
from tunix_rt.errors import DataError

ITEM = {"id": "e1", "prompt": "What is 15 + 27?", "expected_answer": "42", "section": "core",
        "category": "arithmetic", "difficulty": "easy"}  # fmt: skip


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def test_eval_format(tmp_path: Path) -> None:
    second = {**ITEM, "id": 2, "expected_answer": 7, "section": "edge_case", "difficulty": "hard"}
    path = write_jsonl(tmp_path / "set.jsonl", [ITEM, "", second])
    evalset = load_eval_set(str(path))
    assert evalset.key is None and evalset.path == path and len(evalset.sha256) == 64
    assert [i.id for i in evalset.items] == ["e1", "2"]
    assert evalset.items[1].expected_answer == "7"
    assert evalset.items[1].section == "edge_case"


@pytest.mark.parametrize(
    ("bad", "where"),
    [
        ({**ITEM, "section": "misc"}, ":2: section:"),
        ({**ITEM, "difficulty": "trivial"}, ":2: difficulty:"),
        ({k: v for k, v in ITEM.items() if k != "prompt"}, ":2: prompt: missing"),
        ({**ITEM, "expected_answer": ""}, ":2: expected_answer: empty"),
        ({**ITEM, "category": ["x"]}, ":2: category:"),
        ({**ITEM}, ":2: id: duplicate"),
        ("{not json", ":2: json:"),
        ("[1, 2]", ":2: record:"),
    ],
)
def test_errors_name_file_line_field(tmp_path: Path, bad, where: str) -> None:
    path = write_jsonl(tmp_path / "set.jsonl", [ITEM, bad])
    with pytest.raises(DataError) as info:
        load_eval_set(str(path))
    assert f"{path}{where}" in str(info.value)


def test_line_separators_inside_strings_do_not_split_a_record(tmp_path: Path) -> None:
    # json.dumps(ensure_ascii=False) writes U+2028, U+2029 and U+0085 raw; str.splitlines() breaks on them.
    prompt = "Line one\u2028line two\u2029and\u0085three: what is 15 + 27?"
    first = json.dumps({**ITEM, "prompt": prompt}, ensure_ascii=False)
    path = tmp_path / "set.jsonl"
    path.write_text(first + "\r\n" + json.dumps({**ITEM, "id": "e2"}) + "\n", encoding="utf-8")
    assert [item.prompt for item in load_eval_set(str(path)).items] == [prompt, ITEM["prompt"]]
    path.write_text(
        first + "\n" + json.dumps({**ITEM, "id": "e2", "section": "misc"}) + "\n", encoding="utf-8"
    )
    with pytest.raises(DataError) as info:
        load_eval_set(str(path))
    assert f"{path}:2: section:" in str(info.value)  # line numbers count "\n" only


def test_missing_and_empty(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file and not a bundled key"):
        load_eval_set(str(tmp_path / "nope.jsonl"))
    with pytest.raises(DataError, match="empty"):
        load_eval_set(str(write_jsonl(tmp_path / "empty.jsonl", [])))
    with pytest.raises(DataError, match="directory"):
        load_eval_set(str(tmp_path))


def test_trace_file(tmp_path: Path) -> None:
    trace = {"trace_version": "1.0", "prompt": "Reverse 'ab'", "final_answer": "ba",
             "steps": [{"i": 0, "type": "process", "content": "reverse it"}],
             "meta": {"category": "synthetic", "task_type": "string_reverse"}}  # fmt: skip
    with_id = {**trace, "prompt": "Reverse 'cd'", "final_answer": "dc",
               "meta": {"id": "t-9", "difficulty": "easy", "section": "edge_case"}}  # fmt: skip
    path = write_jsonl(tmp_path / "traces.jsonl", [trace, "", with_id])
    items = load_eval_set(str(path)).items
    assert [(i.id, i.expected_answer, i.category) for i in items] == [
        ("line-1", "ba", "synthetic"),
        ("t-9", "dc", "uncategorized"),
    ]
    assert (items[1].section, items[1].difficulty) == ("edge_case", "easy")


def test_bundled_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_jsonl(tmp_path / "bundled.jsonl", [ITEM])
    monkeypatch.setattr(registry, "bundled_eval_set_path", lambda key: path if key == "my-set" else None)
    evalset = load_eval_set("my-set")
    assert (evalset.key, evalset.spec, evalset.path) == ("my-set", "my-set", path)


def test_every_bundled_eval_set_loads() -> None:
    for key in registry.EVAL_SETS:
        path = registry.bundled_eval_set_path(key)
        if path is None or not path.is_file():
            pytest.skip(f"bundled eval set {key} not built yet")
        evalset = load_eval_set(key)
        assert evalset.items and evalset.key == key
