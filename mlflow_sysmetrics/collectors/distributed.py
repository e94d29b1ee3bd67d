"""The ``distributed`` collector: rank and size in a multi-process job, as its launcher says them.

One launcher speaks for the process, and every fact comes from it, never one from each
(the first row of :data:`LAUNCHERS` whose variables are there wins, in this order):

- Spark's ``TorchDistributor`` (``PYSPARK_TORCH_DISTRIBUTOR_RDZV_ID``, which each barrier
  task sets and its torchrun passes on): torchrun's ``RANK``, ``LOCAL_RANK``,
  ``WORLD_SIZE``, but no node index: each Spark task runs torchrun as a node of its own
  (``GROUP_RANK`` = ``NODE_RANK`` = the partition id, ``GROUP_WORLD_SIZE`` = the tasks),
  so two tasks on one machine would be two "nodes" with the same hardware. Nodes are
  machines there, agreed on by :mod:`.._machines` when a shared run is written.
- Kubeflow, a process its pod started (no ``LOCAL_RANK``: torchrun's workers in a pod are
  the next row's). Trainer v2's torch runtime sets ``PET_NNODES``, ``PET_NPROC_PER_NODE``,
  ``PET_NODE_RANK`` for torchrun, and so does PyTorchJob v1 (1.7 and later) beside
  ``RANK`` = the pod's index and ``WORLD_SIZE`` = pods x processes per pod; older
  PyTorchJobs set only ``RANK`` = the pod's index and ``WORLD_SIZE`` = the pods (with
  ``MASTER_ADDR``), each pod one process, as Lightning's ``KubeflowEnvironment`` reads
  them. A pod is a node; its process is the node's one rank when one process runs per
  pod, and no rank otherwise (torchrun's workers are).
- torchrun / torchelastic: ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``GROUP_RANK`` (the
  node), ``GROUP_WORLD_SIZE`` (the nodes). torchrun started by ``srun`` thus reports
  torch's ranks, the ones the training code uses. Ray Train's workers carry the same
  variables with ``NODE_RANK`` instead of ``GROUP_RANK`` and no node count; ``RANK`` and
  ``WORLD_SIZE`` set by hand for ``torch.distributed``'s ``env://`` are read alike.
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


class Launcher(Record):
    """The variables one launcher writes; ``None`` or ``()`` where it writes none for that fact.

    ``requires``: variables all set in (and only in) the processes it started, besides its
    ``rank`` variable (always required where it has one); ``excludes``:
    variables none of which is set there. ``rank`` ``None``: a launcher of nodes (a
    Kubeflow pod), whose process is the node's one rank when ``per_node`` (the variable
    of processes per node, default one) says one. ``node_rank`` and ``nodes``: the first
    variable set wins. ``by_machine``: its node index names a task, not a machine, so
    none is claimed and the machines are agreed on when a shared run is written.
    """

    name: str
    rank: str | None
    local_rank: str | None
    world_size: str | None
    node_rank: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    per_node: str | None = None
    by_machine: bool = False

    def variables(self) -> tuple[str, ...]:
        """Every variable this launcher's facts are read from, or its presence is told by."""
        named = (self.rank, self.local_rank, self.world_size, self.per_node)
        return (
            *(name for name in named if name is not None),
            *self.node_rank,
            *self.nodes,
            *self.requires,
            *self.excludes,
        )


#: The name :class:`DistInfo` gives Spark's TorchDistributor (nodes agreed on by machine).
TORCH_DISTRIBUTOR = "torch_distributor"

LAUNCHERS = (
    # pyspark/ml/torch/distributor.py (Spark 3.4 to 4.3): each barrier task exports
    # PYSPARK_TORCH_DISTRIBUTOR_RDZV_ID, RANK = NODE_RANK = its partition id, and runs
    # torchrun --node_rank=<partition id>.
    Launcher(
        TORCH_DISTRIBUTOR,
        "RANK",
        "LOCAL_RANK",
        "WORLD_SIZE",
        requires=("PYSPARK_TORCH_DISTRIBUTOR_RDZV_ID",),
        by_machine=True,
    ),
    # Kubeflow Trainer v2 (pkg/runtime/framework/plugins/torch/torch.go) and PyTorchJob
    # v1.7+ (pkg/controller.v1/pytorch/envvar.go): PET_* for torchrun, in every process of
    # the pod.
    Launcher(
        "kubeflow",
        None,
        None,
        None,
        ("PET_NODE_RANK",),
        ("PET_NNODES",),
        requires=("PET_NODE_RANK",),
        excludes=("LOCAL_RANK",),
        per_node="PET_NPROC_PER_NODE",
    ),
    # PyTorchJob v1 before PET_*: RANK = the pod's index, WORLD_SIZE = the pods. Not a pod
    # whose ranks an MPI or SLURM launcher gave (an MPIJob exporting RANK for env://): theirs.
    Launcher(
        "kubeflow",
        None,
        None,
        None,
        ("RANK",),
        ("WORLD_SIZE",),
        requires=("RANK", "MASTER_ADDR", "KUBERNETES_SERVICE_HOST"),
        excludes=("LOCAL_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_STEP_NUM_TASKS"),
    ),
    # torchrun's workers; also RANK and WORLD_SIZE set by hand for torch.distributed's env://.
    # Ray Train (ray/train/torch/config.py) sets NODE_RANK and LOCAL_WORLD_SIZE, no GROUP_*.
    Launcher(
        "torchrun", "RANK", "LOCAL_RANK", "WORLD_SIZE", ("GROUP_RANK", "NODE_RANK"), ("GROUP_WORLD_SIZE",)
    ),
    Launcher("openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_SIZE"),
    Launcher("pmi", "PMI_RANK", "MPI_LOCALRANKID", "PMI_SIZE"),
    Launcher(
        "slurm",
        "SLURM_PROCID",
        "SLURM_LOCALID",
        "SLURM_STEP_NUM_TASKS",
        ("SLURM_NODEID",),
        ("SLURM_STEP_NUM_NODES",),
        requires=("SLURM_STEP_NUM_TASKS",),
    ),
)


class DistInfo(Record):
    """Where this process stands in a launched job; ``None`` where its launcher did not say.

    ``launcher``: the name of the :class:`Launcher` that said it.
    """

    rank: int | None = None
    local_rank: int | None = None
    world_size: int | None = None
    node_rank: int | None = None
    nodes: int | None = None
    slurm_job_id: str | None = None
    launcher: str | None = None


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


def _first(env: Mapping[str, str], names: tuple[str, ...], minimum: int) -> int | None:
    """The value of the first of ``names`` that is set (a bad value is not passed over)."""
    for name in names:
        if (env.get(name) or "").strip():
            return _number(env, name, minimum)
    return None


def launcher(env: Mapping[str, str]) -> Launcher | None:
    """The launcher that started this process, by the variables it left; ``None`` if none."""
    for candidate in LAUNCHERS:
        rank = candidate.rank
        if (
            (rank is None or (env.get(rank) or "").strip())
            and all((env.get(name) or "").strip() for name in candidate.requires)
            and not any((env.get(name) or "").strip() for name in candidate.excludes)
        ):
            return candidate
    return None


def read(env: Mapping[str, str] | None = None) -> DistInfo:
    """The launcher's view of this process, from ``env`` (default: the environment)."""
    env = os.environ if env is None else env
    job = (env.get("SLURM_JOB_ID") or "").strip() or None
    source = launcher(env)
    if source is None:
        return DistInfo(slurm_job_id=job)
    nodes = _first(env, source.nodes, 1)
    node_rank = _first(env, source.node_rank, 0)
    if node_rank is not None and nodes is not None and node_rank >= nodes:
        _log.logger().debug("ignoring node index %d: not below the node count %d", node_rank, nodes)
        node_rank = None
    if source.rank is None:
        return _node_of_pods(env, source, node_rank, nodes, job)
    world_size = _number(env, source.world_size, 1)
    rank = _number(env, source.rank, 0)
    if rank is not None and world_size is not None and rank >= world_size:
        _log.logger().debug("ignoring rank %d: not below the world size %d", rank, world_size)
        rank = None
    if rank is None:  # a job whose rank cannot be read is not one this process can place itself in
        return DistInfo(slurm_job_id=job)
    local_rank = _number(env, source.local_rank, 0)
    return DistInfo(rank, local_rank, world_size, node_rank, nodes, job, source.name)


def _node_of_pods(
    env: Mapping[str, str], source: Launcher, node_rank: int | None, nodes: int | None, job: str | None
) -> DistInfo:
    """A process a pod started: the node's one rank when one process runs per pod, else no rank.

    Processes per pod: ``PET_NPROC_PER_NODE`` where set (a number, or ``auto``, ``cpu``,
    ``gpu``: then torchrun decides, and its workers are the ranks), else one.
    """
    if node_rank is None:
        return DistInfo(slurm_job_id=job)
    declared = env.get(source.per_node) if source.per_node is not None else None
    per_node = _number(env, source.per_node, 1) if declared is not None and declared.strip() else 1
    if per_node != 1 or nodes is None:  # the node's workers are ranks; this process is not one
        return DistInfo(node_rank=node_rank, nodes=nodes, slurm_job_id=job, launcher=source.name)
    return DistInfo(node_rank, 0, nodes, node_rank, nodes, job, source.name)


#: Variables that alone say nothing of a launch (they only tell one launcher from another).
_CONTEXT_ONLY = ("MASTER_ADDR", "KUBERNETES_SERVICE_HOST")
ALL_VARS = (
    *(
        name
        for name in dict.fromkeys(name for source in LAUNCHERS for name in source.variables())
        if name not in _CONTEXT_ONLY
    ),
    "SLURM_JOB_ID",
    *_CONTEXT_ONLY,
)
_read_vars = _env.reader(ALL_VARS)
_TELLING = len(ALL_VARS) - len(_CONTEXT_ONLY)


#: What a process no launcher started is told (one record, never changed: built once).
_NOT_LAUNCHED = DistInfo()


def current() -> DistInfo:
    """:func:`read` of the current environment, at the cost of one fast look-up per variable."""
    values = _read_vars()
    if not any(values[:_TELLING]):  # a pod's own variables alone are no launch
        return _NOT_LAUNCHED
    return read({name: value for name, value in zip(ALL_VARS, values, strict=True) if value is not None})


def tags_of(info: DistInfo) -> dict[str, str]:
    """``sys.dist.*`` and ``sys.slurm.job_id`` as ``info`` says them."""
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


def collect(ctx: Context) -> dict[str, str]:
    """``sys.dist.*`` and ``sys.slurm.job_id`` when a launcher set them."""
    return tags_of(current())
