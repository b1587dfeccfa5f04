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
DATA_DIR = Path(__file__).resolve().parent


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


def _source_files(spec: DatasetSpec) -> list[Path]:
    """The files that decide a build's bytes: the generator package, the record schema, and for a
    build that leaves out the eval sets, the exclusion code and the bundled eval sets."""
    files = [*sorted((DATA_DIR / "generators").glob("*.py")), DATA_DIR / "schema.py"]
    if spec.excludes_eval_items:
        files += [DATA_DIR / "problems.py", DATA_DIR / "exclusions.py"]
        files += sorted((DATA_DIR / "evalsets").glob("*.jsonl"))
    return files


def generator_identity(spec: DatasetSpec) -> str:
    """sha256 of the declared key, version and generator with the content of every file that
    decides the build's bytes: editing any of them changes it, so a cached build made by other
    code is never reused (the resolver compares it with the cached manifest's)."""
    digest = hashlib.sha256(f"{spec.key}\n{spec.version}\n{spec.generator}\n".encode())
    for path in _source_files(spec):
        content = path.read_bytes()
        digest.update(f"{path.relative_to(DATA_DIR).as_posix()}\n{len(content)}\n".encode())
        digest.update(content)
    return digest.hexdigest()


def generate_jsonl(spec: DatasetSpec, seed: int, size: int) -> tuple[str, list[ReasoningTrace]]:
    module_name, func_name = spec.generator.split(":")
    generate = getattr(importlib.import_module(module_name), func_name)
    kwargs = {}
    if spec.excludes_eval_items:
        # Imported here: only builds that need it pay for regenerating the held-out records.
        from tunix_rt.data.exclusions import eval_exclusions

        kwargs["skip"] = eval_exclusions().excludes
    try:
        records = generate(seed, size, **kwargs)
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
        "generator_identity": generator_identity(spec),
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
