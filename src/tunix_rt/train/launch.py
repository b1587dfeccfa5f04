"""`tunix-rt train --nproc N [--nnodes M --rdzv-endpoint HOST:PORT]`: the same command under torchrun.

One machine: torchrun --standalone with N processes. Several machines: the same command on each,
with torchrun's c10d rendezvous at HOST:PORT (one of the machines) joining M agents of N processes
each; the rendezvous numbers the ranks, so any machine may hold rank 0, which writes the evidence
(the output directory must be on storage every machine sees; docs/distributed.md).

Ctrl-C and SIGTERM are forwarded to torchrun, and torchrun is waited for: it passes the signal to
every worker, the workers stop together at the next step boundary with one checkpoint (train/stop.py)
and exit, and only then does this process return (130, as for one process).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from tunix_rt.train.request import LAUNCH_COMMAND_ENV, user_command

# Options of the launching command that the workers must not see again.
LAUNCH_OPTIONS = ("--nproc", "--nnodes", "--rdzv-endpoint", "--rdzv-id")
# How long torchrun lets the workers finish their step and write the interrupted checkpoint after
# a forwarded signal before it SIGKILLs them (its own default, 30 s, can cut a large model's save
# short; a cut save leaves no checkpoint rather than a broken one, but the step's work is lost).
SHUTDOWN_TIMEOUT_S = 600
DEFAULT_RDZV_ID = "tunix-rt"
# Signal received -> signal passed to torchrun. A closed terminal (SIGHUP) stops the run gracefully
# too: torchrun runs in its own session and would otherwise train on, unseen.
FORWARDED = {signal.SIGINT: signal.SIGINT, signal.SIGTERM: signal.SIGTERM, signal.SIGHUP: signal.SIGTERM}


def worker_argv(argv: Sequence[str]) -> list[str]:
    """argv without the launch options (both `--opt value` and `--opt=value`)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in LAUNCH_OPTIONS:
            skip = True
        elif not arg.startswith(tuple(f"{opt}=" for opt in LAUNCH_OPTIONS)):
            out.append(arg)
    return out


def torchrun_command(
    nproc: int,
    argv: Sequence[str],
    *,
    nnodes: int = 1,
    rdzv_endpoint: str | None = None,
    rdzv_id: str | None = None,
) -> list[str]:
    """The torchrun line that runs `tunix_rt <argv>` as nproc workers per node on nnodes nodes."""
    if nnodes > 1:
        rendezvous = [
            f"--nnodes={nnodes}",
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint={rdzv_endpoint}",
            f"--rdzv-id={rdzv_id or DEFAULT_RDZV_ID}",
        ]
    else:
        rendezvous = ["--standalone"]
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        *rendezvous,
        f"--nproc-per-node={nproc}",
        f"--shutdown-timeout={SHUTDOWN_TIMEOUT_S}",
        "-m",
        "tunix_rt",
        *worker_argv(argv),
    ]


def launch_torchrun(command: list[str]) -> int:
    """Run the torchrun line, forwarding Ctrl-C / SIGTERM to it and waiting until it has finished.

    torchrun runs in a session of its own so that a terminal's Ctrl-C reaches it once (from here),
    not also directly, with its workers: a second signal during its graceful shutdown would cut the
    wait for the workers short. KeyboardInterrupt (exit 130) once it has exited, when interrupted.
    """
    print("launching: " + " ".join(command), file=sys.stderr)
    env = {**os.environ, LAUNCH_COMMAND_ENV: json.dumps(user_command())}
    proc = subprocess.Popen(command, env=env, start_new_session=True)
    forwarded: list[int] = []

    def forward(signum: int, frame: Any) -> None:
        forwarded.append(signum)
        proc.send_signal(FORWARDED[signum])

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        code = proc.wait()  # retried after each handled signal (PEP 475): torchrun is waited for
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if forwarded:
        print(f"torchrun stopped after {signal.Signals(forwarded[0]).name} (exit {code})", file=sys.stderr)
        raise KeyboardInterrupt
    return code
