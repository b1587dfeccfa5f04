"""`tunix-rt runs list [ROOT]`: one row per run directory, best score first within each eval set.

A run directory is any directory holding `run_manifest.json`, one or two levels below ROOT
(`runs/exp1` and `runs/sweep/lr-3e-4`). Missing pieces show as "-" and sort last.

A score means something only next to scores on the same eval set (a held-out set of templated
problems and a set of unseen phrasings differ by tens of points), so rows are grouped by eval set
(`RunView.eval_set_label`, which also tells a partial `--limit` run apart) and sorted within each
group; the table puts a blank line between groups, runs without an eval come last, and
`--eval-set NAME` keeps one group.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tunix_rt.errors import RunDirError
from tunix_rt.runs.rundir import MANIFEST, fmt, read_run

COLUMNS = ("run", "model", "dataset", "eval_set", "steps", "final_loss", "primary_score", "date", "status")
# Which way is "best first" for each column; everything else sorts ascending.
DESCENDING = {"primary_score", "steps", "date"}


def find_run_dirs(root: Path) -> list[Path]:
    root = Path(root)
    found = {p.parent for p in root.glob(f"*/{MANIFEST}")} | {p.parent for p in root.glob(f"*/*/{MANIFEST}")}
    if (root / MANIFEST).is_file():
        found.add(root)
    return sorted(found)


def run_row(run_dir: Path, root: Path) -> dict[str, Any]:
    view = read_run(run_dir)
    try:
        name = run_dir.relative_to(root).as_posix() or run_dir.name
    except ValueError:
        name = run_dir.name
    status = view.get("status")
    if view.problems and not view.manifest:
        status = "unreadable manifest"
    return {
        "run": name if name != "." else run_dir.name,
        "model": view.model_label,
        "dataset": view.dataset_label,
        "eval_set": view.eval_set_label,
        "steps": view.get("summary.global_step"),
        "final_loss": _number(view.get("summary.final_loss")),
        "primary_score": view.primary_score,
        "date": view.get("created_at"),
        "status": status,
        "path": str(run_dir),
    }


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def sort_rows(rows: list[dict[str, Any]], column: str) -> list[dict[str, Any]]:
    """Grouped by eval set (named sets alphabetically, runs without one last), each group by column."""
    if column not in COLUMNS:
        raise RunDirError(f"cannot sort by {column!r}; columns: {', '.join(COLUMNS)}")
    groups: dict[str | None, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row.get("eval_set"), []).append(row)
    order = sorted((k for k in groups if k is not None), key=str) + ([None] if None in groups else [])
    return [row for key in order for row in _sort_group(groups[key], column)]


def _sort_group(rows: list[dict[str, Any]], column: str) -> list[dict[str, Any]]:
    present = [r for r in rows if r.get(column) is not None]
    missing = [r for r in rows if r.get(column) is None]
    numeric = all(isinstance(r[column], (int, float)) for r in present)
    key = (lambda r: r[column]) if numeric else (lambda r: str(r[column]))
    # Stable sorts: ties keep the run-name order.
    present.sort(key=key, reverse=column in DESCENDING)
    return present + missing


def leaderboard(root: Path, sort: str = "primary_score", eval_set: str | None = None) -> list[dict[str, Any]]:
    """Rows of the runs under root, grouped by eval set; only eval_set's when given."""
    root = Path(root)
    if not root.is_dir():
        raise RunDirError(f"{root}: no such directory (runs are looked for in ROOT/*/ and ROOT/*/*/)")
    rows = [run_row(run_dir, root) for run_dir in find_run_dirs(root)]
    if eval_set is not None:
        rows = [row for row in rows if row["eval_set"] == eval_set]
    return sort_rows(rows, sort)


def format_table(rows: list[dict[str, Any]]) -> str:
    """Aligned columns; a blank line wherever the eval set changes, so no rank crosses sets."""
    cells = [[_cell(row, column) for column in COLUMNS] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)).rstrip()]
    for i, (row, cell_row) in enumerate(zip(rows, cells, strict=True)):
        if i and row.get("eval_set") != rows[i - 1].get("eval_set"):
            lines.append("")
        lines.append("  ".join(c.ljust(w) for c, w in zip(cell_row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _cell(row: dict[str, Any], column: str) -> str:
    value = row.get(column)
    if column == "primary_score" and isinstance(value, float):
        return f"{value:.3f}"
    if column == "date" and isinstance(value, str):
        return value[:16].replace("T", " ")
    return fmt(value)


def list_command(args: argparse.Namespace) -> int:
    root = Path(args.root)
    rows = leaderboard(root, args.sort, args.eval_set)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    if not rows:
        scope = f" scored on {args.eval_set!r}" if args.eval_set else ""
        print(f"no runs{scope} under {root} (looked for */{MANIFEST} and */*/{MANIFEST})")
        return 0
    print(format_table(rows))
    return 0
