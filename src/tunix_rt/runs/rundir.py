"""Read a run directory tolerantly: every piece may be missing or damaged, nothing here raises.

A failed or interrupted run has no eval, a run killed early may have no metrics; the readers
return None / [] for what is absent and record what was unreadable in `RunView.problems`, so the
leaderboard, compare and report show "-" instead of crashing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunix_rt.evidence import (
    CONFIG,
    EVAL_SUMMARY,
    LOSS_CURVE,
    MANIFEST,
    METRICS,
    PREDICTIONS,
    read_jsonl,
)

__all__ = ["CONFIG", "LOSS_CURVE", "MANIFEST", "METRICS", "read_jsonl"]  # the names runs/ reads by

MISSING = "-"


@dataclass
class RunView:
    path: Path
    manifest: dict[str, Any] = field(default_factory=dict)
    eval_summary: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    def get(self, dotted: str, default: Any = None) -> Any:
        """manifest value at 'a.b.c', or default when any level is missing or not a dict."""
        return dig(self.manifest, dotted, default)

    @property
    def model_label(self) -> str | None:
        """The hub id, or for a from-scratch model e.g. 'scratch-llama-4.5M'."""
        if self.get("model.id"):
            return str(self.get("model.id"))
        arch = str(self.get("model.architecture") or "").removesuffix("ForCausalLM").lower()
        params = self.get("model.parameters")
        size = f"{params / 1e6:.1f}M" if isinstance(params, (int, float)) and params else ""
        parts = [str(p) for p in (self.get("model.init"), arch, size) if p]
        return "-".join(parts) or None

    @property
    def dataset_label(self) -> str | None:
        """The spec as given ('reasoning-mix:2000'), else the key, else the file name."""
        for value in (self.get("dataset.spec"), self.get("dataset.key")):
            if value:
                return str(value)
        path = self.get("dataset.path")
        return Path(path).name if isinstance(path, str) and path else None

    @property
    def eval_set_label(self) -> str | None:
        """The eval set the score is on ('reasoning-mix-heldout'), '(first N of M)' added when the
        run scored only part of it: scores are comparable only under equal labels."""
        block = (self.eval_summary or {}).get("eval_set")
        if isinstance(block, dict) and (block.get("spec") or block.get("key")):
            label = str(block.get("spec") or block.get("key"))
            n, available = block.get("n_items"), block.get("n_available")
            if isinstance(n, int) and isinstance(available, int) and n < available:
                label += f" (first {n} of {available})"
            return label
        spec = self.get("eval.eval_set")
        return str(spec) if spec else None

    @property
    def primary_score(self) -> float | None:
        """From eval/eval_summary.json when present (it is the full record), else the manifest."""
        for source in (self.eval_summary, self.get("eval")):
            if isinstance(source, dict) and isinstance(source.get("primary_score"), (int, float)):
                return float(source["primary_score"])
        return None


def dig(obj: Any, dotted: str, default: Any = None) -> Any:
    for part in dotted.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return default
        obj = obj[part]
    return obj


def _read_json(path: Path, problems: list[str]) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        problems.append(f"{path.name}: unreadable ({exc})")
        return None


def read_run(path: Path) -> RunView:
    path = Path(path)
    view = RunView(path=path)
    # Tolerant, unlike evidence.read_manifest: a damaged run is shown with what is wrong with it.
    manifest = _read_json(path / MANIFEST, view.problems)
    if isinstance(manifest, dict):
        view.manifest = manifest
    elif manifest is not None:
        view.problems.append(f"{MANIFEST}: not a JSON object")
    elif not (path / MANIFEST).exists():
        view.problems.append(f"{MANIFEST}: missing")
    summary = _read_json(path / EVAL_SUMMARY, view.problems)
    view.eval_summary = summary if isinstance(summary, dict) else None
    return view


def read_metrics(path: Path) -> list[dict[str, Any]]:
    return read_jsonl(Path(path) / METRICS)


def loss_series(run_dir: Path) -> tuple[list[float], list[float]]:
    """(steps, losses) from metrics.jsonl, skipping lines without a numeric step and loss."""
    steps: list[float] = []
    losses: list[float] = []
    for row in read_metrics(run_dir):
        step, loss = row.get("step"), row.get("loss")
        if isinstance(step, (int, float)) and isinstance(loss, (int, float)):
            steps.append(float(step))
            losses.append(float(loss))
    return steps, losses


def read_predictions(run_dir: Path) -> dict[str, dict[str, Any]]:
    """id -> prediction row of eval/predictions.jsonl."""
    return {str(row["id"]): row for row in read_jsonl(Path(run_dir) / PREDICTIONS) if "id" in row}


def fmt(value: Any, digits: int = 4) -> str:
    """A table cell: '-' for missing, floats rounded."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e5 else f"{value:.0f}"
    return str(value)
