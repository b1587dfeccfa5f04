"""Dataset spec -> a JSONL path: a file, a directory holding dataset.jsonl, or a bundled key.

Bundled keys (optionally with a size, `reasoning-mix:5000`) are built on first use into a cache,
`$TUNIX_RT_CACHE` or `~/.cache/tunix-rt`, under datasets/KEY-vVERSION-seedSEED-nSIZE/. A build
happens in a temporary sibling directory that is renamed into place when complete, so a killed or
concurrent build never leaves a half dataset where a reader would find it.

A cache hit is verified before it is used: the dataset's sha256 must match its manifest's, and
the manifest's `generator_identity` must match the identity of the generator code installed now
(build.generator_identity: a hash of every file that decides the bytes). A cache that fails either
check (edited or corrupted data, a generator edited since) is rebuilt and swapped in, with a
warning saying why.

A path that exists wins over a key of the same name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tunix_rt.data.build import (
    DATASET_FILE,
    MANIFEST_FILE,
    build_dataset,
    effective_params,
    generator_identity,
    parse_key,
)
from tunix_rt.data.registry import DATASETS
from tunix_rt.errors import DataError

CACHE_ENV = "TUNIX_RT_CACHE"
log = logging.getLogger(__name__)


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


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def stale_reason(target: Path, key: str) -> str | None:
    """Why the cached build in `target` must not be used, or None when it is sound."""
    if not (target / DATASET_FILE).is_file() or not (target / MANIFEST_FILE).is_file():
        return "it is incomplete (an interrupted build)"
    try:
        manifest = json.loads((target / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"its {MANIFEST_FILE} is unreadable ({exc})"
    if not isinstance(manifest, dict):
        return f"its {MANIFEST_FILE} is not a JSON object"
    identity = generator_identity(DATASETS[key])
    if manifest.get("generator_identity") != identity:
        return (
            f"it was made by other generator code (identity {manifest.get('generator_identity')!r}, "
            f"now {identity!r})"
        )
    if _file_sha256(target / DATASET_FILE) != manifest.get("sha256"):
        return f"its {DATASET_FILE} does not match the sha256 in its {MANIFEST_FILE} (edited or corrupted)"
    return None


def _install(built: Path, target: Path) -> None:
    """Move the complete build `built` to `target`, replacing a stale or half-built `target`.

    Each step is a rename, so a reader finds either a whole old directory, a whole new one, or
    (for an instant) none, never a mixture.
    """
    aside = None
    if target.exists():
        aside = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
        with contextlib.suppress(FileNotFoundError):  # another process moved it aside first
            os.replace(target, aside / "stale")
    try:
        os.rename(built, target)
    except OSError as exc:
        # Another process installed the same build (same bytes) in the meantime: keep theirs.
        if not (target / MANIFEST_FILE).is_file():
            raise DataError(f"cannot install the dataset build at {target}: {exc}") from exc
    finally:
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)


def _cached_build(
    spec: str, key: str, size: int | None, seed: int | None, cache_dir: Path
) -> ResolvedDataset:
    seed, size = effective_params(DATASETS[key], seed, size)
    target = cache_dir / "datasets" / cache_subdir(key, seed, size)
    if target.exists():
        reason = stale_reason(target, key)
        if reason is None:
            return ResolvedDataset(spec, key, target / DATASET_FILE, False)
        log.warning("dataset cache %s: rebuilding, because %s", target, reason)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    except OSError as exc:
        raise DataError(
            f"cannot create the dataset cache under {target.parent}: {exc} (set ${CACHE_ENV})"
        ) from exc
    try:
        build_dataset(key, tmp, seed=seed, size=size)
        _install(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return ResolvedDataset(spec, key, target / DATASET_FILE, True)
