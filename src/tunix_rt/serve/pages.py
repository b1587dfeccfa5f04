"""The data behind each page, as plain dicts for the templates (and the JSON endpoints).

A page about one run never raises for a damaged run: what cannot be read becomes an
`unreadable` message in the context.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunix_rt.evidence import EVAL_DIR
from tunix_rt.runs import display
from tunix_rt.runs.compare import config_diff, resolved_config, summary_deltas
from tunix_rt.runs.rundir import read_metrics, read_run
from tunix_rt.serve import detail, runs
from tunix_rt.serve.datasets import dataset_listing, dataset_view
from tunix_rt.serve.safepath import OutsideRoot, resolve_under


def runs_context(root: Path, sort: str, status: str, query: str) -> dict[str, Any]:
    rows = runs.sort_and_filter(runs.list_runs(root), sort, status, query)
    return {
        "groups": runs.group_by_eval_set(rows),
        "n_runs": len(rows),
        "sort": sort,
        "status": status,
        "query": query,
        "statuses": runs.STATUSES,
        "sort_keys": runs.SORT_KEYS,
        "any_running": any(r.get("status") == "running" for r in rows),
        "stale_after_s": runs.STALE_AFTER_S,
    }


def metrics_payload(name: str, path: Path) -> dict[str, Any]:
    """What the Run page polls: the curves so far, status and progress."""
    view = read_run(path)
    metrics = read_metrics(path)
    return {
        "name": name,
        "status": view.get("status") or ("unreadable" if display.unreadable_reason(view) else "unknown"),
        "series": display.series(metrics),
        "progress": runs.progress(view, metrics),
        "curves": display.curve_list(metrics),
        "log_tail": runs.log_tail(path),
    }


def run_context(name: str, path: Path) -> dict[str, Any]:
    try:
        view = read_run(path)
        reason = display.unreadable_reason(view)
        live = metrics_payload(name, path)
        context = {"name": name, "unreadable": reason, "live": live, "log_tail": live["log_tail"],
                   "evidence": detail.evidence(path), "completions": detail.completions(path)}  # fmt: skip
        if reason:
            return context
        return {**context, "view": view, "sections": display.manifest_sections(view),
                "command": display.reproduce_command(view), "checkpoints": detail.checkpoints(path),
                "eval_summary": view.eval_summary, "problems": view.problems,
                "eval_dirs": detail.eval_dirs(path)}  # fmt: skip
    except Exception as exc:  # a damaged run shows why instead of an error page
        return {"name": name, "unreadable": f"{type(exc).__name__}: {exc}"}


def _eval_block(path: Path, show: str, category: str) -> dict[str, Any] | None:
    summary, problem = display.read_summary(path)
    rows = display.predictions(path)
    if summary is None and not rows and problem is None:
        return None
    return {
        "summary": summary,
        "problem": problem,
        "n_rows": len(rows),
        "rows": detail.filter_predictions(rows, show, category),
        "categories": sorted({str(r.get("category")) for r in rows if r.get("category")}),
        "all_rows": rows,
    }


def eval_context(name: str, path: Path, show: str, category: str, which: str = EVAL_DIR) -> dict[str, Any]:
    """One evaluation of the run (`which`: eval or eval-SET) with its baseline, when it has one."""
    dirs = detail.eval_dirs(path)
    base = {"name": name, "show": show, "category": category, "dir": which, "dirs": dirs,
            "before_dir": detail.before_dir(which)}  # fmt: skip
    if which != EVAL_DIR and which not in dirs:  # only the run's own eval directories are read
        return {**base, "unreadable": f"{which}: no such evaluation directory in this run"}
    try:
        after = _eval_block(path / which, show, category)
        before = _eval_block(path / base["before_dir"], "all", "")
        flips = detail.flips(before["all_rows"], after["all_rows"]) if before and after else None
        return {**base, "unreadable": None, "after": after, "before": before, "flips": flips,
                "filters": list(detail.FILTERS)}  # fmt: skip
    except Exception as exc:  # a damaged eval shows why instead of an error page
        return {**base, "unreadable": f"{type(exc).__name__}: {exc}"}


def _compare_pair(base: Any, other: Any) -> dict[str, Any]:
    before = display.predictions(base.path / EVAL_DIR)
    after = display.predictions(other.path / EVAL_DIR)
    return {
        "a": base.name, "b": other.name,
        "config_diff": config_diff(resolved_config(base), resolved_config(other)),
        "summary": summary_deltas(base, other),
        "flips": detail.flips(before, after),
        "shared_items": len({str(r.get("id")) for r in before} & {str(r.get("id")) for r in after}),
    }  # fmt: skip


def compare_context(root: Path, names: list[str]) -> dict[str, Any]:
    all_runs = [r["name"] for r in runs.list_runs(root) if not r.get("unreadable")]
    chosen, errors, views, curves = [], [], [], []
    for name in names:
        try:
            path = resolve_under(root, name)
            view = read_run(path)
            if not path.is_dir() or display.unreadable_reason(view):
                raise OutsideRoot(display.unreadable_reason(view) or "no such run directory")
        except OutsideRoot as exc:
            errors.append(f"{name}: unreadable: {exc}")
            continue
        metrics = read_metrics(path)
        chosen.append({"name": name, "series": display.series(metrics)})
        curves += [c for c in display.curve_list(metrics) if c not in curves]
        views.append((name, view))
    pairs = [_compare_pair(views[0][1], v) | {"a": views[0][0], "b": n} for n, v in views[1:]]
    return {"all_runs": all_runs, "chosen": chosen, "selected": [c["name"] for c in chosen], "errors": errors,
            "pairs": pairs, "curves": curves or [list(c) for c in display.TRAIN_CURVES]}  # fmt: skip


def datasets_context(root: Path, rel: str, key: str, offset: int) -> dict[str, Any]:
    context: dict[str, Any] = {"listing": dataset_listing(root), "path": rel, "key": key, "view": None}
    if rel or key:
        context["view"] = dataset_view(root, rel, key, offset)
    return context
