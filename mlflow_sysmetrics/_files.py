"""Root-relative reads of Linux files (``/proc``, ``/sys``, ``/etc``, container markers).

Every Linux file the collectors look at goes through :class:`Root`, so a whole machine
captured file by file can be replayed by pointing ``MLFLOW_SYSMETRICS_ROOT`` at it.
An unreadable or missing file is ``None``, never an exception: a fact we cannot read is
left out, it does not fail the run.
"""

from __future__ import annotations

import os

from . import _state

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    T = TypeVar("T")

#: Most bytes read from one file; ``/proc/cpuinfo`` of a 512-core machine is about 1 MiB.
MAX_FILE_BYTES = 4 * 1024 * 1024


def positive_int(text: str | None) -> int | None:
    """A number above zero read from a file (bytes, microwatts, microjoules), or ``None``."""
    try:
        value = int((text or "").strip())
    except ValueError:
        return None
    return value if value > 0 else None


def count(text: str | None) -> int | None:
    """A counter read from a file (a cumulative count that may be 0), or ``None``."""
    try:
        value = int((text or "").strip())
    except ValueError:
        return None
    return value if value >= 0 else None


class Root:
    """A file-system root under which absolute Linux paths are resolved."""

    __slots__ = ("is_live", "path")

    def __init__(self, path: str = "/") -> None:
        self.path = path
        #: True when this is the real root of the running machine, not a replayed tree.
        self.is_live = path in ("/", "")

    def join(self, path: str) -> str:
        """Return ``path`` (absolute, e.g. ``/proc/cpuinfo``) placed under this root."""
        if self.is_live:
            return path
        return os.path.join(self.path, path.lstrip("/"))

    def read(self, path: str, limit: int = MAX_FILE_BYTES) -> str | None:
        """Text of the file at ``path``, decoded leniently, or ``None`` when it cannot be read."""
        try:
            with open(self.join(path), "rb") as handle:
                data = handle.read(limit)
        except (OSError, ValueError):
            return None
        return data.decode("utf-8", errors="replace")

    def read_line(self, path: str) -> str | None:
        """First line of a small file, stripped (sysfs style), or ``None``."""
        text = self.read(path, limit=64 * 1024)
        if text is None:
            return None
        line = text.split("\n", 1)[0].strip()
        return line or None

    def exists(self, path: str) -> bool:
        """Whether ``path`` exists under this root (a file, folder or marker)."""
        return os.path.lexists(self.join(path))

    def resolve(self, path: str) -> str | None:
        """``path`` with its symbolic links followed, as a path under this root.

        ``None`` when it cannot be resolved or leads out of the root (a replayed tree's
        ``/sys/bus/pci/devices/<bus>`` links into its ``/sys/devices`` as the kernel's do).
        """
        try:
            real = os.path.realpath(self.join(path))
            if self.is_live:
                return real
            base = os.path.realpath(self.path)
        except (OSError, ValueError):
            return None
        if real == base:
            return "/"
        return real[len(base) :] if real.startswith(base + os.sep) else None

    def link_name(self, path: str) -> str | None:
        """Last part of the target of the symbolic link at ``path`` (a sysfs ``driver`` link), or ``None``."""
        try:
            return os.path.basename(os.readlink(self.join(path))) or None
        except (OSError, ValueError):
            return None

    def listdir(self, path: str) -> list[str]:
        """Sorted entries of the folder at ``path``; empty when it cannot be listed."""
        try:
            return sorted(os.listdir(self.join(path)))
        except (OSError, ValueError):
            return []


def once_per_root(read: Callable[[Root], T]) -> Callable[[Root], T]:
    """``read(root)`` remembered per root, for what is read once per process.

    ``clear_cache()`` forgets it. Two threads asking at once may both read; they read the same.
    """
    known: dict[str, T] = _state.memo()

    def remembered(root: Root) -> T:
        try:
            return known[root.path]
        except KeyError:
            found = known[root.path] = read(root)
            return found

    remembered.__name__ = read.__name__
    remembered.__doc__ = read.__doc__
    return remembered
