"""The Run and Evaluation pages' content: manifest sections, evidence, checkpoints, predictions.

Eval outputs: RUN/eval/ is the evaluation after training (what `training.eval_set` writes). A
baseline evaluated into RUN/eval_before/ (e.g. `tunix-rt eval --model BASE -o RUN/eval_before`)
makes the Evaluation page show before/after and the items that flipped. Other eval sets live in
RUN/eval-SET/ with their baseline in RUN/eval_before-SET/ (`tunix-rt demo` writes reasoning-eval-v1
so); the Evaluation page shows one evaluation at a time (`?dir=eval-SET`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunix_rt.evidence import COMPLETIONS, EVAL_BEFORE_DIR, EVAL_DIR
from tunix_rt.runs.report import EVIDENCE
from tunix_rt.runs.rundir import read_jsonl
from tunix_rt.train.checkpoint import STATE_FILE, list_checkpoints

MAX_COMPLETIONS_SHOWN = 200


def evidence(run_dir: Path) -> list[dict[str, Any]]:
    """Each evidence file with what it proves; `file` marks those the dashboard can open (not dirs)."""
    return [
        {
            "name": name,
            "proves": proves,
            "present": (run_dir / name).exists(),
            "file": (run_dir / name).is_file(),
        }
        for name, proves in EVIDENCE
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


def eval_dirs(run_dir: Path) -> list[str]:
    """The run's evaluation directories: eval/ first, then eval-SET/ by name."""
    others = sorted(p.name for p in run_dir.glob(f"{EVAL_DIR}-*") if p.is_dir())
    return ([EVAL_DIR] if (run_dir / EVAL_DIR).is_dir() else []) + others


def before_dir(eval_dir: str) -> str:
    """The baseline's directory for an evaluation directory: eval -> eval_before, eval-X -> eval_before-X."""
    return EVAL_BEFORE_DIR + eval_dir[len(EVAL_DIR) :]


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


def completions(run_dir: Path) -> dict[str, Any] | None:
    """A GRPO run's latest sampled completions (the last MAX_COMPLETIONS_SHOWN lines of
    completions.jsonl), newest step first and in sampling order within a step, with the names of
    the reward functions scored per line (docs/grpo.md, Evidence); None when the run has none."""
    rows = read_jsonl(run_dir / COMPLETIONS)[-MAX_COMPLETIONS_SHOWN:]
    if not rows:
        return None
    rows.sort(key=lambda r: -r["step"] if isinstance(r.get("step"), (int, float)) else 0)
    names = {name: None for r in rows if isinstance(r.get("rewards"), dict) for name in r["rewards"]}
    return {"rows": rows, "reward_names": list(names)}
