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
"""

from __future__ import annotations

import os
import threading
import time

from .. import _log, _state
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
        return "; ".join([*parts, *self.notes]) or "everything counted"


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
    tells when two readings were too far apart to know how often it wrapped between them:
    :attr:`lost` then says so. A value at or above the modulus is not a reading of it.
    """

    __slots__ = ("at", "lost", "modulus", "most_per_second", "total", "value")

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
        self.total += value - self.value if value >= self.value else value + self.modulus - self.value
        self.value, self.at = value, at
        return self.total


class Guard:
    """Reads the meters whose counters can wrap, at half the shortest wrap period, until stopped.

    Each reading costs what the meter's :meth:`~Meter.read` costs (a few file reads or
    library calls: microseconds) and logs nothing; a read that fails is left to the span's
    last reading to report.
    """

    __slots__ = ("_lock", "_meters", "_stop", "period")

    #: Never more often than this: a counter that wraps quicker cannot be followed by reading
    #: it (its readings then say that they were too far apart).
    SHORTEST_PERIOD = 0.1

    def __init__(self, meters: Sequence[Meter], lock: threading.Lock) -> None:
        self._meters = [m for m in meters if m.wrap_seconds]
        self._lock = lock
        self._stop = threading.Event()
        shortest = min(m.wrap_seconds or 0.0 for m in self._meters) / 2 if self._meters else 0.0
        self.period = max(shortest, self.SHORTEST_PERIOD)

    def start(self) -> bool:
        """Start reading in a daemon thread; False when there is nothing to guard (or no thread to be had)."""
        if not self._meters:
            return False
        return _state.start_thread(self._run, "ledger-guard")

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            for meter in self._meters:
                try:
                    with self._lock:
                        meter.read()
                except Exception:  # the span's last reading reports what fails
                    _log.logger().debug("the ledger's guard could not read %s", meter.name, exc_info=True)

    def stop(self) -> None:
        """Stop reading (the thread ends within one period's wait)."""
        self._stop.set()
