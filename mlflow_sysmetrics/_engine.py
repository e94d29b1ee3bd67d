"""The engine behind :func:`collect`: run the collectors, isolate failures, keep the deadline.

Each cached collector runs in a daemon thread of its own the first time it is needed; the
caller waits for all of them until the deadline and then returns what it has, naming what
timed out in ``sysmetrics.error``. Their facts cannot change while the process lives, so
they are kept, per root and per value of the environment variables they depend on, and a
warm call copies one merged dictionary. Inline collectors (launcher ranks, disk space) run
in the caller's thread on every call; they read the environment or a local file system,
and the disk collector guards a network mount with the deadline itself. A collector still running
from an earlier call is waited on, never started twice; one that already missed a deadline
is not waited on again, so a wedged tool costs one deadline per process, not one per run.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple

from . import _env, _platform, _state
from . import settings as _settings
from . import tags as _tags
from ._context import Collector, Context
from ._files import Root

_LOG = logging.getLogger("mlflow_sysmetrics")

#: Version of the layout of :func:`snapshot`'s document.
SNAPSHOT_SCHEMA = 1


class _Entry:
    """One collector's outcome for one cache key, possibly still being worked out."""

    __slots__ = ("details", "done", "errors", "missed_deadline", "seconds", "tags")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.tags: dict[str, str] = {}
        self.errors: list[str] = []
        self.details: dict[str, Any] = {}
        self.seconds: float | None = None
        self.missed_deadline = False


_lock = threading.Lock()
_entries: dict[tuple[object, ...], _Entry] = {}
_plans: dict[_settings.Settings, _Plan] = {}


class _Plan:
    """What one set of settings runs: collectors by kind, and which keys it writes.

    ``fast`` keeps, per value of the environment variables the cached collectors depend
    on, their merged outcome once all have finished: a warm call then copies one dict and
    re-reads only what can change.
    """

    __slots__ = ("cached", "env_names", "fast", "inline", "read_env", "selected")

    def __init__(self, settings: _settings.Settings) -> None:
        from .collectors import COLLECTORS

        planned = [
            c
            for c in COLLECTORS
            if any(_tags.selected(k, settings.include, settings.exclude) for k in c.keys)
        ]
        self.cached = tuple(c for c in planned if not c.inline)
        self.inline = tuple(c for c in planned if c.inline)
        self.env_names = tuple(dict.fromkeys(name for c in self.cached for name in c.env))
        self.read_env = _env.reader(self.env_names)
        self.selected: dict[str, bool] = {}
        self.fast: dict[tuple[str | None, ...], _Outcome] = {}

    def keeps(self, key: str, settings: _settings.Settings) -> bool:
        known = self.selected.get(key)
        if known is None:
            known = self.selected[key] = _tags.selected(key, settings.include, settings.exclude)
        return known


class _Outcome:
    """Merged tags, errors and reports of a group of collectors."""

    __slots__ = ("errors", "reports", "tags")

    def __init__(self) -> None:
        self.tags: dict[str, str] = {}
        self.errors: list[str] = []
        self.reports: list[CollectorReport] = []


class CollectorReport(NamedTuple):
    """How one collector fared in one collection (for the snapshot)."""

    name: str
    seconds: float | None
    cached: bool
    errors: list[str]
    details: dict[str, Any]


class Report(NamedTuple):
    """A collection's tags and how each collector fared."""

    tags: dict[str, str]
    collectors: list[CollectorReport]
    seconds: float
    settings: _settings.Settings


def collect() -> dict[str, str]:
    """Every enabled ``sys.*`` tag of this machine and process, as strings.

    Never raises: a fact that failed is left out and named in ``sysmetrics.error``; facts
    still unknown at the deadline (``MLFLOW_SYSMETRICS_TIMEOUT``, 1 s by default) are left out
    and named as timed out. Facts that cannot change while the process lives are read once;
    later calls cost microseconds.
    """
    try:
        return run_collection().tags
    except Exception as exc:  # pragma: no cover - the engine's own last line of defence
        _LOG.debug("collection failed", exc_info=True)
        return {_tags.ERROR: _tags.clip(f"sysmetrics: {type(exc).__name__}: {exc}", _tags.MAX_ERROR_LENGTH)}


def snapshot() -> dict[str, Any]:
    """The full detail behind the tags, as a JSON-ready, schema-versioned document.

    Holds the tags, every device with index, name, UUID, memory and bus id, and each
    collector's time taken and errors. Tags stay short and searchable; this is for depth.
    """
    report = run_collection()
    details: dict[str, Any] = {}
    for item in report.collectors:
        details.update(item.details)
    return {
        "schema": SNAPSHOT_SCHEMA,
        "generator": "mlflow-sysmetrics",
        "collected_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "platform": _platform.NAME,
        "root": report.settings.root,
        "timeout_s": report.settings.timeout,
        "seconds": round(report.seconds, 6),
        "tags": report.tags,
        **details,
        "collectors": [
            {
                "name": item.name,
                "seconds": None if item.seconds is None else round(item.seconds, 6),
                "from_cache": item.cached,
                "errors": item.errors,
            }
            for item in report.collectors
        ],
    }


def run_collection(settings: _settings.Settings | None = None) -> Report:
    """Run (or look up) every planned collector and merge their tags, within the deadline."""
    started = time.monotonic()
    if settings is None:
        settings = _settings.current()
    deadline = started + settings.timeout
    root = Root(settings.root)
    plan = _plans.get(settings)
    if plan is None:
        plan = _plans[settings] = _Plan(settings)
    env_values = plan.read_env()
    static = plan.fast.get(env_values)
    if static is None:
        static, complete = _gather(plan.cached, root, deadline, settings.timeout)
        static.tags = {k: v for k, v in static.tags.items() if plan.keeps(k, settings)}
        if complete:
            if len(plan.fast) > 32:  # an environment that keeps changing must not grow memory
                plan.fast.clear()
            remembered = _Outcome()
            remembered.tags = static.tags
            remembered.errors = static.errors
            remembered.reports = [
                CollectorReport(r.name, r.seconds, True, r.errors, r.details) for r in static.reports
            ]
            plan.fast[env_values] = remembered
    outcome = _Outcome()
    outcome.errors.extend(static.errors)
    outcome.reports.extend(static.reports)
    for collector in plan.inline:
        _run_inline(collector, Context(root, deadline), outcome)

    keeps = plan.keeps
    result = dict(static.tags)  # filtered once, when gathered
    result.update((key, value) for key, value in outcome.tags.items() if keeps(key, settings))
    if outcome.errors and keeps(_tags.ERROR, settings):
        result[_tags.ERROR] = _tags.clip("; ".join(outcome.errors), _tags.MAX_ERROR_LENGTH)
    return Report(result, outcome.reports, time.monotonic() - started, settings)


def _gather(
    collectors: tuple[Collector, ...], root: Root, deadline: float, timeout: float
) -> tuple[_Outcome, bool]:
    """Start (or join) each collector, wait until the deadline, merge what finished."""
    pending: list[tuple[Collector, _Entry, bool]] = []
    for collector in collectors:
        key: tuple[object, ...] = (collector.name, root.path, collector.read_env())
        with _lock:
            known = _entries.get(key)
            entry = _Entry() if known is None else known
            if known is None:
                _entries[key] = entry
        if known is None:
            _start_thread(
                functools.partial(_execute, collector, entry, Context(root, deadline)), collector.name
            )
        pending.append((collector, entry, known is not None and entry.done.is_set()))
    outcome = _Outcome()
    complete = True
    for collector, entry, from_cache in pending:
        if not entry.done.is_set() and not entry.missed_deadline:
            entry.done.wait(max(deadline - time.monotonic(), 0.0))
        if not entry.done.is_set():
            entry.missed_deadline = True
            complete = False
            message = f"{collector.name}: TimeoutError: no answer in {timeout:g} s"
            outcome.errors.append(message)
            outcome.reports.append(CollectorReport(collector.name, None, from_cache, [message], {}))
            continue
        _absorb_entry(outcome, collector, entry, from_cache)
    return outcome, complete


def _accepted(produced: Mapping[str, str], context: Context) -> dict[str, str]:
    """The produced tags that can be true; the others are named in the context's errors."""
    accepted: dict[str, str] = {}
    for key, value in produced.items():
        text = value if isinstance(value, str) else str(value)
        reason = _tags.implausible_tag(key, text)
        if reason is None:
            accepted[str(key)] = text
        else:
            context.errors.append(f"ValueError: {key} cannot be true ({reason}); left out")
    return accepted


def _run_inline(collector: Collector, context: Context, outcome: _Outcome) -> None:
    started = time.monotonic()
    try:
        outcome.tags.update(_accepted(collector.function(context), context))
    except Exception as exc:
        _LOG.debug("collector %s failed", collector.name, exc_info=True)
        context.note_error(exc)
    errors = [f"{collector.name}: {error}" for error in context.errors]
    outcome.errors.extend(errors)
    outcome.reports.append(
        CollectorReport(collector.name, time.monotonic() - started, False, errors, context.details)
    )


def _absorb_entry(outcome: _Outcome, collector: Collector, entry: _Entry, from_cache: bool) -> None:
    outcome.tags.update(entry.tags)
    outcome.errors.extend(entry.errors)
    outcome.reports.append(
        CollectorReport(collector.name, entry.seconds, from_cache, list(entry.errors), entry.details)
    )


def _start_thread(job: Callable[[], None], name: str) -> None:
    thread = threading.Thread(target=job, name=f"mlflow-sysmetrics-{name}", daemon=True)
    try:
        thread.start()
    except RuntimeError:  # no more threads to be had: do the work here instead
        job()


def _execute(collector: Collector, entry: _Entry, context: Context) -> None:
    started = time.monotonic()
    try:
        entry.tags = _accepted(collector.function(context), context)
    except Exception as exc:
        _LOG.debug("collector %s failed", collector.name, exc_info=True)
        context.note_error(exc)
    entry.errors = [f"{collector.name}: {error}" for error in context.errors]
    entry.details = context.details
    entry.seconds = time.monotonic() - started
    entry.done.set()


def clear_cache() -> None:
    """Forget every cached fact and memo (all of the process state in :mod:`._state`)."""
    _state.clear()


_handoff = threading.local()


def handed_over_tags() -> Mapping[str, str] | None:
    """Tags a door collected for the run this thread is creating right now (see :func:`handing_over`)."""
    return getattr(_handoff, "tags", None)


@contextmanager
def handing_over(tags: Mapping[str, str]) -> Iterator[None]:
    """While a door creates a run with ``tags``, the provider returns them instead of collecting again."""
    _handoff.tags = tags
    try:
        yield
    finally:
        _handoff.tags = None


def _reset() -> None:
    with _lock:
        _entries.clear()
        _plans.clear()


def _after_fork_in_child() -> None:
    # Threads do not survive fork: an entry still being worked out in the parent would
    # never finish here, and the lock may have been held by one of those threads.
    global _lock
    _lock = threading.Lock()
    for key, entry in list(_entries.items()):
        if not entry.done.is_set():
            del _entries[key]


_state.register(reset=_reset, after_fork=_after_fork_in_child)
