"""The run's peak resident memory: the process's and its children's marks, or its cgroup's.

``getrusage`` keeps the peak resident set of the process (``RUSAGE_SELF``) and of its
largest waited-for child (``RUSAGE_CHILDREN``), each since it began: read at both ends, a
peak counts only where it rose during the run. A child's mark is not its own alone:
``execve`` keeps the larger of the new program's mark and the old address space's
high-water mark (``fs/exec.c``, ``setmax_mm_hiwater_rss``), and Python's ``subprocess``
spawns with ``vfork``, so a child starts at the mark of the process that started it. A
child's peak is therefore the run's only where it rose above this process's own peak; below
it, it cannot be told from this process's, and the figure is this process's when that rose
during the run, else left out with the reason. This process's own peak is, on Linux, its
address space's high-water mark (``VmHWM``): its ``ru_maxrss`` also holds the mark of whatever
it was exec'd from (a shell, a test runner that imported much), which is no peak of its own.

Where the process (with its descendants) is alone in a cgroup v2 group that has no child
groups, the group's ``memory.peak`` counts all of them at once (page cache included). It
counts "since the creation of the cgroup": on the live machine it is reset for this span
through its own file descriptor where the kernel allows (Linux 6.12+), else read at both
ends, counting only a rise. A program run by ``mlflow-sysmetrics run`` is counted from what
its parent saw when it ended (:class:`~._meter.ProgramExit`), never from this process.
"""

from __future__ import annotations

import contextlib
import os

from .. import _platform
from .. import tags as T
from .._files import Root, count
from .._value import Record, gb
from ._meter import Book, Meter, ProgramExit, Uncountable, rusage, sole_cgroup


class Marks(Record):
    """The peaks at one moment, in KiB (``getrusage``) and bytes (the cgroup's)."""

    self_kib: int | None = None
    children_kib: int | None = None
    cgroup_bytes: int | None = None


class MemoryMeter(Meter):
    """The run's peak resident memory (see the module)."""

    name = "memory peak"

    def __init__(self, root: Root) -> None:
        self.root = root
        self.pid = os.getpid()
        self.program: ProgramExit | None = None
        self.following = False
        self.cgroup = _sole_cgroup(root, self.pid)
        self._peak_file: int | None = _reset_peak(root, self.cgroup) if self.cgroup else None

    def read(self) -> Marks:
        """The process's and its children's marks, and the cgroup's peak where it is the run's."""
        self_kib, children_kib = rusage_kib()
        own = own_peak_kib(self.root)
        if own is not None:
            self_kib = own
        cgroup = None
        if (
            self.cgroup is not None
            and not self.following
            and _sole_cgroup(self.root, self.pid) == self.cgroup
        ):
            cgroup = _peak_bytes(self.root, self.cgroup, self._peak_file)
        return Marks(self_kib, children_kib, cgroup)

    def follow_program(self, pid: int) -> None:
        """The run is a program started now: its own peak is counted, not this process's."""
        self.following = True

    def program_exited(self, ended: ProgramExit) -> None:
        """How the program's parent saw it end (its peak, and the floor below which it cannot tell)."""
        self.program = ended

    def figures(self, first: Marks, last: Marks, seconds: float, book: Book) -> None:
        """``sys.memory_peak_gb``."""
        self._close()
        if self.following:
            self._program_figure(book)
            return
        if last.self_kib is None or first.self_kib is None:
            raise Uncountable("getrusage is not available here")
        candidates: list[int] = []
        if last.self_kib > first.self_kib:
            candidates.append(last.self_kib * 1024)
        child = last.children_kib or 0
        if child > (first.children_kib or 0):
            if child > last.self_kib:
                candidates.append(child * 1024)
            elif not candidates:
                book.lacks(
                    self.name,
                    "a child's peak is not above this process's own "
                    f"({gb(last.self_kib * 1024)} GB, reached before the run), from which it "
                    "cannot be told (an exec'd child starts at its parent's mark)",
                )
                return
        if _cgroup_rose(first.cgroup_bytes, last.cgroup_bytes, reset=self._peak_file is not None) and (
            not candidates or (last.cgroup_bytes or 0) > max(candidates)
        ):
            candidates.append(last.cgroup_bytes or 0)
            book.note(T.LEDGER_CGROUP_MEMORY_PEAK)
        if not candidates:
            book.lacks(
                self.name, "not above the process's peak before the run began, so the run's own is not known"
            )
            return
        book.add(T.MEMORY_PEAK_GB, round(max(candidates) / 1e9, 3))

    def _program_figure(self, book: Book) -> None:
        ended = self.program
        if ended is None or ended.max_rss_kib is None:
            raise Uncountable("the program's end was not seen")
        floor = ended.floor_kib
        if floor is not None and ended.max_rss_kib <= floor:
            book.lacks(
                self.name,
                f"the program's peak is not above the {gb(floor * 1024)} GB of the process that "
                "started it, from which it cannot be told",
            )
            return
        book.add(T.MEMORY_PEAK_GB, round(ended.max_rss_kib * 1024 / 1e9, 3))

    def _close(self) -> None:
        if self._peak_file is not None:
            with contextlib.suppress(OSError):
                os.close(self._peak_file)
            self._peak_file = None

    def __del__(self) -> None:
        self._close()


def _cgroup_rose(first: int | None, last: int | None, reset: bool) -> bool:
    """Whether the cgroup's peak is the span's: reset for it (any reading), or risen above the start."""
    if first is None or last is None:
        return False
    return bool(last) if reset else last > first


def own_peak_kib(root: Root) -> int | None:
    """The high-water mark of this process's own address space (``VmHWM``, KiB; Linux), else ``None``.

    Not ``ru_maxrss``: that also holds the mark of the process this one was exec'd from
    (``fs/exec.c``), which is no peak of this process's; the mark a child inherits from this
    process is at most this one.
    """
    if not _platform.LINUX or not root.is_live:
        return None
    for line in (root.read("/proc/self/status") or "").splitlines():
        if line.startswith("VmHWM:"):
            return count(line.split()[1]) if len(line.split()) > 1 else None
    return None


def rusage_kib() -> tuple[int | None, int | None]:
    """Peak resident set of this process and of its largest waited-for child, in KiB."""
    usage = rusage()
    if usage is None:  # Windows
        return None, None
    scale = 1024 if _platform.MACOS else 1  # macOS says bytes, Linux kibibytes
    return int(usage[0].ru_maxrss // scale), int(usage[1].ru_maxrss // scale)


def _sole_cgroup(root: Root, pid: int) -> str | None:
    """The cgroup v2 folder of ``pid`` when it holds only ``pid`` and its descendants, and no child groups."""
    found = sole_cgroup(root, pid, "memory", {2: "memory.peak"})
    return None if found is None else found[1]


def _reset_peak(root: Root, folder: str) -> int | None:
    """A file descriptor of ``memory.peak`` reset to now for its own reads (Linux 6.12+), or ``None``."""
    if not root.is_live:
        return None
    try:
        handle = os.open(f"{folder}/memory.peak", os.O_RDWR)
    except OSError:
        return None
    try:
        os.write(handle, b"reset\n")
    except OSError:  # a kernel before 6.12: the peak is read at both ends instead
        os.close(handle)
        return None
    return handle


def _peak_bytes(root: Root, folder: str, handle: int | None) -> int | None:
    if handle is None:
        return count(root.read_line(f"{folder}/memory.peak"))
    try:
        return count(os.pread(handle, 64, 0).decode("ascii", "replace"))
    except OSError:
        return None
