"""Map a name from a URL to a path under ROOT, refusing anything that would leave ROOT.

The check is made on the fully resolved path (symlinks followed, `..` collapsed), so `../`,
its URL-encoded forms and a symlink pointing outside ROOT are all refused the same way.
"""

from __future__ import annotations

from pathlib import Path


class OutsideRoot(ValueError):
    """The requested name does not name something inside ROOT."""


def resolve_under(root: Path, name: str) -> Path:
    """ROOT/name resolved; OutsideRoot when it escapes ROOT (or is absolute, or holds a NUL)."""
    if "\x00" in name or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise OutsideRoot(f"{name!r}: not a path inside the served folder")
    base = Path(root).resolve()
    target = (base / name).resolve()
    if target != base and base not in target.parents:
        raise OutsideRoot(f"{name!r}: not a path inside the served folder")
    return target


def relative_name(root: Path, path: Path) -> str:
    """path as a 'a/b' name relative to ROOT ('.' for ROOT itself)."""
    return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
