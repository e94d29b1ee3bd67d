"""How often the cgroup's CPU quota held the run back: the scheduler's own throttling counts.

A cgroup with a CPU quota may run ``quota`` microseconds of CPU time in each ``period``; once
its tasks have used it up, none of them runs until the period ends: the group is throttled.
The group's ``cpu.stat`` counts it (Linux ``Documentation/admin-guide/cgroup-v2.rst``,
"cpu.stat", "cpu.max"; ``Documentation/scheduler/sched-bwc.rst``, "Statistics"):
``nr_periods``, the periods in which the group had tasks to run; ``nr_throttled``, those in
which it was throttled; and the time its tasks were held, ``throttled_usec`` (v2,
microseconds) or ``throttled_time`` (v1, nanoseconds). Read at the span's two ends:

- ``sys.cpu_throttled_pct``: the periods throttled over the periods run, in percent (0 where
  the group ran in no period of its quota: none was throttled);
- ``sys.cpu_throttled_s``: the time held, in seconds. The kernel adds up the time each CPU's
  share of the group was held, so a group held on four CPUs for one second counts four.

The group counted is the run's own cgroup where it sets a quota (v2 ``cpu.max`` other than
``max``; v1 ``cpu.cfs_quota_us`` other than ``-1``), else its nearest ancestor that sets
one: a Kubernetes pod's limit sits on the pod's group, and the container's own group, with
no quota of its own, counts no periods at all. An ancestor's counts are the whole group's
(every container of the pod): ``sys.ledger`` names the group. No quota on the way up to the
top of the hierarchy the process sees: the run could not be throttled, and the figures are
absent with ``no CPU quota on this cgroup`` (not 0, which would say a quota was there and
never hit).
"""

from __future__ import annotations

import posixpath

from .. import _platform
from .. import tags as T
from .._files import Root, count, once_per_root
from .._value import Record
from ._meter import Book, Meter, Uncountable, flat_keyed

#: The file that sets the quota, and the ``cpu.stat`` key of the time held with its unit in
#: seconds, by cgroup version.
VERSIONS: dict[int, tuple[str, str, float]] = {
    1: ("cpu.cfs_quota_us", "throttled_time", 1e-9),
    2: ("cpu.max", "throttled_usec", 1e-6),
}


class Throttling(Record):
    """A group's ``cpu.stat`` throttling counts at one moment."""

    periods: int
    throttled: int
    held: int


@once_per_root
def quota_group(root: Root) -> tuple[int, str, int] | str:
    """The cgroup version, the nearest group that sets a CPU quota, and how far up it is (0: the run's own).

    Why there is none, where no group on the way up sets one. Read once per process, as the
    collection reads the quota for ``sys.cpu_available``.
    """
    if not _platform.LINUX:
        return "no cgroups on this platform"
    from ..collectors import _cgroup

    version, folders = _cgroup.controller_dirs(root, "cpu")
    if version not in VERSIONS:
        return "no cgroup holds the CPU controller"
    quota_file = VERSIONS[version][0]
    for depth, folder in enumerate(folders):
        text = root.read_line(posixpath.join(folder, quota_file)) or ""
        quota = text.split()[0] if text.split() else ""
        if quota.isdigit() and int(quota) > 0:  # v2 "max", v1 "-1": no quota
            return version, folder, depth
    return "no CPU quota on this cgroup"


class ThrottlingMeter(Meter):
    """The CPU quota's throttling of the run's cgroup, or of its nearest ancestor with a quota."""

    name = "cpu throttling"

    def __init__(self, root: Root) -> None:
        self.root = root
        found = quota_group(root)
        if isinstance(found, str):
            raise Uncountable(found)
        self.version, self.folder, self.depth = found

    def read(self) -> Throttling:
        """The group's ``nr_periods``, ``nr_throttled`` and time held now."""
        path = posixpath.join(self.folder, "cpu.stat")
        stat = flat_keyed(self.root.read(path))
        held_key = VERSIONS[self.version][1]
        values = [count(stat.get(key)) for key in ("nr_periods", "nr_throttled", held_key)]
        periods, throttled, held = values
        if periods is None or throttled is None or held is None:
            raise Uncountable(f"{path} gives no nr_periods, nr_throttled and {held_key}")
        return Throttling(periods, throttled, held)

    def figures(self, first: Throttling, last: Throttling, seconds: float, book: Book) -> None:
        """``sys.cpu_throttled_pct`` and ``sys.cpu_throttled_s``."""
        periods = last.periods - first.periods
        throttled = last.throttled - first.throttled
        held = last.held - first.held
        if periods < 0 or throttled < 0 or held < 0:
            book.lacks(self.name, "the cgroup's cpu.stat counters went backwards (the group was made anew)")
            return
        if self.depth:
            book.note(
                f"cpu throttling: of {posixpath.basename(self.folder)}, a group above the run's "
                "that sets the quota, for all its processes"
            )
        book.add(T.CPU_THROTTLED_PCT, round(throttled / periods * 100, 3) if periods else 0.0)
        book.add(T.CPU_THROTTLED_S, round(held * VERSIONS[self.version][2], 6))
