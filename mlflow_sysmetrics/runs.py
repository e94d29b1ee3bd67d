"""The explicit doors onto :func:`~mlflow_sysmetrics.collect`.

Tag a run, open a tagged run, decorate a function so each call runs in one.

MLflow is imported inside the functions, so ``import mlflow_sysmetrics`` stays cheap.
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NamedTuple, ParamSpec, TypedDict, TypeVar, overload

import wrapt

from . import _shared_run, ledger
from . import tags as T
from ._collection import collect, handing_over
from ._collection import snapshot as _snapshot
from .collectors import distributed

if TYPE_CHECKING:
    from mlflow import ActiveRun
    from mlflow.tracking import MlflowClient
    from typing_extensions import Unpack

_LOG = logging.getLogger("mlflow_sysmetrics")

P = ParamSpec("P")
R = TypeVar("R")
D = TypeVar("D", classmethod, staticmethod)  # type: ignore[type-arg]

#: Where the snapshot document goes among the run's artifacts.
SNAPSHOT_ARTIFACT = "sysmetrics/system.json"


class RunOptions(TypedDict, total=False):
    """The keyword arguments of :func:`sysmetrics_run` and ``@with_sysmetrics(...)``.

    Those of ``mlflow.start_run``, and ``snapshot``. The one place they are listed: the
    signatures (for type checkers) and the check at call time both read it.
    """

    run_id: str | None
    experiment_id: str | None
    run_name: str | None
    nested: bool
    parent_run_id: str | None
    tags: Mapping[str, Any] | None
    description: str | None
    log_system_metrics: bool | None
    snapshot: bool


#: The option names, read from :class:`RunOptions` (no MLflow import needed to check them).
RUN_OPTIONS: frozenset[str] = frozenset(RunOptions.__annotations__)


class Tagging(NamedTuple):
    """What writing this machine's tags to a run did."""

    written: dict[str, str]
    #: Facts the run already carries that differ from this machine's: key -> (run, here).
    kept: dict[str, tuple[str | None, str | None]]
    #: The artifact path of the snapshot logged to the run, if one was.
    snapshot: str | None = None


def write_tags(
    client: MlflowClient, run_id: str, tags: Mapping[str, str], node: int, overwrite: bool
) -> Tagging:
    """Write ``tags`` (node ``node``'s keys) to the run, never leaving it contradicting itself.

    A run that carries none of these keys yet gets them in one request. One that already
    carries the same facts gets nothing; one that carries different facts (tagged from
    another machine) keeps them and gets nothing, unless ``overwrite``: then its keys are
    replaced as a whole, the ones this machine lacks deleted.
    """
    from mlflow.entities import RunTag

    existing = _shared_run.own_keys(client.get_run(run_id).data.tags, node)
    if existing and not overwrite:
        keys = [k for k in T.order(set(tags) | set(existing)) if T.plain_key(k) not in T.VARYING_KEYS]
        return Tagging(
            {}, {k: (existing.get(k), tags.get(k)) for k in keys if existing.get(k) != tags.get(k)}
        )
    for stale in sorted(set(existing) - set(tags)):
        client.delete_tag(run_id, stale)
    if tags:
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    return Tagging(dict(tags), {})


def _this_process_tags() -> tuple[dict[str, str], int | None]:
    """The tags this process writes on a run it did not create, and the node it writes them as.

    ``None`` for a process of a multi-node job that writes nothing (another process of its
    node does); the tags are then what that writer writes.
    """
    tags = collect()
    info = _shared_run.placed(distributed.current())
    if not _shared_run.is_shared(info):
        return tags, 0
    mine = _shared_run.shared_run_tags(tags, info)
    if mine is None:
        return _shared_run.node_view(tags, info), None
    return mine, _shared_run.writing_node(info) or 0


def _artifact(node: int) -> str:
    return SNAPSHOT_ARTIFACT if node == 0 else SNAPSHOT_ARTIFACT.replace(".json", f"-node{node}.json")


def kept_summary(kept: Mapping[str, tuple[str | None, str | None]]) -> str:
    """The first three keys a run kept, with its value and this machine's, for a warning."""
    return "; ".join(
        f"{key}: {run!r} on the run, {here!r} here" for key, (run, here) in list(kept.items())[:3]
    )


def tag_run(
    run_id: str,
    client: MlflowClient,
    *,
    snapshot: bool = False,
    overwrite: bool = False,
    warn: bool = True,
) -> Tagging:
    """Tag an existing run with this machine's facts (see :func:`write_tags`); the outcome.

    A run kept whole (it carries another machine's facts) is logged as a warning unless
    ``warn`` is false: a caller that reports :attr:`Tagging.kept` itself (the command line)
    says it once, in its own words. ``snapshot`` logs the snapshot whenever the run's facts
    are this machine's, also when they were there already.
    """
    tags, node = _this_process_tags()
    if node is None:
        return Tagging(tags, {})
    overwrite = overwrite or _shared_run.replaces_creators_facts(distributed.current())
    outcome = write_tags(client, run_id, tags, node, overwrite)
    if outcome.kept and warn:
        shown = kept_summary(outcome.kept)
        _LOG.warning(
            "run %s already carries system tags from another machine (%s); kept them and wrote "
            "nothing (overwrite=True replaces them)",
            run_id,
            shown,
        )
    elif snapshot and not outcome.kept:
        # Asked for, the snapshot is logged even when the tags were already there: it is
        # the detail behind them, and a run tagged without one would otherwise never get it.
        client.log_dict(run_id, _snapshot(), _artifact(node))
        outcome = outcome._replace(snapshot=_artifact(node))
    return outcome


def log_sysmetrics(
    run_id: str | None = None,
    *,
    snapshot: bool = False,
    overwrite: bool = False,
    tracking_uri: str | None = None,
    client: MlflowClient | None = None,
) -> dict[str, str]:
    """Tag an existing run with the system tags, and return what was written.

    The door for runs no context provider sees (``MlflowClient.create_run``). Without
    ``run_id`` the active run is tagged; with neither, :class:`ValueError` and nothing is
    written. The run is read once and written in one request. A run's facts belong to the
    machine that ran it: a run that already carries other system tags keeps them, nothing
    is written and a warning names the first differing facts (``overwrite=True`` replaces
    the whole set, deleting the keys this machine lacks); one that carries the same facts
    gets nothing. In a multi-node job each node's writer writes its own keys
    (``sys.node<k>.*``). ``tracking_uri`` or ``client`` name the store, as MLflow's client
    helpers take them (default: MLflow's current tracking URI). With ``snapshot=True`` the
    full detail is also logged as ``sysmetrics/system.json``.
    """
    if run_id is not None and (not isinstance(run_id, str) or not run_id.strip()):
        raise TypeError(
            f"log_sysmetrics(run_id=...) takes a run id string such as run.info.run_id, got {run_id!r}"
        )
    if client is not None and tracking_uri is not None:
        raise TypeError("log_sysmetrics() takes tracking_uri= or client=, not both")
    from mlflow.tracking import MlflowClient

    if run_id is None:
        import mlflow

        active = mlflow.active_run()
        if active is None:
            raise ValueError(
                "log_sysmetrics() has no run to tag: call it inside `with mlflow.start_run():` "
                "or pass the run's id, log_sysmetrics(run.info.run_id)"
            )
        run_id = active.info.run_id
    client = client or MlflowClient(tracking_uri=tracking_uri)
    return tag_run(run_id, client, snapshot=snapshot, overwrite=overwrite).written


def _tag_open_run(run_id: str, snapshot: bool) -> None:
    """Tag a run the user is in; a failure is a warning, and the user's run goes on."""
    import mlflow

    try:
        tag_run(run_id, mlflow.MlflowClient(), snapshot=snapshot)
    except Exception as exc:
        _LOG.warning("could not tag run %s with system tags: %s", run_id, exc)


def _check_options(options: Mapping[str, Any], door: str) -> None:
    unknown = sorted(set(options) - RUN_OPTIONS)
    if unknown:
        raise TypeError(
            f"{door} got unknown option(s) {', '.join(unknown)}; it takes the keyword arguments "
            f"of mlflow.start_run ({', '.join(sorted(RUN_OPTIONS - {'snapshot'}))}) and snapshot=True"
        )
    tags = options.get("tags")
    if tags is not None and not isinstance(tags, Mapping):
        raise TypeError(f"{door}: tags= takes a dict of tag names to values, got {type(tags).__name__}")


@contextmanager
def sysmetrics_run(**options: Unpack[RunOptions]) -> Iterator[ActiveRun]:
    """Open an MLflow run carrying the system tags, for use in a ``with`` block.

    With no arguments and a run already active: tags that run, yields it and leaves it
    open. Otherwise starts a run with ``mlflow.start_run(**start_run_kwargs)``, the system
    tags sent in the same create request (your ``tags=`` win over ours), yields the
    ``ActiveRun`` and ends it on exit, FAILED if the block raised, as ``mlflow.start_run``
    does. ``run_id=`` attaches to an existing run (multi-node jobs: see
    :func:`mlflow_sysmetrics._shared_run.shared_run_tags`).
    Tagging never stops the block: a failure to write tags to an open run is logged.
    """
    _check_options(options, "sysmetrics_run()")
    start_run_kwargs: dict[str, Any] = dict(options)
    snapshot = bool(start_run_kwargs.pop("snapshot", False))
    import mlflow

    active = mlflow.active_run()
    if not start_run_kwargs and active is not None:
        _tag_open_run(active.info.run_id, snapshot)
        with _counted(active.info.run_id, _this_process_node()):
            yield active
        return

    if start_run_kwargs.get("run_id"):  # an existing run: its facts are checked, not overwritten
        run = mlflow.start_run(**start_run_kwargs)
        with run:
            _tag_open_run(run.info.run_id, snapshot)
            with _counted(run.info.run_id, _this_process_node()):
                yield run
        return
    user_tags = dict(start_run_kwargs.pop("tags", None) or {})
    ours = collect()
    with handing_over(ours):
        run = mlflow.start_run(**start_run_kwargs, tags={**ours, **user_tags})
    with run:
        if snapshot:
            try:
                mlflow.log_dict(_snapshot(), SNAPSHOT_ARTIFACT)
            except Exception as exc:
                _LOG.warning("could not log %s: %s", SNAPSHOT_ARTIFACT, exc)
        with _counted(run.info.run_id, 0):
            yield run


def _this_process_node() -> int | None:
    """The node whose keys this process writes on a run it did not create (``None``: none)."""
    info = _shared_run.placed(distributed.current())
    if not _shared_run.is_shared(info):
        return 0
    return _shared_run.writing_node(info)


@contextmanager
def _counted(run_id: str, node: int | None) -> Iterator[None]:
    """The run's ledger over the block, written to the run as node ``node``.

    Counters are read on entry, and on exit (raised or not) read again and written in one
    request. Never fails the block.
    """
    span = ledger.start() if node is not None else None
    try:
        yield
    finally:
        if span is not None and node is not None:
            close_ledger(span, run_id, node)


def close_ledger(span: ledger.Span, run_id: str, node: int, client: MlflowClient | None = None) -> None:
    """Finish ``span`` and write its ledger to run ``run_id``; a failure is one warning."""
    try:
        write_ledger(client or _default_client(), run_id, span.finish(), node)
    except Exception as exc:
        _LOG.warning("could not write the run's ledger to run %s: %s", run_id, exc)


def write_ledger(client: MlflowClient, run_id: str, counted: ledger.Ledger, node: int) -> None:
    """The ledger's metrics and ``sys.ledger`` (node ``node``'s keys) in one request."""
    import time

    from mlflow.entities import Metric, RunTag

    now = int(time.time() * 1000)
    metrics = [Metric(T.node_key(key, node), value, now, 0) for key, value in counted.metrics.items()]
    client.log_batch(run_id, metrics=metrics, tags=[RunTag(T.node_key(T.LEDGER, node), counted.text)])


def _default_client() -> MlflowClient:
    import mlflow

    return mlflow.MlflowClient()


def _sync_wrapper(options: dict[str, Any]) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        with sysmetrics_run(**options):
            return wrapped(*args, **kwargs)

    return wrapper


def _async_wrapper(options: dict[str, Any]) -> Callable[..., Any]:
    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        with sysmetrics_run(**options):
            return await wrapped(*args, **kwargs)

    return wrapper


def _generator_wrapper(options: dict[str, Any]) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        manager = sysmetrics_run(**options)
        manager.__enter__()
        try:
            result = yield from wrapped(*args, **kwargs)
        except GeneratorExit:
            # The consumer stopped early (break, close()): a normal end, not a failure.
            manager.__exit__(None, None, None)
            raise
        except BaseException:
            if not manager.__exit__(*sys.exc_info()):
                raise
            return None
        manager.__exit__(None, None, None)
        return result

    return wrapper


def _async_generator_wrapper(options: dict[str, Any]) -> Callable[..., Any]:
    async def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any
    ) -> AsyncIterator[Any]:
        manager = sysmetrics_run(**options)
        manager.__enter__()
        try:
            async for item in wrapped(*args, **kwargs):
                yield item
        except GeneratorExit:
            manager.__exit__(None, None, None)
            raise
        except BaseException:
            if not manager.__exit__(*sys.exc_info()):
                raise
            return
        manager.__exit__(None, None, None)

    return wrapper


@overload
def with_sysmetrics(wrapped: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def with_sysmetrics(wrapped: D, /) -> D: ...


@overload
def with_sysmetrics(
    wrapped: None = None, /, **options: Unpack[RunOptions]
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def with_sysmetrics(wrapped: Any = None, /, **options: Any) -> Any:
    """Run each call of the decorated function in :func:`sysmetrics_run`.

    Bare (``@with_sysmetrics``) or with ``sysmetrics_run``'s keyword arguments
    (``@with_sysmetrics(run_name="train")``). What the run spans:

    - a function or method: the call;
    - an ``async def`` function: the awaited body (the run starts when it is awaited);
    - a generator function: the iteration, from the first ``next()`` until it is
      exhausted (FINISHED), closed early (FINISHED) or raises (FAILED);
    - an async generator function: likewise, over ``async for``.

    Put it outside ``@classmethod`` / ``@staticmethod``. Name, docstring, signature,
    ``__wrapped__`` and :func:`inspect.iscoroutinefunction` are kept.
    """
    if wrapped is None:
        _check_options(options, "@with_sysmetrics(...)")
        return functools.partial(with_sysmetrics, **options)
    if not (callable(wrapped) or isinstance(wrapped, (classmethod, staticmethod))):
        raise TypeError(
            "with_sysmetrics decorates a function: write @with_sysmetrics or "
            f"@with_sysmetrics(run_name=...) with keyword arguments only; it was given {wrapped!r}"
        )
    _check_options(options, "@with_sysmetrics(...)")
    target = wrapped.__func__ if isinstance(wrapped, (classmethod, staticmethod)) else wrapped
    target = inspect.unwrap(target)
    if inspect.isasyncgenfunction(target):
        wrapper = _async_generator_wrapper(options)
    elif inspect.iscoroutinefunction(target):
        wrapper = _async_wrapper(options)
    elif inspect.isgeneratorfunction(target):
        wrapper = _generator_wrapper(options)
    else:
        wrapper = _sync_wrapper(options)
    return wrapt.decorator(wrapper)(wrapped)
