"""Eval sets: a bundled key or a JSONL path -> EvalSet of EvalItems.

Two file shapes are read:

* the eval-set format (the original's): one object per line with ``id, prompt, expected_answer,
  section ∈ {core, trace_sensitive, edge_case}, category, difficulty ∈ {easy, medium, hard}``;
* reasoning-trace files (anything `data.loader.load_traces` accepts), so a held-out slice of a
  dataset can be scored directly: ``final_answer`` is the expected answer, the id comes from
  ``meta.id`` / ``meta.trace_id`` or else the line number, and section / category / difficulty
  from meta when present.

The shape is decided by the first record: it is an eval item when it has ``expected_answer``.
Every problem is reported as ``FILE:LINE: field: message``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunix_rt.errors import DataError
from tunix_rt.fsutil import jsonl_lines, sha256_file

SECTIONS = ("core", "trace_sensitive", "edge_case")
DIFFICULTIES = ("easy", "medium", "hard")
REQUIRED = ("id", "prompt", "expected_answer", "section", "category", "difficulty")
MAX_ERRORS_IN_MESSAGE = 10


@dataclass(frozen=True)
class EvalItem:
    id: str
    prompt: str
    expected_answer: str
    section: str
    category: str
    difficulty: str


@dataclass(frozen=True)
class EvalSet:
    spec: str  # what the user asked for
    key: str | None  # the bundled key, when spec was one
    path: Path
    sha256: str
    items: list[EvalItem]


def load_eval_set(spec: str) -> EvalSet:
    """Resolve spec (bundled key or path) and read its items; DataError names file:line:field."""
    key, path = _resolve(spec)
    records = _read_records(path)
    if not records:
        raise DataError(f"{path}: eval set is empty")
    first = records[0][1]
    if "expected_answer" in first:
        items = _eval_items(path, records)
    else:
        items = _trace_items(path, [line for line, _ in records])
    return EvalSet(spec=spec, key=key, path=path, sha256=sha256_file(path), items=items)


def _resolve(spec: str) -> tuple[str | None, Path]:
    from tunix_rt.data import registry

    bundled = registry.bundled_eval_set_path(spec)
    if bundled is not None:
        if not bundled.is_file():
            raise DataError(f"bundled eval set {spec!r} is missing its file {bundled} (broken install?)")
        return spec, bundled
    path = Path(spec).expanduser()
    if path.is_file():
        return None, path
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected an eval-set JSONL file")
    keys = ", ".join(sorted(registry.EVAL_SETS)) or "none"
    raise DataError(f"eval set {spec!r}: no such file and not a bundled key (bundled: {keys})")


def _read_records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; every bad line is reported at once."""
    records: list[tuple[int, dict[str, Any]]] = []
    errors: list[str] = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    for line_no, line in enumerate(jsonl_lines(text), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"{path}:{line_no}: json: invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(value, dict):
            errors.append(f"{path}:{line_no}: record: expected a JSON object")
            continue
        records.append((line_no, value))
    _raise_if(path, errors)
    return records


def _eval_items(path: Path, records: list[tuple[int, dict[str, Any]]]) -> list[EvalItem]:
    items: list[EvalItem] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for line_no, record in records:
        where = f"{path}:{line_no}"
        problems = _check_item(record)
        if problems:
            errors.extend(f"{where}: {field}: {message}" for field, message in problems)
            continue
        item = EvalItem(**{name: _text(record[name]) for name in REQUIRED})
        if item.id in seen:
            errors.append(f"{where}: id: duplicate id {item.id!r} (first on line {seen[item.id]})")
            continue
        seen[item.id] = line_no
        items.append(item)
    _raise_if(path, errors)
    return items


def _check_item(record: dict[str, Any]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for name in REQUIRED:
        value = record.get(name)
        if value is None:
            problems.append((name, "missing"))
        elif isinstance(value, bool) or not isinstance(value, (str, int, float)):
            problems.append((name, f"expected a string, got {type(value).__name__}"))
        elif not _text(value):
            problems.append((name, "empty"))
    if not problems:
        if _text(record["section"]) not in SECTIONS:
            problems.append(("section", f"{record['section']!r} is not one of {', '.join(SECTIONS)}"))
        if _text(record["difficulty"]) not in DIFFICULTIES:
            problems.append(
                ("difficulty", f"{record['difficulty']!r} is not one of {', '.join(DIFFICULTIES)}")
            )
    return problems


def _trace_items(path: Path, line_numbers: list[int]) -> list[EvalItem]:
    from tunix_rt.data.loader import load_traces

    traces = load_traces(path).traces  # raises DataError with file:line:field on any bad record
    if len(traces) != len(line_numbers):  # defensive: line numbers only label the default ids
        line_numbers = list(range(1, len(traces) + 1))
    items: list[EvalItem] = []
    seen: set[str] = set()
    for line_no, trace in zip(line_numbers, traces, strict=True):
        meta = trace.meta or {}
        item_id = _text(meta.get("id") or meta.get("trace_id") or f"line-{line_no}")
        if item_id in seen:  # a generator may reuse ids; the line keeps them apart
            item_id = f"{item_id}@{line_no}"
        seen.add(item_id)
        items.append(
            EvalItem(
                id=item_id,
                prompt=trace.prompt,
                expected_answer=trace.final_answer.strip(),
                section=_text(meta.get("section") or "core"),
                category=_text(meta.get("category") or meta.get("task_type") or "uncategorized"),
                difficulty=_text(meta.get("difficulty") or "unknown"),
            )
        )
    return items


def _text(value: Any) -> str:
    return str(value).strip()


def _raise_if(path: Path, errors: list[str]) -> None:
    if not errors:
        return
    shown = errors[:MAX_ERRORS_IN_MESSAGE]
    more = f"\n  ... and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
    raise DataError(f"{path}: {len(errors)} problem(s):\n  " + "\n  ".join(shown) + more)
