"""What `tunix-rt train` (or the demo) asks a recipe to do, and the command line that asked.

No heavy imports here: the CLI builds a request before torch or transformers are loaded.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tunix_rt.config import Config

LAUNCH_COMMAND_ENV = "TUNIX_RT_COMMAND"


@dataclass
class TrainRequest:
    """Everything `tunix-rt train` decided before training starts."""

    config: Config
    dataset: str
    output: Path
    device: str = "auto"
    resume: bool = False
    overwrite: bool = False
    config_path: str | None = None
    config_sha256: str | None = None
    notes: list[str] = field(default_factory=list)
    argv: list[str] = field(default_factory=list)


def user_command() -> list[str]:
    """The command the user typed: under --nproc the torchrun children carry it in the environment."""
    if os.environ.get(LAUNCH_COMMAND_ENV):
        return json.loads(os.environ[LAUNCH_COMMAND_ENV])
    return [*_launcher(os.environ), *sys.argv[1:]]


def _launcher(env: Mapping[str, str]) -> list[str]:
    """What starts this job again: `tunix-rt`, or the torchrun line when torchrun launched it directly.

    Without the torchrun part a recorded `tunix-rt train ...` would rerun a multi-process job as one
    process (another effective batch, so another run). torchrun sets LOCAL_WORLD_SIZE and
    TORCHELASTIC_RUN_ID in every worker; tunix-rt's own --nproc launcher is handled by the caller.
    """
    if "LOCAL_WORLD_SIZE" not in env and "TORCHELASTIC_RUN_ID" not in env:
        return ["tunix-rt"]  # `tunix-rt ...` and `python -m tunix_rt ...` are the same
    per_node = int(env.get("LOCAL_WORLD_SIZE") or env.get("WORLD_SIZE") or 1)
    nodes = max(1, int(env.get("WORLD_SIZE") or per_node) // per_node)
    # One node: --standalone reruns it as is. Several: the rendezvous options belong to the cluster
    # (they are not in a worker's environment), so only the shape of the job is recorded.
    where = ["--standalone"] if nodes == 1 else ["--nnodes", str(nodes)]
    return ["torchrun", *where, "--nproc-per-node", str(per_node), "-m", "tunix_rt"]
