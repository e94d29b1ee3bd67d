"""The one protocol every counter source of the ledger follows, and what meters share.

A :class:`Meter` reads one source of cumulative counters (the GPUs' counters, the RAPL
zones, the process's peaks, ...). :meth:`Meter.read` returns its counters now;
:meth:`Meter.figures` turns two readings and the seconds between them into metrics, and
says in the :class:`Book` what it could not count and why. A meter that raises, when it is
built or when it reads, costs its own figures and one clause of ``sys.ledger``: the others
go on, as one failing collector costs only its tags.

Counters that wrap within a run (RAPL's 32-bit energy registers, AMD's 32-bit energy
accumulators) are followed across their wraps by :class:`Unwrapped`: a meter that has
them says how soon one can wrap (:attr:`Meter.wrap_seconds`), and the span's
:class:`Guard` reads that meter at half that period, so that no two readings are far enough
apart for a counter to wrap twice between them. Where no counter can wrap there is no guard
and no thread.

What several meters count is here too: the run's process tree (:func:`descendants`), and
the cgroup where the run may be alone (:func:`sole_cgroup`). A cgroup's counters (its memory
peak, its CPU time) are the run's only where the group holds the run's processes and
nothing else: this process and its live descendants, and no child group (a child group's
processes are not in the group's ``cgroup.procs``, but its counters add up into the group's).
"""

from __future__ import annotations

import os
import threading
import time

from .. import _log, _platform, _state
from .. import tags as T
from .._files import Root, count
from .._value import Record

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from .._files import Root


def read_text(root: Root, path: str, whole: bool = False, limit: int = 4 * 1024 * 1024) -> str:
    """A kernel file under ``root`` (``/proc``, ``/sys``), up to ``limit`` bytes, without buffering.

    ``whole``: the file is one small record that a single read returns whole (a sysfs
    attribute, ``/proc/<pid>/io``); otherwise it is read until the end, as a ``seq_file``
    gives at most its buffer (a page, at first) a read. Raises :class:`OSError` as the kernel
    answers (``FileNotFoundError``: not there; ``PermissionError``: not ours to read), so that
    a meter can say which.
    """
    handle = os.open(root.join(path), os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = [os.read(handle, 65536)]
        while not whole and chunks[-1] and len(chunks) * 65536 < limit:
            chunks.append(os.read(handle, 65536))
    finally:
        os.close(handle)
    return b"".join(chunks).decode("ascii", "replace")


_resource: Any = None
if not _platform.WINDOWS:  # the process's own and its waited-for children's usage
    import resource as _resource


def rusage() -> tuple[Any, Any] | None:
    """``getrusage`` of this process and of its waited-for children, or ``None`` where there is none."""
    if _resource is None:
        return None
    return _resource.getrusage(_resource.RUSAGE_SELF), _resource.getrusage(_resource.RUSAGE_CHILDREN)


class Uncountable(Exception):
    """A meter's source is not there to count (no counter, no permission): one clause, no type name."""


class Book:
    """What a span's meters found: metrics by key, what could not be counted (and why), notes."""

    __slots__ = ("metrics", "missing", "notes")

    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}
        self.missing: dict[str, str] = {}
        self.notes: list[str] = []

    def add(self, key: str, value: float) -> None:
        """The figure ``key``."""
        self.metrics[key] = value

    def lacks(self, what: str, why: str) -> None:
        """``what`` could not be counted, because ``why`` (the first reason given is kept)."""
        self.missing.setdefault(what, why)

    def note(self, text: str) -> None:
        """Something a reader of the figures should know (what a figure is, where it came from)."""
        if text not in self.notes:
            self.notes.append(text)

    def text(self) -> str:
        """``sys.ledger``: what was not counted and why, then the notes; or that everything was."""
        parts = [f"{what}: {why}" for what, why in self.missing.items()]
        return "; ".join([*parts, *self.notes]) or T.LEDGER_EVERYTHING_COUNTED


class ProgramExit(Record):
    """How a program run as the run's child (``mlflow-sysmetrics run``) ended, as its parent saw it.

    ``max_rss_kib``: its peak resident set (``wait4``'s ``ru_maxrss``); ``floor_kib``: the
    peak resident set of the process that started it, which an ``execve`` hands on to the
    program's mark (``fs/exec.c``), so that a peak not above it cannot be told from it
    (``None``: unknown).
    """

    pid: int
    max_rss_kib: int | None = None
    floor_kib: int | None = None


class Meter:
    """One source of counters (see the module). Subclasses set :attr:`name` and the two methods."""

    #: What ``sys.ledger`` calls this source when it cannot count ("cpu energy", "gpu counters").
    name = "counters"
    #: Seconds within which one of its counters can wrap at the most its source can draw, if any.
    wrap_seconds: float | None = None

    def read(self) -> Any:
        """The source's counters now (raise when they cannot be read)."""
        raise NotImplementedError

    def figures(self, first: Any, last: Any, seconds: float, book: Book) -> None:
        """Put into ``book`` what the source counted between ``first`` and ``last``, ``seconds`` apart."""
        raise NotImplementedError

    def follow_program(self, pid: int) -> None:
        """The run is now program ``pid``, a child born after the first reading (default: nothing to do)."""

    def program_exited(self, ended: ProgramExit) -> None:
        """The program the run follows has ended, as its parent saw it (default: nothing to do)."""


class Unwrapped:
    """A counter that wraps at ``modulus``, followed across its wraps from its first reading.

    ``most_per_second``: the most it can grow in a second (its source's power bound), which
    tells when two readings were too far apart to know how often it wrapped between them,
    and when a drop is no wrap at all: a wrap between two readings adds at most what the
    source can draw in the time between them, so a drop that would have to add more is the
    counter starting again (a driver reload, a RAPL reset). :attr:`lost` then says which. A
    value at or above the modulus is not a reading of it.
    """

    __slots__ = ("at", "lost", "modulus", "most_per_second", "total", "value")

    #: How far above ``most_per_second`` x the gap a wrap's increase may be and still be taken
    #: for one (a bound stated in whole watts, the clocks of two readings).
    SLACK = 1.05

    def __init__(self, value: int, modulus: int, most_per_second: float, at: float | None = None) -> None:
        self.value = value
        self.modulus = modulus
        self.most_per_second = most_per_second
        self.at = time.monotonic() if at is None else at
        self.total = 0
        self.lost: str | None = None

    def observe(self, value: int, at: float | None = None) -> int:
        """Take a new reading; the counter's growth since the first reading, wraps undone."""
        at = time.monotonic() if at is None else at
        gap = at - self.at
        if self.lost is None and gap * self.most_per_second >= self.modulus:
            self.lost = f"{gap:.0f} s passed between two readings, time enough to wrap more than once"
        if value >= self.value:
            self.total += value - self.value
        else:
            grew = value + self.modulus - self.value
            if self.lost is None and grew > self.most_per_second * max(gap, 0.0) * self.SLACK:
                self.lost = "the counter went back: a reset, not a wrap"
            self.total += grew
        self.value, self.at = value, at
        return self.total


class Guard:
    """Reads the meters whose counters can wrap, at half the shortest wrap period, until stopped.

    Each reading (:meth:`read_once`) costs what the meter's :meth:`~Meter.read` costs (a few
    file reads or library calls: microseconds) and logs nothing; a read that fails is left
    to the span's last reading to report.
    """

    __slots__ = ("_lock", "_meters", "_stop", "period", "thread")

    #: Never more often than this: a counter that wraps quicker cannot be followed by reading
    #: it (its readings then say that they were too far apart).
    SHORTEST_PERIOD = 0.1

    def __init__(self, meters: Sequence[Meter], lock: threading.Lock) -> None:
        self._meters = [m for m in meters if m.wrap_seconds]
        self._lock = lock
        self._stop = threading.Event()
        #: The thread that reads, once started (``None``: nothing to guard, or no thread to be had).
        self.thread: threading.Thread | None = None
        shortest = min(m.wrap_seconds or 0.0 for m in self._meters) / 2 if self._meters else 0.0
        self.period = max(shortest, self.SHORTEST_PERIOD)

    def start(self) -> bool:
        """Start reading in a daemon thread; False when there is nothing to guard (or no thread to be had)."""
        if not self._meters:
            return False
        self.thread = _state.start_thread(self._run, "ledger-guard")
        return self.thread is not None

    def read_once(self) -> None:
        """Read each guarded meter once, under the span's lock (what the thread does each period)."""
        for meter in self._meters:
            try:
                with self._lock:
                    meter.read()
            except Exception:  # the span's last reading reports what fails
                _log.logger().debug("the ledger's guard could not read %s", meter.name, exc_info=True)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.read_once()

    def stop(self) -> None:
        """Stop reading; a thread that was started has ended when this returns (or a second has passed)."""
        self._stop.set()
        if self.thread is not None:
            self.thread.join(1.0)


#: The most of a group's ``cgroup.procs`` read: a group whose list is longer (about 600
#: processes) holds more than a run's tree, and the root group of a host is not read whole.
PROCS_LIMIT = 4096


def descendants(root: Root, pid: int) -> set[int]:
    """The live descendants of ``pid`` (``/proc/<pid>/task/<tid>/children``, Linux 3.5+)."""
    found: set[int] = set()
    waiting = [pid]
    while waiting:
        current = waiting.pop()
        for task in root.listdir(f"/proc/{current}/task"):
            for child in (root.read(f"/proc/{current}/task/{task}/children") or "").split():
                if child.isdigit() and int(child) not in found:
                    found.add(int(child))
                    waiting.append(int(child))
    return found


def sole_cgroup(root: Root, pid: int, controller: str, counters: dict[int, str]) -> tuple[int, str] | None:
    """The cgroup version and folder of ``pid`` for ``controller``, where the run is alone in it.

    Alone: the group holds ``pid`` and its descendants only, and no child group (v2:
    ``cgroup.stat`` ``nr_descendants 0``; v1: no sub-folder). ``counters`` names, per cgroup
    version counted, the file the group must have (``{2: "memory.peak"}``); ``None`` when
    the group is not the run's alone, or has no such file.
    """
    found = counting_cgroup(root, controller, counters)
    return found if found is not None and alone_in(root, pid, *found) else None


def counting_cgroup(root: Root, controller: str, counters: dict[int, str]) -> tuple[int, str] | None:
    """The cgroup version and folder of this process for ``controller``, if the run could be alone in it.

    ``None`` where no hierarchy holds the controller, the group lacks the file ``counters``
    names for its version, or the group is a v1 hierarchy's root (``release_agent`` is on
    that group alone), which holds every kernel thread.
    """
    if not _platform.LINUX:
        return None
    from ..collectors import _cgroup

    version, folders = _cgroup.controller_dirs(root, controller)
    counter = counters.get(version)
    if counter is None or not folders:
        return None
    folder = folders[0]
    if not root.exists(f"{folder}/{counter}"):
        return None
    if version == 1 and root.exists(f"{folder}/release_agent"):
        return None
    return version, folder


def flat_keyed(text: str | None) -> dict[str, str]:
    """A cgroup file of "flat keyed" lines (``KEY VALUE``, as ``cgroup.stat`` and ``cpu.stat``) as a dict."""
    return dict(line.split(" ", 1) for line in (text or "").splitlines() if " " in line)


def alone_in(root: Root, pid: int, version: int, folder: str) -> bool:
    """Whether the cgroup ``folder`` holds ``pid`` and its live descendants only, and no child group."""
    if version == 2:
        stat = flat_keyed(root.read(f"{folder}/cgroup.stat"))
        if count(stat.get("nr_descendants")) != 0:
            return False  # the group's counters would count the child groups too
    elif _has_child_groups(root, folder):
        return False
    text = root.read(f"{folder}/cgroup.procs", limit=PROCS_LIMIT)
    if text is None or len(text) >= PROCS_LIMIT:
        return False
    members = {int(p) for p in text.split() if p.isdigit()}
    return pid in members and not (len(members) > 1 and members - {pid} - descendants(root, pid))


def _has_child_groups(root: Root, folder: str) -> bool:
    """Whether a cgroup v1 folder has child groups (sub-folders); True when it cannot be listed."""
    try:
        with os.scandir(root.join(folder)) as entries:
            return any(entry.is_dir(follow_symlinks=False) for entry in entries)
    except OSError:
        return True
