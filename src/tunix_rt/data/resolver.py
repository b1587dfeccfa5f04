"""Dataset spec -> a JSONL path: a file, a directory holding dataset.jsonl, or a bundled key.

Bundled keys (optionally with a size, `reasoning-mix:5000`) are built on first use into a cache,
`$TUNIX_RT_CACHE` or `~/.cache/tunix-rt`, under datasets/KEY-vVERSION-seedSEED-nSIZE/. A build
happens in a temporary sibling directory that is renamed into place when complete, so a killed or
concurrent build never leaves a half dataset where a reader would find it.

A path that exists wins over a key of the same name.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tunix_rt.data.build import DATASET_FILE, MANIFEST_FILE, build_dataset, effective_params, parse_key
from tunix_rt.data.registry import DATASETS
from tunix_rt.errors import DataError

CACHE_ENV = "TUNIX_RT_CACHE"


@dataclass(frozen=True)
class ResolvedDataset:
    spec: str
    key: str | None  # the bundled key, None for a path
    path: Path  # the .jsonl file
    built: bool  # True when this call generated it


def default_cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tunix-rt"


def resolve_dataset(spec: str, *, cache_dir: Path | None = None, seed: int | None = None) -> ResolvedDataset:
    path = Path(spec).expanduser()
    if path.is_file():
        return ResolvedDataset(spec, None, path, False)
    if path.is_dir():
        if (path / DATASET_FILE).is_file():
            return ResolvedDataset(spec, None, path / DATASET_FILE, False)
        raise DataError(f"{path}: directory has no {DATASET_FILE}")
    key, size = parse_key(spec)
    if key in DATASETS:
        return _cached_build(spec, key, size, seed, cache_dir or default_cache_dir())
    raise DataError(
        f"dataset {spec!r} not found; looked for:\n"
        f"  a file: {path.resolve()} (does not exist)\n"
        f"  a directory holding {DATASET_FILE}: {path.resolve()} (does not exist)\n"
        f"  a bundled key: {key!r} is not one of {', '.join(DATASETS)} (see `tunix-rt data list`)"
    )


def cache_subdir(key: str, seed: int, size: int) -> str:
    return f"{key}-v{DATASETS[key].version}-seed{seed}-n{size}"


def _cached_build(
    spec: str, key: str, size: int | None, seed: int | None, cache_dir: Path
) -> ResolvedDataset:
    seed, size = effective_params(DATASETS[key], seed, size)
    target = cache_dir / "datasets" / cache_subdir(key, seed, size)
    if (target / DATASET_FILE).is_file() and (target / MANIFEST_FILE).is_file():
        return ResolvedDataset(spec, key, target / DATASET_FILE, False)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    except OSError as exc:
        raise DataError(
            f"cannot create the dataset cache under {target.parent}: {exc} (set ${CACHE_ENV})"
        ) from exc
    try:
        build_dataset(key, tmp, seed=seed, size=size)
        try:
            os.rename(tmp, target)
        except OSError:
            # Another process finished the same build first (or a partial dir is in the way):
            # keep theirs when it is complete, otherwise replace the leftover.
            if not (target / MANIFEST_FILE).is_file():
                shutil.rmtree(target, ignore_errors=True)
                os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return ResolvedDataset(spec, key, target / DATASET_FILE, True)
