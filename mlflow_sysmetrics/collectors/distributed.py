"""Rank and size in a multi-process job, and who writes what on a run the job shares.

One launcher speaks for the process, and every fact comes from it, never one from each
(the first that set its rank variable wins, in this order):

- torchrun / torchelastic: ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``GROUP_RANK`` (the
  node), ``GROUP_WORLD_SIZE`` (the nodes). torchrun started by ``srun`` thus reports
  torch's ranks, the ones the training code uses.
- Open MPI: ``OMPI_COMM_WORLD_RANK``, ``_LOCAL_RANK``, ``_SIZE``. It names no node index,
  and ``rank // local size`` holds only for by-slot mapping (``--map-by node`` places rank 1
  on the second node), so none is claimed.
- MPICH / Intel MPI (PMI): ``PMI_RANK``, ``PMI_SIZE``, ``MPI_LOCALRANKID``; no node index.
- SLURM, inside a step started by ``srun`` (``SLURM_STEP_NUM_TASKS`` is set): ``SLURM_PROCID``,
  ``SLURM_LOCALID``, ``SLURM_STEP_NUM_TASKS``, ``SLURM_NODEID``, ``SLURM_STEP_NUM_NODES``.
  A batch script's own environment (``sbatch --ntasks=8``) carries ``SLURM_NTASKS=8`` and
  ``SLURM_PROCID=0`` for a process that is no task of eight: it is not a launched rank.
  Remote ranks of ``mpirun`` inherit ``SLURM_*`` from the step that started their daemon:
  Open MPI's own variables win there.

``SLURM_JOB_ID`` is tagged whenever it is set. A value that is not a whole number
(``RANK=abc``) is ignored, with a debug log line.

A job often logs into one run that all its processes share: :mod:`.._shared_run` says which
process writes which keys there.
"""

from __future__ import annotations

import os

from .. import _env, _log
from .. import tags as T
from .._context import Context
from .._value import Record

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Mapping


class Launcher:
    """The variables one launcher writes; ``None`` where it writes none for that fact.

    ``marker`` is set only in the processes the launcher started (a SLURM step).
    """

    __slots__ = ("local_rank", "marker", "name", "node_rank", "nodes", "rank", "world_size")

    def __init__(
        self,
        name: str,
        rank: str,
        local_rank: str | None,
        world_size: str,
        node_rank: str | None = None,
        nodes: str | None = None,
        marker: str | None = None,
    ) -> None:
        self.name = name
        self.rank = rank
        self.local_rank = local_rank
        self.world_size = world_size
        self.node_rank = node_rank
        self.nodes = nodes
        self.marker = marker


LAUNCHERS = (
    Launcher("torchrun", "RANK", "LOCAL_RANK", "WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE"),
    Launcher("openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_SIZE"),
    Launcher("pmi", "PMI_RANK", "MPI_LOCALRANKID", "PMI_SIZE"),
    Launcher(
        "slurm",
        "SLURM_PROCID",
        "SLURM_LOCALID",
        "SLURM_STEP_NUM_TASKS",
        "SLURM_NODEID",
        "SLURM_STEP_NUM_NODES",
        marker="SLURM_STEP_NUM_TASKS",
    ),
)


class DistInfo(Record):
    """Where this process stands in a launched job; ``None`` where its launcher did not say."""

    rank: int | None = None
    local_rank: int | None = None
    world_size: int | None = None
    node_rank: int | None = None
    nodes: int | None = None
    slurm_job_id: str | None = None


def _number(env: Mapping[str, str], name: str | None, minimum: int) -> int | None:
    if name is None:
        return None
    raw = env.get(name)
    if raw is None or not raw.strip():
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        _log.logger().debug("ignoring %s=%r: not a whole number", name, raw)
        return None
    if value < minimum:
        _log.logger().debug("ignoring %s=%r: below %d", name, raw, minimum)
        return None
    return value


def launcher(env: Mapping[str, str]) -> Launcher | None:
    """The launcher that started this process, by the variables it left; ``None`` if none."""
    for candidate in LAUNCHERS:
        if candidate.marker is not None and not env.get(candidate.marker):
            continue
        if env.get(candidate.rank, "").strip():
            return candidate
    return None


def read(env: Mapping[str, str] | None = None) -> DistInfo:
    """The launcher's view of this process, from ``env`` (default: the environment)."""
    env = os.environ if env is None else env
    job = (env.get("SLURM_JOB_ID") or "").strip() or None
    source = launcher(env)
    if source is None:
        return DistInfo(slurm_job_id=job)
    world_size = _number(env, source.world_size, 1)
    rank = _number(env, source.rank, 0)
    if rank is not None and world_size is not None and rank >= world_size:
        _log.logger().debug("ignoring rank %d: not below the world size %d", rank, world_size)
        rank = None
    if rank is None:  # a job whose rank cannot be read is not one this process can place itself in
        return DistInfo(slurm_job_id=job)
    nodes = _number(env, source.nodes, 1)
    node_rank = _number(env, source.node_rank, 0)
    if node_rank is not None and nodes is not None and node_rank >= nodes:
        node_rank = None
    local_rank = _number(env, source.local_rank, 0)
    return DistInfo(rank, local_rank, world_size, node_rank, nodes, job)


ALL_VARS = (
    *dict.fromkeys(
        name
        for source in LAUNCHERS
        for name in (source.rank, source.local_rank, source.world_size, source.node_rank, source.nodes)
        if name is not None
    ),
    "SLURM_JOB_ID",
)
_read_vars = _env.reader(ALL_VARS)


#: What a process no launcher started is told (one record, never changed: built once).
_NOT_LAUNCHED = DistInfo()


def current() -> DistInfo:
    """:func:`read` of the current environment, at the cost of one fast look-up per variable."""
    values = _read_vars()
    if not any(values):
        return _NOT_LAUNCHED
    return read({name: value for name, value in zip(ALL_VARS, values, strict=True) if value is not None})


def collect(ctx: Context) -> dict[str, str]:
    """``sys.dist.*`` and ``sys.slurm.job_id`` when a launcher set them."""
    info = current()
    found: dict[str, str] = {}
    for key, value in (
        (T.DIST_RANK, info.rank),
        (T.DIST_LOCAL_RANK, info.local_rank),
        (T.DIST_WORLD_SIZE, info.world_size),
        (T.DIST_NODE_RANK, info.node_rank),
        (T.DIST_NODES, info.nodes),
    ):
        if value is not None:
            found[key] = str(value)
    if info.slurm_job_id:
        found[T.SLURM_JOB_ID] = info.slurm_job_id
    return found
