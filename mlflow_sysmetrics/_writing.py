"""Writing to a run: the one module that does, and every door calls.

- **Which run, which store** (:func:`run_and_client`): a door's run id (else the active run)
  and the client of its store, misuse answered in the door's name.
- **Which node writes** (:func:`node_tags`, :func:`this_process_tags`): on a run a multi-node
  job shares, one process per node writes its node's keys (the rule is :mod:`._shared_run`'s).
- **Tags** (:func:`write_tags`, :func:`tag_run`): a run that already carries another machine's
  facts keeps them unless told to replace them; :func:`replace_facts` replaces them as a
  whole, for a run an engine made away from its work. One rule (:func:`stale_keys`) says
  which of a run's keys a replacement deletes, and :func:`kept_summary` is the one wording
  of the facts a run kept.
- **The ledger** (:func:`counting`, :func:`close_ledger`, :func:`write_ledger`): counted over
  a block, written in one request as the run's metrics and ``sys.ledger``.

MLflow is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

from . import _shared_run, ledger
from . import tags as T
from ._collection import collect
from ._collection import snapshot as _snapshot
from ._value import Record
from .collectors import distributed

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from mlflow.tracking import MlflowClient

    from .collectors.distributed import DistInfo

_LOG = logging.getLogger("mlflow_sysmetrics")

#: Where the snapshot document goes among the run's artifacts.
SNAPSHOT_ARTIFACT = "sysmetrics/system.json"


class Tagging(Record):
    """What writing this machine's tags to a run did."""

    written: dict[str, str]
    #: Facts the run already carries that differ from this machine's: key -> (run, here).
    kept: dict[str, tuple[str | None, str | None]]
    #: The artifact path of the snapshot logged to the run, if one was.
    snapshot: str | None = None


# -- which run, which store -------------------------------------------------------------------


def run_and_client(
    run_id: str | None, tracking_uri: str | None, client: MlflowClient | None, door: str
) -> tuple[str, MlflowClient]:
    """The run a door tags (``run_id``, else the active run) and the client of its store.

    Misuse says how to call the door: a run id that is no string, both ``tracking_uri=`` and
    ``client=``, or no run at all (:class:`ValueError`, nothing written).
    """
    if run_id is not None and (not isinstance(run_id, str) or not run_id.strip()):
        raise TypeError(f"{door} takes a run id string such as run.info.run_id, got {run_id!r}")
    if client is not None and tracking_uri is not None:
        raise TypeError(f"{door} takes tracking_uri= or client=, not both")
    import mlflow

    if run_id is None:
        active = mlflow.active_run()
        if active is None:
            raise ValueError(
                f"{door} has no run to tag: call it inside `with mlflow.start_run():` "
                "or pass the run's id (run.info.run_id)"
            )
        run_id = active.info.run_id
    return run_id, client or mlflow.MlflowClient(tracking_uri=tracking_uri)


def _default_client() -> MlflowClient:
    import mlflow

    return mlflow.MlflowClient()


# -- which node writes ------------------------------------------------------------------------


def node_tags(tags: Mapping[str, str], info: DistInfo) -> tuple[dict[str, str], int | None]:
    """The keys a process of ``info`` writes on a run it did not create, and the node it writes as.

    A process alone (no job of several processes) writes ``tags`` as node 0. One of a
    multi-node job writes its node's keys if it is its node's writer; else ``None``, with
    the keys that writer writes.
    """
    if not _shared_run.is_shared(info):
        return dict(tags), 0
    mine = _shared_run.shared_run_tags(tags, info)
    if mine is None:
        return _shared_run.node_view(tags, info), None
    return mine, _shared_run.writing_node(info) or 0


def this_process_tags() -> tuple[dict[str, str], int | None]:
    """:func:`node_tags` of this process: its facts, its launcher's variables, its machine."""
    return node_tags(collect(), _shared_run.placed(distributed.current()))


def this_process_node() -> int | None:
    """The node whose keys this process writes on a run it did not create (``None``: none)."""
    info = _shared_run.placed(distributed.current())
    if not _shared_run.is_shared(info):
        return 0
    return _shared_run.writing_node(info)


# -- tags -------------------------------------------------------------------------------------


def stale_keys(carried: Iterable[str], tags: Mapping[str, str]) -> list[str]:
    """The keys of ``carried`` that writing ``tags`` as a run's whole set of facts deletes.

    A fact of the table (any node's copy of it) that ``tags`` lacks: it would describe a
    machine that did not do the run's work. The ledger's tag goes with its metrics, written
    at the run's end: kept, as is any key not of this package or not in the table.
    """
    return sorted(
        key
        for key in carried
        if key not in tags
        and T.is_system_key(key)
        and T.plain_key(key) in T.TABLE
        and T.group_of(key) != "Ledger"
    )


def _write_replacing(
    client: MlflowClient, run_id: str, carried: Iterable[str], tags: Mapping[str, str]
) -> None:
    """Write ``tags`` in one request, then delete the :func:`stale_keys` of what the run carried."""
    from mlflow.entities import RunTag

    stale = stale_keys(carried, tags)
    if tags:
        client.log_batch(run_id, tags=[RunTag(key, value) for key, value in tags.items()])
    for key in stale:
        client.delete_tag(run_id, key)


def write_tags(
    client: MlflowClient, run_id: str, tags: Mapping[str, str], node: int, overwrite: bool
) -> Tagging:
    """Write ``tags`` (node ``node``'s keys) to the run, never leaving it contradicting itself.

    A run that carries none of these keys yet gets them in one request. One that already
    carries the same facts gets nothing; one that carries different facts (tagged from
    another machine) keeps them and gets nothing, unless ``overwrite``: then its facts are
    replaced as a whole (:func:`stale_keys`).
    """
    carried = _shared_run.own_keys(client.get_run(run_id).data.tags, node)
    if carried and not overwrite:
        keys = [k for k in T.order(set(tags) | set(carried)) if T.plain_key(k) not in T.VARYING_KEYS]
        return Tagging({}, {k: (carried.get(k), tags.get(k)) for k in keys if carried.get(k) != tags.get(k)})
    _write_replacing(client, run_id, carried, tags)
    return Tagging(dict(tags), {})


def replace_facts(client: MlflowClient, run_id: str, tags: Mapping[str, str]) -> dict[str, str]:
    """Write ``tags`` as the run's whole set of facts, every node's: one write, then stale keys deleted.

    For a run an engine made away from its work: what the run said of the machine that made
    it (implicit tagging) is deleted where ``tags`` lacks it (:func:`stale_keys`), so the
    run never describes a machine that did not do its work. Returns what was written.
    """
    _write_replacing(client, run_id, client.get_run(run_id).data.tags, tags)
    return dict(tags)


def kept_summary(kept: Mapping[str, tuple[str | None, str | None]]) -> str:
    """The first three facts a run kept, with its value and this machine's (every door's wording)."""
    return "; ".join(
        f"{key} is {run!r} on the run, {here!r} here" for key, (run, here) in list(kept.items())[:3]
    )


def _artifact(node: int) -> str:
    return SNAPSHOT_ARTIFACT if node == 0 else SNAPSHOT_ARTIFACT.replace(".json", f"-node{node}.json")


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
    tags, node = this_process_tags()
    if node is None:
        return Tagging(tags, {})
    overwrite = overwrite or _shared_run.replaces_creators_facts(distributed.current())
    outcome = write_tags(client, run_id, tags, node, overwrite)
    if outcome.kept and warn:
        _LOG.warning(
            "run %s already carries system tags from another machine (%s); kept them and wrote "
            "nothing (overwrite=True replaces them)",
            run_id,
            kept_summary(outcome.kept),
        )
    elif snapshot and not outcome.kept:
        # Asked for, the snapshot is logged even when the tags were already there: it is
        # the detail behind them, and a run tagged without one would otherwise never get it.
        client.log_dict(run_id, _snapshot(), _artifact(node))
        outcome = outcome._replace(snapshot=_artifact(node))
    return outcome


def tag_open_run(run_id: str, snapshot: bool) -> None:
    """:func:`tag_run` for a run the user is in; a failure is a warning, and the user's run goes on."""
    try:
        tag_run(run_id, _default_client(), snapshot=snapshot)
    except Exception as exc:
        _LOG.warning("could not tag run %s with system tags: %s", run_id, exc)


def log_snapshot_to_active_run() -> None:
    """The snapshot, logged to the active run (node 0's, which made it); a failure is a warning."""
    import mlflow

    try:
        mlflow.log_dict(_snapshot(), SNAPSHOT_ARTIFACT)
    except Exception as exc:
        _LOG.warning("could not log %s: %s", SNAPSHOT_ARTIFACT, exc)


# -- the ledger -------------------------------------------------------------------------------


@contextmanager
def counting(run_id: str, node: int | None) -> Iterator[None]:
    """The run's ledger over the block, written to the run as node ``node`` (``None``: not counted).

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
