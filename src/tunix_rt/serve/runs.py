"""What the dashboard shows about runs, read from the files at every request (nothing cached).

Every reader here tolerates a run that is being written (a torn last metrics line is skipped, a
file that vanishes between listing and reading is "missing") and a damaged one: the row of a run
that cannot be read carries `unreadable: why` instead of taking the page down. Files are opened
for reading only, never locked, so a training process writing them is not disturbed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tunix_rt.evidence import LOG, METRICS
from tunix_rt.runs.display import unreadable_reason
from tunix_rt.runs.leaderboard import find_run_dirs
from tunix_rt.runs.rundir import MANIFEST, RunView, read_metrics, read_run
from tunix_rt.serve.safepath import relative_name

STATUSES = ("running", "completed", "failed", "interrupted")
# A running run silent for longer than this is flagged on the Runs page (its process may be gone).
STALE_AFTER_S = 600


def discover(root: Path) -> list[Path]:
    """Run directories one or two levels below ROOT: those with a manifest, and those that only
    have metrics.jsonl (a run whose manifest is gone or not yet written shows as unreadable)."""
    root = Path(root)
    found = set(find_run_dirs(root))
    found |= {p.parent for p in root.glob(f"*/{METRICS}")} | {p.parent for p in root.glob(f"*/*/{METRICS}")}
    base = root.resolve()
    # A symlinked run that points outside ROOT is not served (it could not be opened either).
    return sorted(p for p in found if p.resolve() == base or base in p.resolve().parents)


def progress(view: RunView, metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """Step of total, the latest tokens/s and an ETA from this process's seconds per step."""
    train_rows = [r for r in metrics if isinstance(r.get("step"), (int, float)) and "loss" in r]
    last = train_rows[-1] if train_rows else {}
    total = view.get("plan.total_steps")
    step = last.get("step") or view.get("summary.global_step")
    start = view.get("plan.start_step") or 0
    elapsed = last.get("elapsed_s")
    eta = None
    if all(isinstance(v, (int, float)) for v in (total, step, elapsed)) and step > start and total >= step:
        eta = (total - step) * elapsed / (step - start)
    return {
        "step": step,
        "total": total,
        "fraction": step / total
        if isinstance(step, (int, float)) and isinstance(total, int) and total
        else None,
        "tokens_per_sec": last.get("tokens_per_sec", view.get("summary.tokens_per_sec")),
        "eta_s": eta,
        "last_loss": last.get("loss"),
    }


def idle_seconds(run_dir: Path) -> float | None:
    """Seconds since the run last wrote its metrics, log or manifest: a "running" run that has been
    silent for long was probably killed without a chance to record it (kill -9, power loss)."""
    times = []
    for name in (METRICS, LOG, MANIFEST):
        try:
            times.append((run_dir / name).stat().st_mtime)
        except OSError:
            continue  # not written yet, or removed between listing and reading
    return max(0.0, time.time() - max(times)) if times else None


def eval_set_of(view: RunView) -> str | None:
    summary = view.eval_summary or {}
    spec = (summary.get("eval_set") or {}).get("spec") if isinstance(summary.get("eval_set"), dict) else None
    return spec or view.get("eval.eval_set")


def run_row(root: Path, run_dir: Path) -> dict[str, Any]:
    """One row of the Runs page; a run that cannot be read has `unreadable` set and little else."""
    name = relative_name(root, run_dir)
    try:
        view = read_run(run_dir)
        reason = unreadable_reason(view)
        if reason:
            return {"name": name, "unreadable": reason, "status": "unreadable"}
        metrics = read_metrics(run_dir)
        return {
            "name": name,
            "unreadable": None,
            "status": str(view.get("status") or "unknown"),
            "run_id": view.get("run_id"),
            "model": view.model_label,
            "dataset": view.dataset_label,
            "eval_set": eval_set_of(view),
            "score": view.primary_score,
            "final_loss": view.get("summary.final_loss"),
            "created_at": view.get("created_at"),
            "error": view.get("error"),
            "progress": progress(view, metrics),
            "idle_s": idle_seconds(run_dir),
            "problems": view.problems,
        }
    except Exception as exc:  # one damaged run must never take the whole page down
        return {"name": name, "unreadable": f"{type(exc).__name__}: {exc}", "status": "unreadable"}


def list_runs(root: Path) -> list[dict[str, Any]]:
    return [run_row(root, run_dir) for run_dir in discover(root)]


SORT_KEYS = ("score", "created_at", "name", "final_loss", "status")


def sort_and_filter(
    rows: list[dict[str, Any]], sort: str = "score", status: str = "", query: str = ""
) -> list[dict[str, Any]]:
    """Filter by status and a substring of name/model/dataset; sort with missing values last."""
    if status:
        rows = [r for r in rows if r.get("status") == status]
    if query:
        q = query.lower()
        rows = [
            r for r in rows if any(q in str(r.get(k) or "").lower() for k in ("name", "model", "dataset"))
        ]
    sort = sort if sort in SORT_KEYS else "score"
    present = [r for r in rows if r.get(sort) is not None]
    missing = [r for r in rows if r.get(sort) is None]
    present.sort(key=lambda r: r[sort], reverse=sort in {"score", "created_at"})
    return present + missing


def group_by_eval_set(rows: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Scores are only comparable within one eval set: one table per set, unevaluated runs last."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row.get("eval_set") or "", []).append(row)
    named = sorted((k, v) for k, v in groups.items() if k)
    return named + ([("", groups[""])] if "" in groups else [])


def tail_text(path: Path, max_lines: int = 200, max_bytes: int = 64 * 1024) -> str | None:
    """The last lines of a text file that may be growing; reads only its last max_bytes."""
    if not path.is_file():
        return None
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - max_bytes))
        data = handle.read()
    lines = data.decode("utf-8", errors="replace").splitlines()
    if size > max_bytes:
        lines = lines[1:]  # the first line was cut by the seek
    return "\n".join(lines[-max_lines:])


def log_tail(run_dir: Path) -> str | None:
    return tail_text(run_dir / LOG)


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)
