"""The explicit doors onto :func:`~mlflow_sysmetrics.collect`.

Tag a run, open a tagged run, decorate a function so each call runs in one. What they write
to a run, they write through :mod:`._writing`.

MLflow is imported inside the functions, so ``import mlflow_sysmetrics`` stays cheap.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ParamSpec, TypedDict, TypeVar, overload

import wrapt

from . import _writing
from ._collection import collect, handing_over

if TYPE_CHECKING:
    from mlflow import ActiveRun
    from mlflow.tracking import MlflowClient
    from typing_extensions import Unpack

P = ParamSpec("P")
R = TypeVar("R")
D = TypeVar("D", classmethod, staticmethod)  # type: ignore[type-arg]


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
    run_id, client = _writing.run_and_client(run_id, tracking_uri, client, "log_sysmetrics()")
    return _writing.tag_run(run_id, client, snapshot=snapshot, overwrite=overwrite).written


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
        _writing.tag_open_run(active.info.run_id, snapshot)
        with _writing.counting(active.info.run_id, _writing.this_process_node()):
            yield active
        return

    if start_run_kwargs.get("run_id"):  # an existing run: its facts are checked, not overwritten
        run = mlflow.start_run(**start_run_kwargs)
        with run:
            _writing.tag_open_run(run.info.run_id, snapshot)
            with _writing.counting(run.info.run_id, _writing.this_process_node()):
                yield run
        return
    user_tags = dict(start_run_kwargs.pop("tags", None) or {})
    ours = collect()
    with handing_over(ours):
        run = mlflow.start_run(**start_run_kwargs, tags={**ours, **user_tags})
    with run:
        if snapshot:
            _writing.log_snapshot_to_active_run()
        with _writing.counting(run.info.run_id, 0):
            yield run


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
