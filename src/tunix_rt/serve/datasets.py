"""The Datasets page: JSONL trace files under ROOT and the bundled keys, browsed a page at a time.

Files are checked with the same loader as training (`validate_file`), so an invalid line shows
here exactly as `tunix-rt data validate` reports it: FILE:LINE: field: problem.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from tunix_rt.data.loader import validate_file
from tunix_rt.data.registry import DATASETS
from tunix_rt.errors import TunixError
from tunix_rt.evidence import COMPLETIONS, FINAL_MODEL, METRICS, PREDICTIONS_FILE
from tunix_rt.serve.safepath import OutsideRoot, relative_name, resolve_under
from tunix_rt.train.checkpoint import CHECKPOINTS

PAGE_SIZE = 25
MAX_FILES = 200
MAX_DEPTH = 4
# JSONL files a run writes about itself are not datasets.
NOT_DATASETS = {METRICS, PREDICTIONS_FILE, COMPLETIONS}
SKIP_DIRS = {CHECKPOINTS, FINAL_MODEL, ".git", "__pycache__"}


def dataset_files(root: Path) -> list[str]:
    """*.jsonl under ROOT (at most MAX_DEPTH levels down and MAX_FILES files), as names under ROOT."""
    base = Path(root).resolve()
    found: list[str] = []
    for current, dirs, files in os.walk(base):
        depth = len(Path(current).relative_to(base).parts)
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and depth < MAX_DEPTH)
        for name in sorted(files):
            if name.endswith(".jsonl") and name not in NOT_DATASETS:
                found.append(relative_name(base, Path(current) / name))
            if len(found) >= MAX_FILES:
                return found
    return found


def dataset_listing(root: Path) -> dict[str, Any]:
    keys = [{"key": spec.key, "description": spec.description} for spec in DATASETS.values()]
    return {"files": dataset_files(root), "bundled": keys}


def _trace_rows(result: Any, offset: int) -> list[dict[str, Any]]:
    rows = []
    for trace in result.traces[offset : offset + PAGE_SIZE]:
        rows.append({"prompt": trace.prompt, "steps": [(s.i, s.type, s.content) for s in trace.steps],
                     "final_answer": trace.final_answer, "meta": trace.meta})  # fmt: skip
    return rows


def dataset_view(root: Path, rel: str, key: str, offset: int) -> dict[str, Any]:
    """One page of traces and every problem of the file; `error` when it cannot be read at all."""
    label = rel or key
    try:
        if rel:
            path = resolve_under(root, rel)
        else:
            from tunix_rt.data.resolver import resolve_dataset

            if key.split(":")[0] not in DATASETS:
                return {"label": label, "error": f"{key!r} is not a bundled dataset key"}
            path = resolve_dataset(key).path  # built into the dataset cache on first use
        result = validate_file(path)
    except (OutsideRoot, TunixError) as exc:
        return {"label": label, "error": str(exc)}
    shown = rel or str(path)
    problems = [str(dataclasses.replace(p, file=shown)) for p in result.problems]
    return {
        "label": label,
        "error": None,
        "n_traces": len(result.traces),
        "records": result.records,
        "sha256": result.sha256,
        "problems": problems,
        "n_errors": len(result.errors),
        "traces": _trace_rows(result, offset),
        "offset": offset,
        "next": offset + PAGE_SIZE if offset + PAGE_SIZE < len(result.traces) else None,
        "prev": max(0, offset - PAGE_SIZE) if offset else None,
    }
