"""`tunix-rt runs compare A B`: what changed between two runs and what it did.

Config diff (flattened dotted keys, only those that differ: `config.diff_configs`), summary deltas
(B - A), per-item flips from the two predictions.jsonl (by id), and both loss curves in one PNG
written where `--plot` says (default: the current directory, not into either run).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tunix_rt.config import diff_configs
from tunix_rt.errors import RunDirError
from tunix_rt.runs.plots import plot_loss_curves
from tunix_rt.runs.rundir import CONFIG, RunView, fmt, loss_series, read_predictions, read_run

# (label, where in the manifest); primary_score comes from RunView.
SUMMARY_FIELDS = (
    ("final_loss", "summary.final_loss"),
    ("primary_score", None),
    ("tokens_per_sec", "summary.tokens_per_sec"),
    ("train_runtime_s", "summary.train_runtime_s"),
    ("global_step", "summary.global_step"),
)
MAX_FLIPS_SHOWN = 10


def resolved_config(view: RunView) -> dict[str, Any]:
    """The manifest's resolved config, else config.yaml; {} when neither is readable."""
    resolved = view.get("config.resolved")
    if isinstance(resolved, dict):
        return resolved
    path = view.path / CONFIG
    if not path.is_file():
        return {}
    import yaml

    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        view.problems.append(f"{CONFIG}: unreadable ({exc})")
        return {}
    return loaded if isinstance(loaded, dict) else {}


def config_diff(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """The dotted keys whose values differ, as rows; the diff is config.py's, the one resume uses."""
    return [{"key": key, "a": va, "b": vb} for key, (va, vb) in diff_configs(a, b).items()]


def _summary_value(view: RunView, where: str | None) -> float | None:
    value = view.primary_score if where is None else view.get(where)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def summary_deltas(a: RunView, b: RunView) -> dict[str, dict[str, float | None]]:
    out = {}
    for label, where in SUMMARY_FIELDS:
        va, vb = _summary_value(a, where), _summary_value(b, where)
        out[label] = {"a": va, "b": vb, "delta": (vb - va) if va is not None and vb is not None else None}
    return out


def item_flips(a_dir: Path, b_dir: Path) -> dict[str, Any]:
    pa, pb = read_predictions(a_dir), read_predictions(b_dir)
    common = sorted(set(pa) & set(pb))
    return {
        "compared": len(common),
        "right_in_a_wrong_in_b": [i for i in common if pa[i].get("correct") and not pb[i].get("correct")],
        "wrong_in_a_right_in_b": [i for i in common if not pa[i].get("correct") and pb[i].get("correct")],
        "only_in_a": len(set(pa) - set(pb)),
        "only_in_b": len(set(pb) - set(pa)),
    }


def plot_path(a: RunView, b: RunView, plot: Path | None) -> Path:
    """Where the loss-curve PNG goes: plot itself, inside plot when it is a directory, else the
    current directory; never inside a run directory unless the user names it (a comparison is
    not part of run A's evidence)."""
    name = f"compare_{a.name}_vs_{b.name}.png"
    if plot is None:
        return Path.cwd() / name
    plot = Path(plot)
    return plot / name if plot.is_dir() else plot


def compare_runs(a_dir: Path, b_dir: Path, plot: Path | None = None) -> dict[str, Any]:
    for path in (a_dir, b_dir):
        if not Path(path).is_dir():
            raise RunDirError(f"{path}: no such run directory")
    a, b = read_run(Path(a_dir)), read_run(Path(b_dir))
    written = plot_loss_curves(
        {f"A: {a.name}": loss_series(a.path), f"B: {b.name}": loss_series(b.path)},
        plot_path(a, b, plot),
        title=f"{a.name} vs {b.name}",
    )
    return {
        "a": str(a.path),
        "b": str(b.path),
        "config_diff": config_diff(resolved_config(a), resolved_config(b)),
        "summary": summary_deltas(a, b),
        "flips": item_flips(a.path, b.path),
        "plot": str(written) if written else None,
        "problems": {"a": a.problems, "b": b.problems},
    }


def _fmt_delta(value: float | None) -> str:
    return "-" if value is None else f"{value:+.4g}"


def format_comparison(result: dict[str, Any]) -> str:
    lines = [f"A: {result['a']}", f"B: {result['b']}", "", "config (only differing keys):"]
    if result["config_diff"]:
        width = max(len(d["key"]) for d in result["config_diff"])
        lines += [f"  {d['key']:<{width}}  {fmt(d['a'])} -> {fmt(d['b'])}" for d in result["config_diff"]]
    else:
        lines.append("  (identical, or no config recorded)")
    lines += ["", "summary (B - A):"]
    for label, row in result["summary"].items():
        lines.append(f"  {label:<16} {fmt(row['a']):>10} -> {fmt(row['b']):>10}   {_fmt_delta(row['delta'])}")
    flips = result["flips"]
    lines += ["", f"per-item flips over {flips['compared']} shared items:"]
    for key, title in (("right_in_a_wrong_in_b", "right in A, wrong in B"),
                       ("wrong_in_a_right_in_b", "wrong in A, right in B")):  # fmt: skip
        ids = flips[key]
        shown = ", ".join(ids[:MAX_FLIPS_SHOWN]) + (" ..." if len(ids) > MAX_FLIPS_SHOWN else "")
        lines.append(f"  {title}: {len(ids)}" + (f"  ({shown})" if ids else ""))
    lines += ["", f"loss curves: {result['plot'] or '- (no metrics.jsonl with loss in either run)'}"]
    for side in ("a", "b"):
        for problem in result["problems"][side]:
            lines.append(f"note: {side.upper()}: {problem}")
    return "\n".join(lines)


def compare_command(args: argparse.Namespace) -> int:
    result = compare_runs(Path(args.a), Path(args.b), Path(args.plot) if args.plot else None)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(format_comparison(result))
    return 0
