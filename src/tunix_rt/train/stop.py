"""Ctrl-C and SIGTERM during a training loop: stop at the next step boundary, with a checkpoint."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


class StopSignal:
    """Ctrl-C and SIGTERM during the loop stop it at the next step boundary, with a checkpoint.

    Outside the loop (loading, the final save, evaluation) they interrupt at once, as usual.
    Stopping at a boundary keeps the checkpoint's weights and step counter consistent, and under
    torchrun every rank stops at the same step (the flag is all-reduced each step).
    """

    def __init__(self) -> None:
        self.armed = False
        self.requested = False
        self.checkpoint: str | None = None
        """What the stop saved, for the log line of the interrupted run."""

    def arm(self) -> None:
        self.armed = True

    def disarm(self) -> None:
        self.armed = False

    def _handle(self, signum: int, frame: Any) -> None:
        if not self.armed:
            raise KeyboardInterrupt
        self.requested = True

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopSignal]:
        if threading.current_thread() is not threading.main_thread():
            yield self  # signal handlers can only be installed from the main thread
            return
        previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
