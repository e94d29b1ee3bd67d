"""The collection behind :func:`collect`: run the collectors, isolate failures, keep the deadline.

Facts that cannot change while the process lives are gathered the first time they are
needed, by two kinds of worker thread: one reads local files, collector after collector
(the files under ``/proc``, ``/sys`` and ``/etc`` answer in microseconds), and each source
that can hang (a GPU tool, NVML) gets a thread of its own. The caller waits for them until
the deadline and returns what it has, naming what timed out in ``sysmetrics.error``. Should
the file worker stall on one read (a hung network mount, a FIFO), the waiting caller starts
another for the rest, so one stuck file costs its own facts only. The facts are kept, per
root and per value of the environment variables they depend on, and a warm call copies one
merged dictionary. Inline collectors (launcher ranks, disk space, imported frameworks) run
in the caller's thread on every call. A collector still running from an earlier call (or
from :func:`prefetch`) is waited on, never started twice; one that already missed a deadline
is not waited on again, so a wedged tool costs one deadline per process, not one per run.
"""

from __future__ import annotations

import itertools
import threading
import time

from . import _env, _log, _platform, _state
from . import settings as _settings
from . import tags as _tags
from ._context import Collector, Context
from ._files import Root
from ._value import Record, clip

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

#: Version of the layout of :func:`snapshot`'s document.
SNAPSHOT_SCHEMA = 1
#: How long the file worker may sit on one collector before a second worker takes the rest.
STALL_SECONDS = 0.02


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


_lock = _state.lock()
_entries: dict[tuple[object, ...], _Entry] = {}
_plans: dict[_settings.Settings, _Plan] = {}
#: File collectors waiting for a worker, and when each file worker started its current one.
_queue: list[tuple[Collector, _Entry, Context]] = []
_busy: dict[int, float] = {}
_worker_ids = itertools.count()


class _Plan:
    """What one set of settings runs: collectors by kind, and which keys it writes.

    ``merged`` keeps, per value of the environment variables the cached collectors depend
    on, their merged outcome once all have finished: a warm call then copies one dict and
    re-reads only what can change.
    """

    __slots__ = ("cached", "env_names", "inline", "merged", "read_env", "selected")

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
        self.merged: dict[tuple[str | None, ...], _Outcome] = {}

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


class CollectorReport(Record):
    """How one collector fared in one collection (for the snapshot)."""

    name: str
    seconds: float | None
    cached: bool
    errors: list[str]
    details: dict[str, Any]


class Report:
    """A collection's tags and how each collector fared.

    Written out with slots rather than a :class:`Record`: one is made on every call of
    :func:`collect`, warm ones included, where a record's constructor would cost more.
    """

    __slots__ = ("collectors", "seconds", "settings", "tags")

    def __init__(
        self,
        tags: dict[str, str],
        collectors: list[CollectorReport],
        seconds: float,
        settings: _settings.Settings,
    ) -> None:
        self.tags = tags
        self.collectors = collectors
        self.seconds = seconds
        self.settings = settings


def collect() -> dict[str, str]:
    """Every enabled ``sys.*`` tag of this machine and process, as strings.

    Never raises: a fact that failed is left out and named in ``sysmetrics.error``; facts
    still unknown at the deadline (``MLFLOW_SYSMETRICS_TIMEOUT``, 1 s by default) are left out
    and named as timed out. Facts that cannot change while the process lives are read once;
    later calls cost microseconds.
    """
    try:
        return run_collection(reports=False).tags
    except Exception as exc:  # pragma: no cover - the collection's own last line of defence
        _log.logger().debug("collection failed", exc_info=True)
        return {_tags.ERROR: clip(f"sysmetrics: {type(exc).__name__}: {exc}", _tags.MAX_ERROR_LENGTH)}


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


def _plan(settings: _settings.Settings) -> _Plan:
    plan = _plans.get(settings)
    if plan is None:
        plan = _plans[settings] = _Plan(settings)
    return plan


def _machine_facts(plan: _Plan, settings: _settings.Settings, root: Root, deadline: float) -> _Outcome:
    """The cached collectors' merged outcome: remembered, or gathered now (and remembered)."""
    env_values = plan.read_env()
    facts = plan.merged.get(env_values)
    if facts is not None:
        return facts
    facts, complete = _gather(plan.cached, root, deadline, settings.timeout)
    facts.tags = {k: v for k, v in facts.tags.items() if plan.keeps(k, settings)}
    if complete:
        if len(plan.merged) > 32:  # an environment that keeps changing must not grow memory
            plan.merged.clear()
        remembered = _Outcome()
        remembered.tags = facts.tags
        remembered.errors = facts.errors
        remembered.reports = [
            CollectorReport(r.name, r.seconds, True, r.errors, r.details) for r in facts.reports
        ]
        plan.merged[env_values] = remembered
    return facts


def run_collection(settings: _settings.Settings | None = None, *, reports: bool = True) -> Report:
    """Run (or look up) every planned collector and merge their tags, within the deadline.

    ``reports=False`` leaves the per-collector reports out (only the snapshot shows them):
    the first run after the facts were gathered ahead then touches the least code.
    """
    started = time.monotonic()
    if settings is None:
        settings = _settings.current()
    deadline = started + settings.timeout
    root = Root(settings.root)
    plan = _plan(settings)
    facts = _machine_facts(plan, settings, root, deadline)
    outcome = _Outcome()
    outcome.errors.extend(facts.errors)
    if reports:
        outcome.reports.extend(facts.reports)
    for collector in plan.inline:
        _run_inline(collector, Context(root, deadline), outcome, reports)

    keeps = plan.keeps
    result = dict(facts.tags)  # filtered once, when gathered
    result.update((key, value) for key, value in outcome.tags.items() if keeps(key, settings))
    if outcome.errors and keeps(_tags.ERROR, settings):
        result[_tags.ERROR] = clip("; ".join(outcome.errors), _tags.MAX_ERROR_LENGTH)
    return Report(result, outcome.reports, time.monotonic() - started, settings)


def prefetch() -> None:
    """Gather the facts that cannot change, ahead of the first run that asks for them.

    Called in a background thread when implicit tagging is on (see the provider). Returns
    within the deadline; a later call finds the facts remembered, or joins the work still
    in flight. The collectors read on every call run once too, answers discarded, so that
    what they look up once (the file system of the working directory, the versions of the
    installed frameworks) is known as well.
    """
    try:
        settings = _settings.current()
        plan, root = _plan(settings), Root(settings.root)
        deadline = time.monotonic() + settings.timeout
        _machine_facts(plan, settings, root, deadline)
        for collector in plan.inline:  # their answers can change, but not what they look up once
            _run_inline(collector, Context(root, deadline), _Outcome(), report=False)
    except Exception:  # pragma: no cover - a prefetch that fails leaves the work to the first call
        _log.logger().debug("prefetch failed", exc_info=True)


def _gather(
    collectors: tuple[Collector, ...], root: Root, deadline: float, timeout: float
) -> tuple[_Outcome, bool]:
    """Start (or join) each collector, wait until the deadline, merge what finished."""
    from .collectors import reads_cannot_block

    in_caller = reads_cannot_block(root)
    pending: list[tuple[Collector, _Entry, bool]] = []
    new: list[tuple[Collector, _Entry]] = []
    with _lock:
        for collector in collectors:
            key: tuple[object, ...] = (collector.name, root.path, collector.read_env())
            known = _entries.get(key)
            entry = _Entry() if known is None else known
            if known is None:
                _entries[key] = entry
                new.append((collector, entry))
            pending.append((collector, entry, known is not None and entry.done.is_set()))
    files: list[tuple[Collector, _Entry, Context]] = []
    for collector, entry in new:  # the slow ones first, so that they overlap the file reads
        if collector.needs_own_thread(root, in_caller):
            _start_thread(_job(collector, entry, Context(root, deadline)), collector.name)
        else:
            files.append((collector, entry, Context(root, deadline)))
    if in_caller:
        for collector, entry, context in files:
            _execute(collector, entry, context)
    elif files:
        with _lock:
            _queue.extend(files)
        _start_file_worker(only_if_idle=True)
    _wait(pending, deadline)
    outcome = _Outcome()
    complete = True
    for collector, entry, from_cache in pending:
        if not entry.done.is_set():
            entry.missed_deadline = True
            complete = False
            message = f"{collector.name}: TimeoutError: no answer in {timeout:g} s"
            outcome.errors.append(message)
            outcome.reports.append(CollectorReport(collector.name, None, from_cache, [message], {}))
            continue
        outcome.tags.update(entry.tags)
        outcome.errors.extend(entry.errors)
        outcome.reports.append(
            CollectorReport(collector.name, entry.seconds, from_cache, list(entry.errors), entry.details)
        )
    return outcome, complete


def _wait(pending: list[tuple[Collector, _Entry, bool]], deadline: float) -> None:
    """Wait until every entry is done or the deadline passes, rescuing a stalled file worker."""
    for _collector, entry, _cached in pending:
        while not entry.done.is_set() and not entry.missed_deadline:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if entry.done.wait(min(remaining, STALL_SECONDS)):
                break
            _rescue_stalled_files()


def _rescue_stalled_files() -> None:
    """Start another file worker when work waits and every worker sits on one collector too long."""
    now = time.monotonic()
    with _lock:
        stalled = bool(_queue) and all(now - started > STALL_SECONDS for started in _busy.values())
    if stalled:
        _start_file_worker(only_if_idle=False)


def _start_file_worker(only_if_idle: bool) -> None:
    with _lock:
        if only_if_idle and _busy:
            return  # a worker is already taking the queue (it looks again before it ends)
        worker = next(_worker_ids)
        _busy[worker] = time.monotonic()
    _start_thread(lambda: _file_worker(worker), "files")


def _file_worker(worker: int) -> None:
    while True:
        with _lock:
            if not _queue:
                _busy.pop(worker, None)
                return
            collector, entry, context = _queue.pop(0)
            _busy[worker] = time.monotonic()
        _execute(collector, entry, context)


def _accepted(produced: Mapping[str, str], context: Context) -> dict[str, str]:
    """The produced tags that can be true; the others are named in the context's errors.

    A key missing from the table (:data:`tags.TABLE`) is a bug of ours, named, never written.
    """
    accepted: dict[str, str] = {}
    table = _tags.TABLE
    for key, value in produced.items():
        if key not in table:
            context.errors.append(f"KeyError: {key} is not in the table of tags; left out")
            continue
        text = value if isinstance(value, str) else str(value)
        reason = _tags.implausible_tag(key, text)
        if reason is None:
            accepted[str(key)] = text
        else:
            context.errors.append(f"ValueError: {key} cannot be true ({reason}); left out")
    return accepted


def _run_inline(collector: Collector, context: Context, outcome: _Outcome, report: bool) -> None:
    started = time.monotonic()
    try:
        outcome.tags.update(_accepted(collector.function(context), context))
    except Exception as exc:
        _log.logger().debug("collector %s failed", collector.name, exc_info=True)
        context.note_error(exc)
    errors = [f"{collector.name}: {error}" for error in context.errors]
    outcome.errors.extend(errors)
    if report:
        outcome.reports.append(
            CollectorReport(collector.name, time.monotonic() - started, False, errors, context.details)
        )


def _job(collector: Collector, entry: _Entry, context: Context) -> Callable[[], None]:
    return lambda: _execute(collector, entry, context)


def _start_thread(job: Callable[[], None], name: str) -> None:
    if _state.start_thread(job, name) is None:  # no more threads to be had: do the work here instead
        job()


def _execute(collector: Collector, entry: _Entry, context: Context) -> None:
    started = time.monotonic()
    try:
        entry.tags = _accepted(collector.function(context), context)
    except Exception as exc:
        _log.logger().debug("collector %s failed", collector.name, exc_info=True)
        context.note_error(exc)
    entry.errors = [f"{collector.name}: {error}" for error in context.errors]
    entry.details = context.details
    entry.seconds = time.monotonic() - started
    entry.done.set()
    context.run_deferred()  # cleanups no answer waits for (NVML's shutdown)


def clear_cache() -> None:
    """Forget every cached fact and memo (all of the process state in :mod:`._state`)."""
    _state.clear()


#: Per thread, not in _state's registry: a door sets it around one create request and
#: clears it right after, so there is nothing to forget, and after a fork only the forking
#: thread's (its own, possibly in a request still) is left.
_handoff = threading.local()


def handed_over_tags() -> Mapping[str, str] | None:
    """Tags a door collected for the run this thread is creating right now (see :func:`handing_over`)."""
    return getattr(_handoff, "tags", None)


class handing_over:
    """While a door creates a run with ``tags``, the provider returns them instead of collecting again."""

    __slots__ = ("tags",)

    def __init__(self, tags: Mapping[str, str]) -> None:
        self.tags = tags

    def __enter__(self) -> None:
        _handoff.tags = self.tags

    def __exit__(self, *exc_info: object) -> None:
        _handoff.tags = None


def _reset() -> None:
    with _lock:
        _entries.clear()
        _plans.clear()


def _after_fork_in_child() -> None:
    # Threads do not survive fork: an entry still being worked out in the parent would
    # never finish here (the lock is re-armed by _state).
    for key, entry in list(_entries.items()):
        if not entry.done.is_set():
            del _entries[key]
    _queue.clear()
    _busy.clear()


_state.register(reset=_reset, after_fork=_after_fork_in_child)
