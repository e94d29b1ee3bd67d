"""How busy the cores the run could use were: its processes' CPU time over the cores and the span.

``sys.cpu_util_pct`` is the CPU time (user + system) the run's processes spent between the
span's two readings, over the span's wall time times ``sys.cpu_available`` (the cores the
collection says the process may use: its affinity and the cgroup's CPU quota, computed by
the same function, once per process as the collection does), in percent.

The CPU time of the run's process tree at one moment is the sum of three parts, in which
every process that ever was in the tree is counted once:

- this process, all its threads (``getrusage(RUSAGE_SELF)``, microseconds);
- its descendants that ended and were waited for (``RUSAGE_CHILDREN``, microseconds): a
  parent's wait adds the child's time, and the time of the child's own waited-for
  descendants, to the parent's count of its children, so grandchildren reaped by a child
  that this process reaped are in it;
- each live descendant, found through ``/proc/<pid>/task/<tid>/children`` (Linux 3.5+),
  read from ``/proc/<pid>/stat`` (proc(5)): ``utime`` + ``stime`` (fields 14 and 15: its
  own threads) and ``cutime`` + ``cstime`` (fields 16 and 17: its descendants that ended
  and that it waited for), in clock ticks (``SC_CLK_TCK``).

A descendant that ends and is waited for moves from the third part to the second (or into a
live ancestor's ``cutime``) with its whole life's time, so the difference of the sums at the
span's two ends is the time spent between them: a DataLoader worker alive at the start
counts only what it grew, whether it is still alive at the end or was reaped before it.

What is exact and what is not:

- this process and its ended, waited-for descendants: exact, to the microsecond;
- a live descendant: in clock ticks (1/100 s on Linux), each reading truncated, so at most
  one tick per live descendant per reading;
- a descendant that is still alive when its parent ends is re-parented out of the tree (to
  init or a subreaper) and counted no more: its time after that is missing, and so is the
  time it had at the start (the start counted it, the end no longer sees it), which makes
  the figure too low; where the tree's total falls between the readings, the figure is
  absent with the reason;
- a process that ends and is waited for in the microseconds between this process's
  ``getrusage`` and its reads of ``/proc`` is counted in neither part, or in both, at that
  reading. A descendant that ended but was not waited for (a zombie) is still a live
  descendant: its ``/proc/<pid>/stat`` holds its times.

Where the run is alone in its cgroup at both readings (the group holds this process and its
descendants only, and no child group: :func:`._meter.sole_cgroup`), the group's own count of
its tasks' CPU time is the exact figure: ``cpu.stat`` ``usage_usec`` (v2) or
``cpuacct.usage`` (v1, nanoseconds), which also counts a process that left the tree but not
the group; ``sys.ledger`` then says so.

Under ``mlflow-sysmetrics run`` the run is a program this process starts after the first
reading, and this process's own time is not the run's: the figure is the children's growth
(the program once it was waited for, and what it waited for) and the live descendants', or
the cgroup's count less this process's own time.

The figure can pass 100 where the run used more than ``sys.cpu_available`` says: a quota's
burst (``cpu.max.burst``), or an affinity or quota changed during the run. On macOS the
live descendants cannot be listed: the figure counts this process and its ended children,
and ``sys.ledger`` says so. Windows has no ``getrusage``: not counted.
"""

from __future__ import annotations

import os

from .. import _platform
from .. import tags as T
from .._files import Root, count, once_per_root
from .._value import Record
from ._meter import Book, Meter, Uncountable, alone_in, counting_cgroup, descendants, flat_keyed, rusage

#: The cgroup counters of CPU time, by cgroup version: the controller whose hierarchy holds
#: it, its file and the seconds in one of its units.
CGROUP_COUNTERS: dict[int, tuple[str, str, float]] = {
    1: ("cpuacct", "cpuacct.usage", 1e-9),
    2: ("cpu", "cpu.stat", 1e-6),
}


class Times(Record):
    """The CPU seconds of the run's tree at one moment, by part (see the module)."""

    own: float
    children: float
    #: The live descendants' (``None``: they cannot be listed on this platform).
    live: float | None = None
    #: The cgroup's count, where the run is alone in the group.
    cgroup: float | None = None


class CpuTimeMeter(Meter):
    """The run's CPU time over the cores it could use (see the module)."""

    name = "cpu use"

    def __init__(self, root: Root) -> None:
        if rusage() is None:  # Windows
            raise Uncountable("getrusage is not available on this platform")
        self.root = root
        self.pid = os.getpid()
        self.following = False
        self.tick = float(os.sysconf("SC_CLK_TCK")) if _platform.LINUX else 0.0
        self.cgroup = _sole_group(root, self.pid)
        self._checked = True  # the group was found alone just now: the first reading trusts it

    def read(self) -> Times:
        """The CPU seconds of this process, its ended children, its live descendants; the cgroup's."""
        usage = rusage()
        if usage is None:  # built only where there is getrusage
            raise Uncountable("getrusage is not available on this platform")
        own, children = usage
        live = self._live_seconds() if _platform.LINUX else None
        cgroup = None
        if self.cgroup is not None:
            if self._checked or _sole_group(self.root, self.pid) == self.cgroup:
                cgroup = _cgroup_seconds(self.root, *self.cgroup)
            self._checked = False
        return Times(own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime, live, cgroup)

    def _live_seconds(self) -> float:
        ticks = 0
        for pid in descendants(self.root, self.pid):
            ticks += _stat_ticks(self.root, pid)
        return ticks / self.tick

    def follow_program(self, pid: int) -> None:
        """The run is a program started now: this process's own time is not counted."""
        self.following = True

    def figures(self, first: Times, last: Times, seconds: float, book: Book) -> None:
        """``sys.cpu_util_pct``."""
        cores = available_cores(self.root)
        if cores is None:
            raise Uncountable("the cores the run may use are not known")
        own = last.own - first.own
        used: float | None = None
        if first.cgroup is not None and last.cgroup is not None and last.cgroup >= first.cgroup:
            used = last.cgroup - first.cgroup - (own if self.following else 0.0)
            if used >= 0:
                book.note("cpu use: the cgroup's own count (the run is alone in it)")
            else:
                used = None
        if used is None:
            used = last.children - first.children + (0.0 if self.following else own)
            if first.live is not None and last.live is not None:
                used += last.live - first.live
            else:
                book.note("cpu use: this process and its ended children (live ones cannot be listed here)")
            if used < 0:
                book.lacks(
                    self.name,
                    "the run's processes' CPU time fell between the readings (a process "
                    "alive at the start left the run's process tree)",
                )
                return
        book.add(T.CPU_UTIL_PCT, round(used / (seconds * cores) * 100, 3))


@once_per_root
def available_cores(root: Root) -> float | None:
    """``sys.cpu_available`` as the collection computes it (affinity and CPU quota), as a number.

    Read once per process, as the collection reads it.
    """
    if not _platform.LINUX:
        return float(os.cpu_count() or 0) or None
    from ..collectors import cpu

    logical = os.cpu_count() if root.is_live else cpu.logical_from_cpuinfo(root.read("/proc/cpuinfo") or "")
    text = cpu.available(root, logical)
    return float(text) if text else None


def _stat_ticks(root: Root, pid: int) -> int:
    """``utime + stime + cutime + cstime`` of ``/proc/<pid>/stat`` (fields 14-17); 0 if it has ended."""
    text = root.read(f"/proc/{pid}/stat", limit=4096)
    if not text:
        return 0  # ended since it was listed: its time is its parent's now
    # the name (field 2) is in parentheses and may hold any character: fields 3 on follow the last ")"
    fields = text[text.rfind(")") + 1 :].split()
    try:
        return sum(int(field) for field in fields[11:15])
    except ValueError:
        return 0


@once_per_root
def _counting_group(root: Root) -> tuple[int, str] | None:
    """The group whose CPU count would be the run's, were it alone there (found once per process)."""
    for version, (controller, counter, _) in CGROUP_COUNTERS.items():
        found = counting_cgroup(root, controller, {version: counter})
        if found is not None:
            return found
    return None


def _sole_group(root: Root, pid: int) -> tuple[int, str] | None:
    found = _counting_group(root)
    return found if found is not None and alone_in(root, pid, *found) else None


def _cgroup_seconds(root: Root, version: int, folder: str) -> float | None:
    """The group's CPU seconds: ``cpuacct.usage`` (v1, ns) or ``cpu.stat`` ``usage_usec`` (v2)."""
    _, counter, unit = CGROUP_COUNTERS[version]
    text = root.read(f"{folder}/{counter}", limit=4096)
    if text is None:
        return None
    if version == 2:
        text = flat_keyed(text).get("usage_usec")
    value = count(text)
    return None if value is None else value * unit
