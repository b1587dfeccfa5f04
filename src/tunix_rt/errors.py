"""One exception family for every failure a user can cause and fix.

The CLI prints these as a one-line `error: ...` (no traceback) and exits non-zero; anything else
is a bug and keeps its traceback.
"""


class TunixError(Exception):
    """A problem the user can act on; the message says what and where."""

    exit_code = 2


class ConfigError(TunixError):
    """The YAML config or a --set override is invalid."""


class DataError(TunixError):
    """A dataset or eval set cannot be found, read or validated."""


class DeviceError(TunixError):
    """The requested device cannot be used (never silently replaced by another)."""


class ModelError(TunixError):
    """A model or tokenizer cannot be loaded (e.g. a hub id while offline)."""


class RunDirError(TunixError):
    """The run directory is in a state that forbids the requested action."""


class TrainingError(TunixError):
    """Training stopped for a reason the user must see (NaN loss, ...)."""

    exit_code = 1
