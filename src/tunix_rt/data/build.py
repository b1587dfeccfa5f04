"""Generate a bundled dataset into DIR/dataset.jsonl + DIR/manifest.json (both written atomically)."""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tunix_rt.data.registry import DATASETS, DatasetSpec
from tunix_rt.data.schema import SCHEMA_VERSION, ReasoningTrace
from tunix_rt.data.stats import trace_stats
from tunix_rt.errors import DataError
from tunix_rt.fsutil import atomic_write_json, atomic_write_text

DATASET_FILE = "dataset.jsonl"
MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class BuildResult:
    key: str
    path: Path  # the dataset.jsonl
    manifest: dict[str, Any]


def parse_key(spec: str) -> tuple[str, int | None]:
    """'reasoning-mix:5000' -> ('reasoning-mix', 5000); 'dev-reasoning-v2' -> (key, None)."""
    key, sep, size = spec.partition(":")
    if not sep:
        return spec, None
    if not size.isdigit():
        raise DataError(f"dataset spec {spec!r}: size after ':' must be a positive whole number")
    return key, int(size)


def lookup(key: str) -> DatasetSpec:
    spec = DATASETS.get(key)
    if spec is None:
        raise DataError(f"unknown dataset key {key!r}; bundled keys: {', '.join(DATASETS)}")
    return spec


def effective_params(spec: DatasetSpec, seed: int | None, size: int | None) -> tuple[int, int]:
    size = spec.default_size if size is None else size
    if not spec.sizable and size != spec.default_size:
        raise DataError(f"{spec.key} has a fixed size of {spec.default_size}; --size {size} is not allowed")
    if not 1 <= size <= spec.max_size:
        raise DataError(f"{spec.key}: size must be between 1 and {spec.max_size}, got {size}")
    return (spec.default_seed if seed is None else seed), size


def generate_jsonl(spec: DatasetSpec, seed: int, size: int) -> tuple[str, list[ReasoningTrace]]:
    module_name, func_name = spec.generator.split(":")
    generate = getattr(importlib.import_module(module_name), func_name)
    try:
        records = generate(seed, size)
    except ValueError as exc:  # e.g. more distinct prompts requested than a generator can make
        raise DataError(f"{spec.key}: {exc}") from exc
    # Validate through the schema so a generator bug can never write an unloadable dataset.
    traces = [ReasoningTrace.model_validate(record) for record in records]
    text = "".join(json.dumps(t.to_json_dict(), ensure_ascii=False) + "\n" for t in traces)
    return text, traces


def build_dataset(
    key: str, output_dir: str | Path, *, seed: int | None = None, size: int | None = None
) -> BuildResult:
    """Write OUTPUT/dataset.jsonl then OUTPUT/manifest.json; same (key, seed, size) -> same JSONL bytes."""
    spec = lookup(key)
    seed, size = effective_params(spec, seed, size)
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise DataError(f"{output_dir}: exists and is not a directory")
    text, traces = generate_jsonl(spec, seed, size)
    stats = trace_stats(traces)
    manifest = {
        "key": spec.key,
        "version": spec.version,
        "generator": spec.generator,
        "seed": seed,
        "count": len(traces),
        "size_requested": size,
        "categories": stats["categories"],
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "schema_version": SCHEMA_VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "stats": {k: v for k, v in stats.items() if k not in ("categories", "task_types", "count")},
    }
    atomic_write_text(output_dir / DATASET_FILE, text)
    atomic_write_json(output_dir / MANIFEST_FILE, manifest)
    return BuildResult(key=spec.key, path=output_dir / DATASET_FILE, manifest=manifest)
