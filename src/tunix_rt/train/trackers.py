"""`training.report_to`: copies of the metrics lines in TensorBoard event files and a local trackio project.

RUN/metrics.jsonl stays the record; a tracker is a second view of the same lines for people who
already look at runs that way. The run directory calls `Trackers.write` for every line it appends
(evidence.RunDirectory.append_metrics), whichever recipe or component wrote it, so SFT, GRPO and
the eval headlines reach the trackers without each caller knowing they exist. Only rank 0 has a
run directory, so only rank 0 writes.

Each tracker is an optional extra. A missing package is a plan blocker (`missing_packages`, used
by the plan checks and the recipes before anything is loaded), named with the command that
installs it. Writers are the libraries' own: torch.utils.tensorboard.SummaryWriter, and
trackio.init / Run.log / Run.finish with trackio's storage pointed at RUN/trackio/ (trackio reads
TRACKIO_DIR once, when trackio.utils is first imported; default $HF_HOME/trackio).

On --resume, metrics lines after the checkpoint's step are dropped and redone; TensorBoard hides
the events past that step too (SummaryWriter's purge_step), trackio has no such operation, so its
run keeps both copies of the redone steps (docs/dashboard.md says so).
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunix_rt.errors import ConfigError

TENSORBOARD_DIR = "tensorboard"
TRACKIO_DIR = "trackio"
TRACKIO_PROJECT = "tunix-rt"


@dataclass(frozen=True)
class Tracker:
    module: str
    """The module whose presence means the tracker can write."""
    requirement: str
    """What `pip install` needs; the same requirement as the tunix-rt extra of that name (pyproject.toml)."""

    def install_command(self, name: str) -> str:
        return f"pip install '{self.requirement}' (the extra tunix-rt[{name}])"


TRACKERS: dict[str, Tracker] = {
    "tensorboard": Tracker("tensorboard", "tensorboard>=1.15"),
    "trackio": Tracker("trackio", "trackio>=0.43"),
}


def missing_packages(report_to: list[str]) -> list[str]:
    """One blocker per tracker in `report_to` whose package is not installed here; [] if none.

    find_spec looks the package up without importing it: trackio must not be imported before its
    storage directory is set (it reads TRACKIO_DIR at import), and a dry run stays fast.
    """
    blockers = []
    for name in report_to:
        tracker = TRACKERS[name]
        if importlib.util.find_spec(tracker.module) is None:
            blockers.append(
                f"training.report_to lists {name!r}, but the {tracker.module} package is not installed "
                f"here: install it with {tracker.install_command(name)}, or remove {name!r} from "
                "training.report_to"
            )
    return blockers


def check_installed(report_to: list[str]) -> None:
    """Refuse (ConfigError, exit code 2) a run whose trackers cannot write, before anything starts."""
    blockers = missing_packages(report_to)
    if blockers:
        raise ConfigError("; ".join(blockers))


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """The numbers of a metrics line a tracker can plot: `step` is the x axis; strings (eval_set),
    booleans and None (a speed not measured) are left out."""
    return {
        key: float(value)
        for key, value in record.items()
        if key != "step" and isinstance(value, int | float) and not isinstance(value, bool)
    }


class Trackers:
    """The run's trackers, opened at their first line (after a resume has said which step it
    continues from) and closed with the run directory."""

    def __init__(self, run_dir: Path, report_to: list[str], config: dict[str, Any]) -> None:
        check_installed(report_to)
        self.run_dir, self.report_to, self.config = run_dir, list(report_to), config
        self._resume_step: int | None = None
        self._writers: list[Any] | None = None

    def truncated_after(self, step: int) -> None:
        """metrics.jsonl dropped its lines past `step` (a resume): the next writers start there."""
        self._resume_step = step

    def write(self, record: dict[str, Any]) -> None:
        values = scalars(record)
        if not values or "step" not in record:
            return
        if self._writers is None:
            self._writers = [self._open(name) for name in self.report_to]
        for writer in self._writers:
            writer.log(int(record["step"]), values)

    def close(self) -> None:
        for writer in self._writers or []:
            writer.close()
        self._writers = []

    def _open(self, name: str) -> Any:
        if name == "tensorboard":
            purge = None if self._resume_step is None else self._resume_step + 1
            return _TensorBoard(self.run_dir / TENSORBOARD_DIR, purge)
        return _Trackio(
            self.run_dir / TRACKIO_DIR, self.run_dir.name, self.config, self._resume_step is not None
        )


class _TensorBoard:
    def __init__(self, path: Path, purge_step: int | None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # purge_step: events at or past it from an earlier process (steps being redone) are hidden.
        self._writer = SummaryWriter(log_dir=str(path), purge_step=purge_step)

    def log(self, step: int, values: dict[str, float]) -> None:
        for tag, value in values.items():
            self._writer.add_scalar(tag, value, global_step=step)
        self._writer.flush()  # a running run's curves are visible in TensorBoard at once

    def close(self) -> None:
        self._writer.close()


class _Trackio:
    def __init__(self, path: Path, run_name: str, config: dict[str, Any], resume: bool) -> None:
        trackio = _import_trackio(path)
        self._run = trackio.init(
            project=TRACKIO_PROJECT,
            name=run_name,
            config=config,
            resume="allow" if resume else "never",
            embed=False,  # no dashboard started or embedded: `trackio show` opens it on demand
        )

    def log(self, step: int, values: dict[str, float]) -> None:
        # trackio stores JSON: a non-finite value (a diverged loss refused at that step) is left out.
        self._run.log({k: v for k, v in values.items() if math.isfinite(v)}, step=step)

    def close(self) -> None:
        self._run.finish()


def _import_trackio(path: Path) -> Any:
    """trackio with its storage in `path`. trackio.utils reads TRACKIO_DIR once, at import; a
    trackio imported earlier in this process with another directory would write elsewhere, so that
    is refused rather than written to ~/.cache."""
    previous = os.environ.get("TRACKIO_DIR")
    os.environ["TRACKIO_DIR"] = str(path)
    try:
        trackio = importlib.import_module("trackio")
        utils = importlib.import_module("trackio.utils")
    finally:
        if previous is None:
            del os.environ["TRACKIO_DIR"]
        else:
            os.environ["TRACKIO_DIR"] = previous
    if Path(utils.TRACKIO_DIR).resolve() != path.resolve():
        raise ConfigError(
            f"training.report_to: trackio was already imported in this process with its storage in "
            f"{utils.TRACKIO_DIR}, not {path}; run the training in its own process"
        )
    return trackio
