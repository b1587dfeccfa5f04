"""The run directory: the evidence a stranger reads to verify a run.

One object owns it during training: it decides whether the directory may be used (never
overwrites a finished run without --overwrite), keeps `run_manifest.json` true at every moment
(written atomically; status running -> completed | failed | interrupted), appends
`metrics.jsonl` line by line with a flush (so `tail -f` works), and writes the human log
`training_log.txt` without progress-bar noise.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Protocol

from tunix_rt import __version__
from tunix_rt.errors import RunDirError
from tunix_rt.fsutil import atomic_write_json, atomic_write_text, jsonl_lines

# The one definition of every name in a run directory (runs/, eval/ and the recipes import these).
MANIFEST = "run_manifest.json"
METRICS = "metrics.jsonl"
LOG = "training_log.txt"
CONFIG = "config.yaml"
FINAL_MODEL = "final_model"
EVAL_DIR = "eval"
EVAL_SUMMARY_FILE = "eval_summary.json"
PREDICTIONS_FILE = "predictions.jsonl"
EVAL_SUMMARY = f"{EVAL_DIR}/{EVAL_SUMMARY_FILE}"
PREDICTIONS = f"{EVAL_DIR}/{PREDICTIONS_FILE}"
LOSS_CURVE = "loss_curve.png"
RENDER_FILE = "tunix_rt_render.json"
"""In a saved model directory (final_model/): how its prompts were rendered in training."""
LOCK = ".tunix-rt.lock"
"""Held (flock) by the process writing the run; see RunLock."""
COMPLETIONS = "completions.jsonl"
"""GRPO: every logged step's sampled completions and their rewards, appended."""
EVAL_BEFORE_DIR = "eval_before"
"""The starting model's evaluation (GRPO, SFT's training.eval_before; the dashboard's before/after)."""


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def read_manifest(run_dir: Path) -> dict[str, Any] | None:
    """The run's manifest, or None when there is none; ValueError when it is not a JSON object."""
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        return None
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(manifest, dict):
        raise ValueError(f"{path}: not a JSON object")
    return manifest


def read_jsonl(path: Path, *, tolerant: bool = True) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file ([] when it is absent).

    A torn last line (a kill mid-write) is always left out. `tolerant` also leaves out every other
    unparsable line (readers of finished runs show what they can); without it such a line raises.
    """
    path = Path(path)
    if not path.is_file():
        return []
    lines = jsonl_lines(path.read_text(encoding="utf-8", errors="replace" if tolerant else "strict"))
    rows = []
    for k, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            if tolerant or k == len(lines) - 1:
                continue
            raise
        if isinstance(value, dict):
            rows.append(value)
    return rows


def truncate_jsonl_after(path: Path, step: int) -> int:
    """Drop the lines of a step-keyed JSONL file (metrics.jsonl, completions.jsonl) past `step`, and
    a torn last line; the lines kept stay byte for byte as written. Returns how many were dropped."""
    if not path.is_file():
        return 0
    lines = [line for line in jsonl_lines(path.read_text(encoding="utf-8")) if line.strip()]
    kept = []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line from a kill mid-write
        if isinstance(record, dict) and record.get("step", 0) <= step:
            kept.append(line)
    if len(kept) != len(lines):
        atomic_write_text(path, "".join(line + "\n" for line in kept))
    return len(lines) - len(kept)


def ensure_replaceable(path: Path, *, by: str, subcommand: str | None = None) -> None:
    """Refuse (RunDirError) to delete `path` unless it is absent, empty or a tunix-rt run directory.

    `--overwrite` and the demo replace their output with shutil.rmtree: without this check,
    `--output . --overwrite` would delete the current directory. `by` names what would delete it
    (for the message); `subcommand` (e.g. "demo") further limits it to runs that command made.
    """
    path = Path(path)
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return
    if not path.is_dir():
        raise RunDirError(f"{path} is a file, not a run directory; {by} replaces only run directories")
    if not (path / MANIFEST).is_file():
        raise RunDirError(
            f"{path} is not a tunix-rt run directory (no {MANIFEST}) and is not empty; {by} replaces "
            "only run directories, so nothing was deleted: choose another --output (or a new, empty one)"
        )
    if subcommand is None:
        return
    try:
        command = (read_manifest(path) or {}).get("command") or []
    except ValueError:  # an unreadable manifest cannot prove which command made the run
        command = []
    if len(command) < 2 or command[1] != subcommand:
        raise RunDirError(
            f"{path} holds a run that `tunix-rt {subcommand}` did not make; {by} replaces only its own "
            f"runs, so nothing was deleted: choose another --output for the {subcommand}"
        )


class RunLock:
    """An exclusive lock on a run directory while a process writes it.

    flock(2) on RUN/.tunix-rt.lock: the kernel drops it when its holder ends, however it ends
    (kill -9 included), so a dead run can always be resumed while a live one cannot be taken by a
    second `train` or `--resume`. The file stays (removing it would race); it names its holder.
    """

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    @classmethod
    def take(cls, directory: Path) -> RunLock:
        # Not a `with`: the open file *is* the lock, held until release() or the process's end.
        handle = open(Path(directory) / LOCK, "a+", encoding="utf-8")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise RunDirError(
                f"{directory} is being written by a live process ({holder}); wait for it to finish, "
                "or stop it (Ctrl-C) and then --resume, or choose another --output"
            ) from None
        handle.truncate(0)
        handle.write(f"pid {os.getpid()} on {platform.node()} since {utc_now()}\n")
        handle.flush()
        return cls(handle)

    def release(self) -> None:
        if not self._handle.closed:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()


class MetricsSink(Protocol):
    """Something that sees every metrics line as it is appended (train/trackers.py: TensorBoard, trackio)."""

    def write(self, record: dict[str, Any]) -> None: ...

    def truncated_after(self, step: int) -> None: ...

    def close(self) -> None: ...


class RunDirectory:
    def __init__(self, path: Path, manifest: dict[str, Any], lock: RunLock | None = None) -> None:
        self.path = path
        self.manifest = manifest
        self.lock = lock
        self.log = _make_logger(path / LOG)
        self.metrics_sinks: list[MetricsSink] = []
        """Told of every line append_metrics writes and of truncate_metrics_after; closed by close()."""

    # --- opening ----------------------------------------------------------------------------

    @classmethod
    def open(
        cls, path: Path, *, resume: bool, overwrite: bool, command: list[str] | None = None
    ) -> RunDirectory:
        """Create a new run directory or reopen one for --resume, refusing anything ambiguous.

        `command` (what started the run) goes into a new run's first manifest, so a run that dies
        before anything else is recorded still says which command made it (the demo checks that).
        """
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise RunDirError(f"{path} is a file, not a run directory; choose another --output")
        existing = read_manifest(path)
        # A run another live process is writing is refused before anything is decided or deleted.
        lock = RunLock.take(path) if existing is not None else None
        try:
            return cls._open_locked(path, existing, lock, resume=resume, overwrite=overwrite, command=command)
        except BaseException:
            if lock:
                lock.release()
            raise

    @classmethod
    def _open_locked(
        cls,
        path: Path,
        existing: dict[str, Any] | None,
        lock: RunLock | None,
        *,
        resume: bool,
        overwrite: bool,
        command: list[str] | None,
    ) -> RunDirectory:
        occupied = path.exists() and any(path.iterdir())
        if resume:
            if existing is None:
                raise RunDirError(f"--resume: {path} holds no run (no {MANIFEST}); start it without --resume")
            if existing.get("status") == "completed" and overwrite:
                raise RunDirError("--resume and --overwrite together are ambiguous; choose one")
            return cls(path, existing, lock)
        if occupied:
            if not overwrite:
                status = existing.get("status") if existing else None
                hint = (
                    "use --resume to continue it, or --overwrite to start again"
                    if status in {"running", "interrupted", "failed"}
                    else "pass --overwrite to replace it, or choose another --output"
                )
                what = f"a {status} run" if status else "files"
                raise RunDirError(f"{path} already holds {what}; {hint}")
            ensure_replaceable(path, by="--overwrite")
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
        new_lock = RunLock.take(path)
        if lock:
            lock.release()  # the replaced run's lock file went with its directory
        manifest = {
            "run_id": f"{_dt.datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}",
            "created_at": utc_now(),
        }
        if command:
            manifest["command"] = command
        # Written at once: the manifest is what marks the directory as a run that --overwrite may
        # replace, so a run that fails before its first status update can still be overwritten.
        atomic_write_json(path / MANIFEST, manifest)
        return cls(path, manifest, new_lock)

    # --- manifest ---------------------------------------------------------------------------

    def update_manifest(self, **fields: Any) -> None:
        self.manifest.update(fields)
        atomic_write_json(self.path / MANIFEST, self.manifest)

    def set_status(self, status: str, error: str | None = None) -> None:
        timings = dict(self.manifest.get("timings", {}))
        timings[f"{status}_at"] = utc_now()
        self.update_manifest(status=status, error=error, timings=timings)

    # --- metrics ----------------------------------------------------------------------------

    def read_metrics(self) -> list[dict[str, Any]]:
        """metrics.jsonl as records; a torn last line (a kill mid-write) is ignored."""
        return read_jsonl(self.path / METRICS, tolerant=False)

    def truncate_metrics_after(self, step: int) -> int:
        """Drop metric lines past `step` (written after the checkpoint we resume from); returns how many."""
        for sink in self.metrics_sinks:
            sink.truncated_after(step)
        return truncate_jsonl_after(self.path / METRICS, step)

    def append_metrics(self, record: dict[str, Any]) -> None:
        with open(self.path / METRICS, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
        for sink in self.metrics_sinks:  # after the line is on disk: metrics.jsonl is the record
            sink.write(record)

    def close(self) -> None:
        sinks, self.metrics_sinks = self.metrics_sinks, []
        try:
            for sink in sinks:
                sink.close()
        finally:  # a tracker that fails to close still leaves the log closed and the run unlocked
            for handler in list(self.log.handlers):
                handler.close()
                self.log.removeHandler(handler)
            if self.lock:
                self.lock.release()


def _make_logger(path: Path) -> logging.Logger:
    logger = logging.getLogger(f"tunix_rt.run.{path.parent.resolve()}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    file_handler = logging.FileHandler(path, encoding="utf-8")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    logger.addHandler(file_handler)
    logger.addHandler(_ConsoleHandler())
    return logger


class _ConsoleHandler(logging.Handler):
    """Print through tqdm so log lines and the progress bar do not overwrite each other."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        tqdm.write(self.format(record), file=sys.stderr)


def versions() -> dict[str, Any]:
    import torch
    import transformers

    cuda = getattr(torch.version, "cuda", None)
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cuda": cuda,
        "cudnn": cudnn,
        "tunix_rt": __version__,
        "git_commit": git_commit(),
    }


def git_commit() -> str | None:
    """The project's commit when tunix-rt runs from a git checkout (editable install)."""
    repo = Path(__file__).resolve().parents[2]
    if not (repo / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    dirty = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        timeout=5,
    ).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")
