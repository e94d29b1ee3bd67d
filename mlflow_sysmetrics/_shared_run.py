"""Who writes which keys on a run that all the processes of a multi-node job share.

A job launched by torchrun, SLURM or MPI often logs into one run: rank 0 creates it and the
others attach by id. One process per node writes (:func:`writing_node`): node 0 the plain
keys, node ``k`` the same facts as ``sys.node<k>.<name>``; what a key's ``scope`` in the
table (:class:`.tags.Key`) says decides the rest: a rank is not written on a shared run,
and the job's size is written once, by node 0.

Where a launcher's nodes are not machines (Spark's TorchDistributor runs one torchrun
"node" per Spark task), a node is the machine the tasks agree on (:func:`placed`), so
that two tasks on one machine write its facts once.
"""

from __future__ import annotations

from . import tags as T
from .collectors.distributed import TORCH_DISTRIBUTOR, DistInfo

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Mapping


def is_shared(info: DistInfo) -> bool:
    """Whether the process belongs to a job of several processes (which may share one run)."""
    return info.world_size is not None and info.world_size > 1


def _by_machine(info: DistInfo) -> bool:
    """Whether ``info``'s nodes are tasks whose machines are agreed on (TorchDistributor's)."""
    return info.launcher == TORCH_DISTRIBUTOR and is_shared(info)


def placed(info: DistInfo) -> DistInfo:
    """``info`` with the node index and count a shared run counts: machines.

    The launcher's own for all but TorchDistributor, whose tasks agree on their machines
    (:func:`mlflow_sysmetrics._machines.placed_by_machine`).
    """
    if _by_machine(info):
        from . import _machines

        return _machines.placed_by_machine(info)
    return info


def replaces_creators_facts(info: DistInfo) -> bool:
    """Whether this process's node keys replace what the shared run already says of that node.

    Under TorchDistributor the run is made by the Spark driver (or by a rank with facts of
    its own process), which does none of the machine's work: the machine's one writer
    (:func:`placed`) says what the machine is.
    """
    return _by_machine(info)


def writing_node(info: DistInfo) -> int | None:
    """The node whose keys this process writes on a run its job shares, or ``None``.

    One process per node writes: local rank 0 of a node whose index the launcher gave.
    Where the node index cannot be known (Open MPI, MPICH), only global rank 0 writes, as
    node 0: two nodes must never write the same keys.
    """
    if info.node_rank is not None and info.local_rank is not None:
        return info.node_rank if info.local_rank == 0 else None
    return 0 if info.rank == 0 else None


def _as_placed(tags: Mapping[str, str], info: DistInfo) -> Mapping[str, str]:
    """``tags`` whose launcher facts (``sys.dist.*``) are ``info``'s, where they differ.

    A node placed by machine (:func:`placed`), or told by an engine's own context rather
    than by variables, counts nodes otherwise than the variables did.
    """
    from . import settings
    from .collectors.distributed import tags_of

    told = tags_of(info)
    launcher_keys = T.keys_of("distributed")
    if all(tags.get(key) == told.get(key) for key in launcher_keys):
        return tags
    chosen = settings.current()
    kept = {key: value for key, value in tags.items() if key not in launcher_keys}
    kept.update((k, v) for k, v in told.items() if T.selected(k, chosen.include, chosen.exclude))
    return kept


def shared_run_tags(tags: Mapping[str, str], info: DistInfo) -> dict[str, str] | None:
    """The keys this process writes on a run all the job's processes share; ``None``: none.

    The launcher facts written are ``info``'s (the node as placed), not the variables'.
    """
    node = writing_node(info)
    if node is None:
        return None
    written = {}
    for key, value in _as_placed(tags, info).items():
        row = T.TABLE.get(key)
        scope = row.scope if row is not None else "node"
        if scope == "process" or (node and scope == "job"):
            continue
        written[T.node_key(key, node)] = value
    return written


def node_view(tags: Mapping[str, str], info: DistInfo) -> dict[str, str]:
    """What this process's node writes on a shared run (for a process that writes nothing itself)."""
    if info.node_rank is not None and info.local_rank is not None:
        return shared_run_tags(tags, info._replace(local_rank=0)) or {}
    return {}  # a node nobody can name: nothing of it is written


def own_keys(tags: Mapping[str, str], node: int) -> dict[str, str]:
    """The system keys of a run's ``tags`` that node ``node`` writes (the plain keys for node 0)."""
    own = {}
    for key, value in tags.items():
        if not T.is_system_key(key):
            continue
        split = T.split_node_key(key)
        if (split is None and node == 0) or (split is not None and split[0] == node):
            own[key] = value
    return own
