"""What a run's pages show, shared by `tunix-rt serve` and RUN/report.html (runs/html_report.py).

The dashboard (serve/) imports this module; nothing here imports serve/, so report.html can be
written by `tunix-rt report` without the web app.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

from tunix_rt.evidence import EVAL_SUMMARY_FILE, MANIFEST, PREDICTIONS_FILE
from tunix_rt.runs.rundir import RunView, read_jsonl

# Manifest sections shown as tables, in this order; the rest go under "run".
SECTIONS = ("dataset", "model", "device", "versions", "plan", "summary", "eval", "timings", "tokenizer")
# The training curves every recipe logs: (metrics.jsonl key, chart title).
TRAIN_CURVES = (
    ("loss", "training loss"),
    ("lr", "learning rate"),
    ("grad_norm", "gradient norm"),
    ("tokens_per_sec", "throughput (tokens/s)"),
)
# The GRPO recipe's per-step curves (docs/grpo.md, Evidence), drawn when a run logs them.
RL_CURVES = (
    ("reward_mean", "reward (mean of all samples)"),
    ("reward_std", "reward (std of all samples)"),
    ("correctness_rate", "correctness rate"),
    ("format_rate", "format rate (all three checks)"),
    ("kl", "KL to the reference"),
    ("clip_fraction", "clip fraction"),
    ("zero_signal_fraction", "groups with no reward signal (fraction)"),
    ("completion_length_mean", "completion length (mean tokens)"),
    ("generation_tokens_per_sec", "generation throughput (tokens/s)"),
)
# Per reward function, GRPO logs reward/<name>/mean and reward/<name>/std.
_PER_REWARD = re.compile(r"^reward/(?P<name>[^/]+)/mean$")
# Metrics lines that are evaluations, not training steps (no curve values).
_EVAL_KEYS = ("eval_primary_score", "eval_before_primary_score")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def train_rows(metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        r for r in metrics if isinstance(r.get("step"), (int, float)) and not any(k in r for k in _EVAL_KEYS)
    ]


def reward_curves(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The RL curves present in `rows`: the fixed ones, then one per reward function."""
    present = {key for row in rows for key, value in row.items() if _number(value) is not None}
    fixed = [(k, t) for k, t in RL_CURVES if k in present]
    per_fn = {
        key: f"reward: {m['name']} (mean)" for row in rows for key in row if (m := _PER_REWARD.match(key))
    }
    return fixed + [(k, t) for k, t in per_fn.items() if k in present]


def curve_list(metrics: list[dict[str, Any]]) -> list[list[str]]:
    """[[key, title], ...]: the training curves, then whichever RL curves the run logs."""
    return [[k, t] for k, t in TRAIN_CURVES] + [[k, t] for k, t in reward_curves(train_rows(metrics))]


def series(metrics: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Column-wise training metrics: {'step': [...], 'loss': [...], ...} over the training rows
    (evaluation lines are left out). Missing values are None."""
    rows = train_rows(metrics)
    keys = [k for k, _ in TRAIN_CURVES] + [k for k, _ in reward_curves(rows)]
    out: dict[str, list[Any]] = {"step": [r["step"] for r in rows]}
    for key in keys:
        out[key] = [_number(r.get(key)) for r in rows]
    return out


def unreadable_reason(view: RunView) -> str | None:
    if view.manifest:
        return None
    return "; ".join(view.problems) or f"{MANIFEST}: empty"


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


def read_summary(eval_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(eval_summary.json, why it is unusable) of an eval output directory."""
    path = eval_dir / EVAL_SUMMARY_FILE
    if not path.is_file():
        return None, None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return None, f"{EVAL_SUMMARY_FILE}: unreadable ({exc})"
    return (value, None) if isinstance(value, dict) else (None, f"{EVAL_SUMMARY_FILE}: not a JSON object")


def predictions(eval_dir: Path) -> list[dict[str, Any]]:
    return read_jsonl(eval_dir / PREDICTIONS_FILE)
