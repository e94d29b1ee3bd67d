"""What the meters share: a counter followed across its wraps, and the guard that reads it.

:class:`Unwrapped` is the ledger's own arithmetic: its inputs are a counter's values and the
moments they were read, given here as numbers (a 1,000-unit counter that may grow 100 a
second: it wraps at the soonest every 10 s).
"""

from __future__ import annotations

import threading

from mlflow_sysmetrics import _state
from mlflow_sysmetrics.ledger._meter import Guard, Meter, Unwrapped


def test_a_wrap_the_source_could_make_is_undone() -> None:
    """900 -> 100 in 3 s: 200 units, no more than the 300 that 100 a second allows: a wrap."""
    counter = Unwrapped(900, 1000, 100.0, at=0.0)
    assert counter.observe(100, at=3.0) == 200
    assert counter.lost is None


def test_every_wrap_between_readings_less_than_a_period_apart_is_undone() -> None:
    """Readings 5 s apart, 450 units each (90 a second): three wraps, 2,700 units in all."""
    counter = Unwrapped(500, 1000, 100.0, at=0.0)
    value = 500
    for step in range(1, 7):
        value = (value + 450) % 1000
        total = counter.observe(value, at=5.0 * step)
    assert (total, counter.lost) == (2700, None)


def test_a_drop_the_source_could_not_make_by_wrapping_is_a_reset() -> None:
    """600 -> 100 in 1 s: a wrap would be 500 units, five times what the source may add in a second."""
    counter = Unwrapped(600, 1000, 100.0, at=0.0)
    counter.observe(100, at=1.0)
    assert counter.lost == "the counter went back: a reset, not a wrap"


def test_a_wrap_within_the_bounds_slack_is_still_a_wrap() -> None:
    """A wrap adding 104 units in 1 s at a 100-a-second bound: within its 5 % slack; 106 is not."""
    within = Unwrapped(996, 1000, 100.0, at=0.0)
    within.observe(100, at=1.0)
    assert within.lost is None
    beyond = Unwrapped(994, 1000, 100.0, at=0.0)
    beyond.observe(100, at=1.0)
    assert beyond.lost == "the counter went back: a reset, not a wrap"


def test_readings_a_whole_period_apart_cannot_tell_the_wraps() -> None:
    """10 s between readings: time enough for the counter to have wrapped twice."""
    counter = Unwrapped(100, 1000, 100.0, at=0.0)
    counter.observe(200, at=10.0)
    assert counter.lost == "10 s passed between two readings, time enough to wrap more than once"


class _Counts(Meter):
    """A meter whose reading is how often it was read (its source: a counter held here)."""

    name = "counts"
    wrap_seconds = 0.2

    def __init__(self) -> None:
        self.reads = 0
        self.read_twice = threading.Event()

    def read(self) -> int:
        self.reads += 1
        if self.reads >= 2:
            self.read_twice.set()
        return self.reads


def test_the_guard_reads_until_stopped_and_its_thread_has_ended_when_stop_returns() -> None:
    """The guard's thread reads the meter (twice at least, however loaded the machine); stop() joins it."""
    meter = _Counts()
    guard = Guard([meter], threading.Lock())
    assert guard.start()
    thread = guard.thread
    assert thread is not None
    assert meter.read_twice.wait(60)
    guard.stop()
    assert not thread.is_alive()
    assert thread not in threading.enumerate()


def test_no_thread_for_meters_that_cannot_wrap() -> None:
    """A meter without a wrap period: nothing to guard, no thread."""
    meter = _Counts()
    meter.wrap_seconds = None
    guard = Guard([meter], threading.Lock())
    assert not guard.start()
    assert guard.thread is None
    guard.stop()


def test_start_thread_answers_the_thread_it_started() -> None:
    """``_state.start_thread`` gives the started thread, named as ours, which its caller can join."""
    ran = threading.Event()
    thread = _state.start_thread(ran.set, "test")
    assert thread is not None
    thread.join(60)
    assert ran.is_set()
    assert thread.name == "mlflow-sysmetrics-test"
