"""Rank and size in a multi-process job, as the launcher wrote them into the environment.

Sources, per fact, in order: torchrun / torchelastic (``RANK``, ``LOCAL_RANK``,
``WORLD_SIZE``, ``GROUP_RANK``, ``GROUP_WORLD_SIZE``), Open MPI (``OMPI_COMM_WORLD_*``),
MPICH/PMI (``PMI_RANK``, ``PMI_SIZE``), then SLURM (``SLURM_PROCID``, ``SLURM_LOCALID``,
``SLURM_NTASKS``, ``SLURM_NODEID``, ``SLURM_NNODES``). torchrun started by ``srun`` thus
reports torch's ranks, which are the ones the training code uses. A value that is not a
whole number (``RANK=abc``) is ignored, with a debug log line.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import NamedTuple

from .. import _env
from .. import tags as T
from .._context import Context

_LOG = logging.getLogger("mlflow_sysmetrics")

RANK_VARS = ("RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID")
LOCAL_RANK_VARS = ("LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID")
WORLD_SIZE_VARS = ("WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS")
NODE_RANK_VARS = ("GROUP_RANK", "SLURM_NODEID")
NODES_VARS = ("GROUP_WORLD_SIZE", "SLURM_NNODES", "SLURM_JOB_NUM_NODES")
LOCAL_SIZE_VARS = ("LOCAL_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS")


class DistInfo(NamedTuple):
    """Where this process stands in a launched job; ``None`` where no launcher said."""

    rank: int | None = None
    local_rank: int | None = None
    world_size: int | None = None
    node_rank: int | None = None
    nodes: int | None = None
    slurm_job_id: str | None = None
    local_world_size: int | None = None

    @property
    def launched(self) -> bool:
        """Whether a launcher set any of the rank variables."""
        return any(v is not None for v in (self.rank, self.local_rank, self.world_size, self.node_rank))


def _first(env: Mapping[str, str], names: tuple[str, ...], minimum: int) -> int | None:
    for name in names:
        raw = env.get(name)
        if raw is None or not raw.strip():
            continue
        try:
            value = int(raw.strip())
        except ValueError:
            _LOG.debug("ignoring %s=%r: not a whole number", name, raw)
            continue
        if value < minimum:
            _LOG.debug("ignoring %s=%r: below %d", name, raw, minimum)
            continue
        return value
    return None


def read(env: Mapping[str, str] | None = None) -> DistInfo:
    """The launcher's view of this process, from ``env`` (default: the environment)."""
    env = os.environ if env is None else env
    world_size = _first(env, WORLD_SIZE_VARS, 1)
    rank = _first(env, RANK_VARS, 0)
    if rank is not None and world_size is not None and rank >= world_size:
        _LOG.debug("ignoring rank %d: not below the world size %d", rank, world_size)
        rank = None
    nodes = _first(env, NODES_VARS, 1)
    node_rank = _first(env, NODE_RANK_VARS, 0)
    if node_rank is not None and nodes is not None and node_rank >= nodes:
        node_rank = None
    local_size = _first(env, LOCAL_SIZE_VARS, 1)
    if node_rank is None and rank is not None and local_size is not None:
        # Open MPI names no node index; with the same number of ranks per node it follows.
        node_rank = rank // local_size
    job = (env.get("SLURM_JOB_ID") or "").strip() or None
    return DistInfo(rank, _first(env, LOCAL_RANK_VARS, 0), world_size, node_rank, nodes, job, local_size)


ALL_VARS = (
    *dict.fromkeys(
        (*RANK_VARS, *LOCAL_RANK_VARS, *WORLD_SIZE_VARS, *NODE_RANK_VARS, *NODES_VARS, *LOCAL_SIZE_VARS)
    ),
    "SLURM_JOB_ID",
)
_read_vars = _env.reader(ALL_VARS)


def current() -> DistInfo:
    """:func:`read` of the current environment, at the cost of one fast look-up per variable."""
    values = _read_vars()
    if not any(values):
        return DistInfo()
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
