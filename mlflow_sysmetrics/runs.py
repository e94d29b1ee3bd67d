"""The explicit doors onto :func:`~mlflow_sysmetrics.collect`.

Tag a run, open a tagged run, decorate a function so each call runs in one.

MLflow is imported inside the functions, so ``import mlflow_sysmetrics`` stays cheap.
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

import wrapt

from . import tags as T
from ._engine import collect
from ._engine import snapshot as _snapshot
from .collectors import distributed

if TYPE_CHECKING:
    from mlflow import ActiveRun

_LOG = logging.getLogger("mlflow_sysmetrics")

P = ParamSpec("P")
R = TypeVar("R")
D = TypeVar("D", classmethod, staticmethod)  # type: ignore[type-arg]

#: Where the snapshot document goes among the run's artifacts.
SNAPSHOT_ARTIFACT = "sysmetrics/system.json"

#: Keyword arguments ``mlflow.start_run`` takes (checked without importing MLflow).
START_RUN_OPTIONS = frozenset(
    {
        "run_id",
        "experiment_id",
        "run_name",
        "nested",
        "parent_run_id",
        "tags",
        "description",
        "log_system_metrics",
    }
)

_handoff = threading.local()


def handed_over_tags() -> Mapping[str, str] | None:
    """Tags :func:`sysmetrics_run` collected for the run this thread is creating right now.

    The provider returns these instead of collecting again, so a run opened by
    :func:`sysmetrics_run` with implicit tagging also on is collected once.
    """
    return getattr(_handoff, "tags", None)


def writing_node(info: distributed.DistInfo) -> int | None:
    """The node whose keys this process writes on a run its job shares, or ``None``.

    One process per node writes: local rank 0 of a node whose index the launcher gave.
    Where the node index cannot be known (Open MPI, MPICH), only global rank 0 writes, as
    node 0: two nodes must never write the same keys.
    """
    if info.node_rank is not None and info.local_rank is not None:
        return info.node_rank if info.local_rank == 0 else None
    return 0 if info.rank == 0 else None


def shared_run_tags(tags: Mapping[str, str], info: distributed.DistInfo) -> dict[str, str] | None:
    """The keys one process of a multi-node job writes on a run all its processes share.

    Node 0 writes the plain keys, node ``k`` the same facts as ``sys.node<k>.<name>`` (see
    :func:`writing_node` for which process writes). Per-process facts (rank, local rank)
    say nothing about a run shared by all ranks and are left out; the job's size is
    written by node 0 only. Returns ``None`` for a process that writes nothing.
    """
    node = writing_node(info)
    if node is None:
        return None
    per_process = {T.DIST_RANK, T.DIST_LOCAL_RANK, T.DIST_NODE_RANK}
    job_wide = {T.DIST_WORLD_SIZE, T.DIST_NODES, T.SLURM_JOB_ID}
    found: dict[str, str] = {}
    for key, value in tags.items():
        if key in per_process or (node and key in job_wide):
            continue
        found[node_key(key, node)] = value
    return found


def node_key(key: str, node: int) -> str:
    """``sys.gpu`` as node ``node`` writes it on a shared run (``sys.node1.gpu``)."""
    if node == 0:
        return key
    prefix, _, name = key.partition(".")
    return f"{prefix}.node{node}.{name}"


def _is_shared(info: distributed.DistInfo) -> bool:
    return info.world_size is not None and info.world_size > 1


def _tags_for_existing_run() -> tuple[dict[str, str], bool, str]:
    """Tags for a run this process did not create, whether it writes them, snapshot path."""
    tags = collect()
    info = distributed.current()
    if not _is_shared(info):
        return tags, True, SNAPSHOT_ARTIFACT
    mine = shared_run_tags(tags, info)
    if mine is not None:
        node = writing_node(info) or 0
        artifact = SNAPSHOT_ARTIFACT if node == 0 else SNAPSHOT_ARTIFACT.replace(".json", f"-node{node}.json")
        return mine, True, artifact
    if info.node_rank is not None and info.local_rank is not None:
        # Not the node's writer: what the writer writes, without writing it.
        return shared_run_tags(tags, info._replace(local_rank=0)) or {}, False, SNAPSHOT_ARTIFACT
    return {}, False, SNAPSHOT_ARTIFACT  # a node nobody can name: nothing of it is written


def log_sysmetrics(run_id: str | None = None, *, snapshot: bool = False) -> dict[str, str]:
    """Tag an existing run with the system tags in one request, and return what was written.

    The door for runs no context provider sees: runs made by ``MlflowClient.create_run``
    (PyTorch Lightning's ``MLFlowLogger``, other integrations). Without ``run_id`` the
    active run is tagged; with neither, :class:`ValueError` and nothing is written. In a
    multi-node job several processes may tag one run: see :func:`shared_run_tags`. With
    ``snapshot=True`` the full detail is also logged as ``sysmetrics/system.json``.
    """
    if run_id is not None and (not isinstance(run_id, str) or not run_id.strip()):
        raise TypeError(
            f"log_sysmetrics(run_id=...) takes a run id string such as run.info.run_id, got {run_id!r}"
        )
    import mlflow
    from mlflow.entities import RunTag
    from mlflow.tracking import MlflowClient

    if run_id is None:
        active = mlflow.active_run()
        if active is None:
            raise ValueError(
                "log_sysmetrics() has no run to tag: call it inside `with mlflow.start_run():` "
                "or pass the run's id, log_sysmetrics(run.info.run_id)"
            )
        run_id = active.info.run_id
    tags, writes, artifact = _tags_for_existing_run()
    client = MlflowClient()
    if writes and tags:
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    if snapshot and writes:
        client.log_dict(run_id, _snapshot(), artifact)
    return tags


def _check_options(options: Mapping[str, Any], door: str) -> None:
    unknown = sorted(set(options) - START_RUN_OPTIONS - {"snapshot"})
    if unknown:
        raise TypeError(
            f"{door} got unknown option(s) {', '.join(unknown)}; it takes the keyword arguments "
            f"of mlflow.start_run ({', '.join(sorted(START_RUN_OPTIONS))}) and snapshot=True"
        )
    tags = options.get("tags")
    if tags is not None and not isinstance(tags, Mapping):
        raise TypeError(f"{door}: tags= takes a dict of tag names to values, got {type(tags).__name__}")


@contextmanager
def sysmetrics_run(*, snapshot: bool = False, **start_run_kwargs: Any) -> Iterator[ActiveRun]:
    """Open an MLflow run carrying the system tags, for use in a ``with`` block.

    With no arguments and a run already active: tags that run, yields it and leaves it
    open. Otherwise starts a run with ``mlflow.start_run(**start_run_kwargs)``, the system
    tags sent in the same create request (your ``tags=`` win over ours), yields the
    ``ActiveRun`` and ends it on exit, FAILED if the block raised, as ``mlflow.start_run``
    does. ``run_id=`` attaches to an existing run (multi-node jobs: :func:`shared_run_tags`).
    Tagging never stops the block: a failure to write tags to an open run is logged.
    """
    _check_options(start_run_kwargs, "sysmetrics_run()")
    import mlflow

    active = mlflow.active_run()
    if not start_run_kwargs and active is not None:
        try:
            log_sysmetrics(active.info.run_id, snapshot=snapshot)
        except Exception as exc:  # the user's run goes on even if tagging fails
            _LOG.warning("could not tag run %s with system tags: %s", active.info.run_id, exc)
        yield active
        return

    user_tags = dict(start_run_kwargs.pop("tags", None) or {})
    if start_run_kwargs.get("run_id"):
        ours, writes, artifact = _tags_for_existing_run()
    else:
        ours, writes, artifact = collect(), True, SNAPSHOT_ARTIFACT
    kwargs = dict(start_run_kwargs)
    if writes or user_tags:
        kwargs["tags"] = {**(ours if writes else {}), **user_tags}
    _handoff.tags = ours
    try:
        run = mlflow.start_run(**kwargs)
    finally:
        _handoff.tags = None
    with run:
        if snapshot and writes:
            try:
                mlflow.log_dict(_snapshot(), artifact)
            except Exception as exc:
                _LOG.warning("could not log %s: %s", artifact, exc)
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
    wrapped: None = None,
    /,
    *,
    run_id: str | None = ...,
    experiment_id: str | None = ...,
    run_name: str | None = ...,
    nested: bool = ...,
    parent_run_id: str | None = ...,
    tags: Mapping[str, Any] | None = ...,
    description: str | None = ...,
    log_system_metrics: bool | None = ...,
    snapshot: bool = ...,
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
