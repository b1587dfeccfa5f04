"""JSONL file -> validated traces, with every problem located as FILE:LINE: field: message.

Lines are read as bytes and decoded here, so a bad byte or an oversized line is reported with its
true line number instead of aborting the whole read.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import ValidationError

from tunix_rt.data.convert import ConversionError, to_native
from tunix_rt.data.schema import ReasoningTrace
from tunix_rt.errors import DataError

MAX_LINE_BYTES = 10 * 1024 * 1024
MAX_ERRORS_IN_MESSAGE = 10
ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One located problem; `level` is "error" (record rejected) or "warning" (record kept)."""

    file: str
    line: int
    field: str
    message: str
    level: str = ERROR

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


@dataclass
class LoadResult:
    path: Path
    traces: list[ReasoningTrace]
    skipped: int = 0
    problems: list[Problem] = field(default_factory=list)
    conversions: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    sha256: str = ""
    records: int = 0  # non-blank lines seen

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.level == WARNING]


def load_traces(path: str | Path, *, skip_invalid: bool = False) -> LoadResult:
    """Read a JSONL trace file.

    Default: any invalid line raises DataError naming the first bad lines. With skip_invalid the
    bad lines are dropped and reported in `skipped` and `problems`. Duplicates are kept and
    reported as warnings either way.
    """
    result = scan_file(path)
    if result.errors and not skip_invalid:
        raise DataError(_error_summary(result))
    return result


def validate_file(path: str | Path) -> LoadResult:
    """Check a file without raising for bad records: everything is in `problems`."""
    return scan_file(path)


def scan_file(path: str | Path) -> LoadResult:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a JSONL file")
    result = LoadResult(path=path, traces=[])
    digest = hashlib.sha256()
    conversions: Counter[str] = Counter()
    first_seen: dict[tuple[Any, ...], int] = {}
    name = str(path)
    try:
        with open(path, "rb") as handle:
            _scan(handle, name, result, digest, conversions, first_seen)
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    result.conversions = dict(sorted(conversions.items()))
    result.sha256 = digest.hexdigest()
    return result


def _scan(
    handle: BinaryIO,
    name: str,
    result: LoadResult,
    digest: Any,
    conversions: Counter[str],
    first_seen: dict[tuple[Any, ...], int],
) -> None:
    for line_no, raw, too_long in _lines(handle, digest):
        if not too_long and not raw.strip():
            continue
        result.records += 1
        problems, trace, conversion = _parse_line(name, line_no, raw, too_long)
        if problems:
            result.problems.extend(problems)
            result.skipped += 1
            continue
        assert trace is not None
        if conversion:
            conversions[conversion] += 1
        identity = trace.identity()
        if identity in first_seen:
            result.duplicates += 1
            result.problems.append(
                Problem(
                    name,
                    line_no,
                    "record",
                    f"duplicate of line {first_seen[identity]} (same prompt, steps and final_answer)",
                    WARNING,
                )
            )
        else:
            first_seen[identity] = line_no
        result.traces.append(trace)


def _lines(handle: BinaryIO, digest: Any):
    """Yield (line number, bytes, too_long); an oversized line is skipped unread, never parsed."""
    line_no = 0
    while True:
        chunk = handle.readline(MAX_LINE_BYTES + 1)
        if not chunk:
            return
        digest.update(chunk)
        line_no += 1
        if len(chunk) > MAX_LINE_BYTES and not chunk.endswith(b"\n"):
            # Drain the rest of this line in bounded pieces so memory stays flat.
            while chunk and not chunk.endswith(b"\n"):
                chunk = handle.readline(1 << 20)
                digest.update(chunk)
            yield line_no, b"", True
            continue
        yield line_no, chunk, False


def _parse_line(
    name: str, line_no: int, raw: bytes, too_long: bool
) -> tuple[list[Problem], ReasoningTrace | None, str | None]:
    def problem(field_name: str, message: str) -> tuple[list[Problem], None, None]:
        return [Problem(name, line_no, field_name, message)], None, None

    if too_long:
        return problem("line", f"longer than {MAX_LINE_BYTES} bytes; refused without parsing")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return problem("encoding", f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return problem("json", f"invalid JSON: {exc.msg} (column {exc.colno})")
    except RecursionError:
        return problem("json", "invalid JSON: nested too deeply")
    except ValueError as exc:  # e.g. an integer literal longer than Python's digit limit
        return problem("json", f"invalid JSON: {exc}")
    if not isinstance(value, dict):
        return problem("record", f"expected a JSON object, got {_json_type(value)}")
    try:
        native, conversion = to_native(value)
    except ConversionError as exc:
        return problem(exc.field, exc.message)
    try:
        trace = ReasoningTrace.model_validate(native)
    except ValidationError as exc:
        problems = [
            Problem(name, line_no, _field_path(err["loc"]), err["msg"].removeprefix("Value error, "))
            for err in exc.errors(include_url=False)
        ]
        return problems, None, None
    return [], trace, conversion


def _field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "record"


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def _error_summary(result: LoadResult) -> str:
    bad_lines = sorted({p.line for p in result.errors})
    shown = [p for p in result.errors if p.line in set(bad_lines[:MAX_ERRORS_IN_MESSAGE])]
    lines = [f"{result.path}: {len(bad_lines)} invalid record(s) of {result.records}:"]
    lines += [f"  {p}" for p in shown]
    if len(bad_lines) > MAX_ERRORS_IN_MESSAGE:
        lines.append(f"  ... and {len(bad_lines) - MAX_ERRORS_IN_MESSAGE} more")
    lines.append("(fix them, or load with skip_invalid=True to drop them)")
    return "\n".join(lines)
