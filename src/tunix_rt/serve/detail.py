"""The Run and Evaluation pages' content: manifest sections, evidence, checkpoints, predictions.

Eval outputs: RUN/eval/ is the evaluation after training (what `training.eval_set` writes). A
baseline evaluated into RUN/eval_before/ (e.g. `tunix-rt eval --model BASE -o RUN/eval_before`)
makes the Evaluation page show before/after and the items that flipped.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from tunix_rt.eval.runner import PREDICTIONS_FILE, SUMMARY_FILE
from tunix_rt.evidence import COMPLETIONS, EVAL_BEFORE_DIR
from tunix_rt.runs.report import EVIDENCE
from tunix_rt.runs.rundir import RunView, read_jsonl
from tunix_rt.train.checkpoint import STATE_FILE, list_checkpoints

BEFORE_DIR = EVAL_BEFORE_DIR
# An RL recipe's sampled completions, one JSON object per line ({step, prompt, completion, reward...}).
MAX_COMPLETIONS_SHOWN = 200

# Manifest sections shown as tables on the Run page, in this order; the rest go under "other".
SECTIONS = ("dataset", "model", "device", "versions", "plan", "summary", "eval", "timings", "tokenizer")


def flat_items(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """A nested manifest block as (dotted key, readable value) rows."""
    if isinstance(value, dict):
        rows: list[tuple[str, str]] = []
        for key, inner in value.items():
            rows += flat_items(inner, f"{prefix}.{key}" if prefix else str(key))
        return rows
    if isinstance(value, list) and not all(isinstance(v, (str, int, float)) for v in value):
        return [(prefix, json.dumps(value, default=str))]
    if isinstance(value, list):
        return [(prefix, ", ".join(str(v) for v in value))]
    return [(prefix, "-" if value is None else str(value))]


def manifest_sections(view: RunView) -> list[tuple[str, list[tuple[str, str]]]]:
    manifest = view.manifest
    out = [(name, flat_items(manifest[name])) for name in SECTIONS if isinstance(manifest.get(name), dict)]
    config = manifest.get("config")
    if isinstance(config, dict):
        out.insert(0, ("config", flat_items(config.get("resolved", config))))
    shown = {*SECTIONS, "config", "command"}
    rest = {k: v for k, v in manifest.items() if k not in shown}
    if rest:
        out.append(("run", flat_items(rest)))
    return out


def reproduce_command(view: RunView) -> str | None:
    command = view.get("command")
    if isinstance(command, list) and command:
        return shlex.join(str(part) for part in command)
    return command if isinstance(command, str) and command else None


def evidence(run_dir: Path) -> list[dict[str, Any]]:
    return [
        {"name": name, "proves": proves, "present": (run_dir / name).exists()} for name, proves in EVIDENCE
    ]


def checkpoints(run_dir: Path) -> list[dict[str, Any]]:
    out = []
    for path in list_checkpoints(run_dir):
        try:
            state = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            state = {"unreadable": str(exc)}
        out.append({"name": path.name, "state": state if isinstance(state, dict) else {}})
    return out


def read_summary(eval_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(eval_summary.json, why it is unusable) of an eval output directory."""
    path = eval_dir / SUMMARY_FILE
    if not path.is_file():
        return None, None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return None, f"{SUMMARY_FILE}: unreadable ({exc})"
    return (value, None) if isinstance(value, dict) else (None, f"{SUMMARY_FILE}: not a JSON object")


def predictions(eval_dir: Path) -> list[dict[str, Any]]:
    return read_jsonl(eval_dir / PREDICTIONS_FILE)


def has_answer(row: dict[str, Any]) -> bool:
    return row.get("answer") not in (None, "")


FILTERS = {
    "all": lambda row: True,
    "wrong": lambda row: not row.get("correct"),
    "right": lambda row: bool(row.get("correct")),
    "no_answer": lambda row: not has_answer(row),
}


def filter_predictions(rows: list[dict[str, Any]], show: str, category: str) -> list[dict[str, Any]]:
    keep = FILTERS.get(show, FILTERS["all"])
    return [r for r in rows if keep(r) and (not category or r.get("category") == category)]


def flips(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Items judged differently before and after, by id (only ids present in both)."""
    by_id = {str(r["id"]): r for r in before if "id" in r}
    fixed, broken = [], []
    for row in after:
        old = by_id.get(str(row.get("id")))
        if old is None or bool(old.get("correct")) == bool(row.get("correct")):
            continue
        (fixed if row.get("correct") else broken).append({"id": row["id"], "before": old, "after": row})
    return {"fixed": fixed, "broken": broken}


def completions(run_dir: Path) -> list[dict[str, Any]]:
    """The latest sampled completions of an RL run (last MAX_COMPLETIONS_SHOWN lines), newest first."""
    rows = read_jsonl(run_dir / COMPLETIONS)
    return list(reversed(rows[-MAX_COMPLETIONS_SHOWN:]))
