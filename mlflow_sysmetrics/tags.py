"""Tag keys, each declared once with everything the package says about it.

Keys are a contract: other tools and users search on them, so they never change. Values are
strings; numbers are plain decimals; ``*_gb`` is 10^9 bytes rounded to two decimals.

Every key is one row of :data:`TABLE` (built by :func:`_row` below, in the order the docs show):
its display group, the collector that writes it, and the columns every other list of keys
used to repeat. Those lists are derived here, never written again elsewhere; a test checks
that every key a collector returns is in the table, and that the table and the tag and metric
tables of ``docs/tags.md`` and ``docs/ledger.md`` name the same keys.
"""

from __future__ import annotations

from ._value import MAX_FACT_LENGTH, MAX_NAME_LENGTH, Record, implausible

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

# re and fnmatch are imported by the functions that need them: a collection whose values
# are all printable and whose settings name no patterns never does.


class Key(Record):
    """One key and what is true of it.

    - ``group``: the heading it is shown under (``show``, ``log``).
    - ``source``: the collector that writes it (``None``: not written by :func:`collect`).
    - ``varies``: ``None`` for a fact of the machine; ``"process"`` when another process or
      call on the same machine may write another value (the frameworks imported, the
      working directory's disk, errors); ``"moment"`` when it changes from one moment to
      the next (free disk space); ``"run"`` when it says something of the run, not of its
      machine (``sys.ledger``: what the run's ledger could not count). None of these is
      compared when a run's facts are checked against this machine's; ``diff`` leaves
      ``"moment"`` out unless asked, and never lists ``"run"``: two runs of one machine
      have the same hardware whatever their ledgers say.
    - ``scope`` on a run a multi-node job shares: ``"node"`` (each node writes its own,
      ``sys.node<k>.*``), ``"process"`` (a rank: says nothing of a shared run, not written
      there), ``"job"`` (the same for the whole job: written once, by node 0).
    - ``performance``: likely to explain why one run is slower than another on similar
      hardware (``diff`` lists it first).
    - ``opt_in``: written only when ``MLFLOW_SYSMETRICS_INCLUDE`` asks for it.
    - ``names_one_thing``: its value names one thing (a CPU model, an OS): at most
      :data:`._value.MAX_NAME_LENGTH` characters, else :data:`._value.MAX_FACT_LENGTH`.
    - ``node_column`` / ``summary_column``: its column's title in the per-node table of a
      multi-node run and in ``summary`` (``None``: not a column).
    - ``metric``: an MLflow metric (a number), not a tag; ``combine``: how the values of a
      multi-node run's nodes make the run's (``sum``, ``max``, ``mean``; ``gpu_mean``: their
      mean weighted by each node's ``sys.gpu_hours``, see :func:`._format.ledger_of`).
    """

    name: str
    group: str
    source: str | None = None
    varies: str | None = None
    scope: str = "node"
    performance: bool = False
    opt_in: bool = False
    names_one_thing: bool = False
    node_column: str | None = None
    summary_column: str | None = None
    metric: bool = False
    combine: str | None = None


#: Every key, by name, in the order the docs show.
TABLE: dict[str, Key] = {}


def _row(name: str, group: str, **facts: Any) -> str:
    TABLE[name] = Key(name, group, **facts)
    return name


CPU = _row("sys.cpu", "CPU", source="cpu", names_one_thing=True, node_column="cpu", summary_column="cpu")
CPU_CORES = _row("sys.cpu_cores", "CPU", source="cpu")
CPU_PHYSICAL_CORES = _row("sys.cpu_physical_cores", "CPU", source="cpu")
CPU_AVAILABLE = _row(
    "sys.cpu_available", "CPU", source="cpu", node_column="cores available", summary_column="cores"
)
MEMORY_GB = _row(
    "sys.memory_gb", "Memory", source="memory", node_column="memory GB", summary_column="memory GB"
)
MEMORY_LIMIT_GB = _row("sys.memory_limit_gb", "Memory", source="memory")
DISK_FREE_GB = _row("sys.disk_free_gb", "Disk", source="disk", varies="moment")
DISK_TOTAL_GB = _row("sys.disk_total_gb", "Disk", source="disk", varies="process")
PLATFORM = _row("sys.platform", "OS", source="system")
OS = _row("sys.os", "OS", source="system", names_one_thing=True)
PYTHON = _row("sys.python", "OS", source="software")
MLFLOW = _row("sys.mlflow", "OS", source="software")
FRAMEWORKS = _row(
    "sys.frameworks",
    "Frameworks",
    source="frameworks",
    varies="process",
    performance=True,
    summary_column="frameworks",
)
CUDA_RUNTIME = _row("sys.cuda_runtime", "Frameworks", source="frameworks", varies="process", performance=True)
CUDNN = _row("sys.cudnn", "Frameworks", source="frameworks", varies="process", performance=True)
NCCL = _row("sys.nccl", "Frameworks", source="frameworks", varies="process", performance=True)
GPU = _row("sys.gpu", "GPU", source="gpu", node_column="gpu", summary_column="gpu")
GPU_COUNT = _row("sys.gpu_count", "GPU", source="gpu", node_column="gpus", summary_column="gpus")
GPU_MEMORY_GB = _row("sys.gpu_memory_gb", "GPU", source="gpu")
GPU_DRIVER = _row("sys.gpu_driver", "GPU", source="gpu", node_column="driver")
CUDA_DRIVER = _row("sys.cuda_driver", "GPU", source="gpu")
GPU_COMPUTE_CAPABILITY = _row("sys.gpu_compute_capability", "GPU", source="gpu")
GPU_MIG = _row("sys.gpu_mig", "GPU", source="gpu")
GPU_POWER_LIMIT_W = _row(
    "sys.gpu_power_limit_w", "GPU", source="gpu", performance=True, summary_column="power W"
)
GPU_LINK = _row(
    "sys.gpu_link", "GPU", source="gpu", performance=True, node_column="link", summary_column="gpu link"
)
GPU_ECC = _row("sys.gpu_ecc", "GPU", source="gpu", performance=True)
NETWORK = _row(
    "sys.network",
    "Network",
    source="network",
    performance=True,
    node_column="network",
    summary_column="network",
)
CONTAINER = _row("sys.container", "Container", source="container", names_one_thing=True)
CLOUD = _row("sys.cloud", "Container", source="cloud", names_one_thing=True)
INSTANCE_TYPE = _row("sys.instance_type", "Container", source="cloud", names_one_thing=True)
HOST = _row("sys.host", "Host", source="host", opt_in=True, names_one_thing=True)
DIST_RANK = _row("sys.dist.rank", "Distributed", source="distributed", scope="process")
DIST_LOCAL_RANK = _row("sys.dist.local_rank", "Distributed", source="distributed", scope="process")
DIST_WORLD_SIZE = _row("sys.dist.world_size", "Distributed", source="distributed", scope="job")
DIST_NODE_RANK = _row("sys.dist.node_rank", "Distributed", source="distributed", scope="process")
DIST_NODES = _row("sys.dist.nodes", "Distributed", source="distributed", scope="job")
SLURM_JOB_ID = _row(
    "sys.slurm.job_id", "Distributed", source="distributed", scope="job", names_one_thing=True
)
#: Written (not collected) on a run an engine made away from its work: where the facts were read.
COLLECTED_ON = _row("sysmetrics.collected_on", "Distributed", varies="process", scope="job")
LEDGER = _row("sys.ledger", "Ledger", varies="run")
# The run's ledger (metrics, written when a run ends; see ledger/): summed over a run's nodes
# where they add up, else their most.
GPU_ENERGY_WH = _row("sys.gpu_energy_wh", "Ledger", metric=True, combine="sum")
GPU_POWER_AVG_W = _row("sys.gpu_power_avg_w", "Ledger", metric=True, combine="mean")
CPU_ENERGY_WH = _row("sys.cpu_energy_wh", "Ledger", metric=True, combine="sum")
GPU_THROTTLE_POWER_PCT = _row("sys.gpu_throttle_power_pct", "Ledger", metric=True, combine="max")
GPU_THROTTLE_THERMAL_PCT = _row("sys.gpu_throttle_thermal_pct", "Ledger", metric=True, combine="max")
GPU_THROTTLE_HW_PCT = _row("sys.gpu_throttle_hw_pct", "Ledger", metric=True, combine="max")
GPU_MEMORY_PEAK_GB = _row("sys.gpu_memory_peak_gb", "Ledger", metric=True, combine="max")
MEMORY_PEAK_GB = _row("sys.memory_peak_gb", "Ledger", metric=True, combine="max")
GPU_ECC_ERRORS = _row("sys.gpu_ecc_errors", "Ledger", metric=True, combine="sum")
GPU_PCIE_REPLAYS = _row("sys.gpu_pcie_replays", "Ledger", metric=True, combine="sum")
GPU_HOURS = _row("sys.gpu_hours", "Ledger", metric=True, combine="sum")
CO2_G = _row("sys.co2_g", "Ledger", metric=True, combine="sum")
# What held the run back (metrics read the same way; ``why`` reads them): shares of the run's
# time are their nodes' most, bytes their sum, the mean use of the GPUs their mean weighted by
# each node's GPU hours. The mean use of the cores is their plain mean: each node's usable cores
# are a tag (``sys.cpu_available``), and a run's ledger is combined from its metrics alone.
CPU_UTIL_PCT = _row("sys.cpu_util_pct", "Limits", metric=True, combine="mean")
CPU_THROTTLED_PCT = _row("sys.cpu_throttled_pct", "Limits", metric=True, combine="max")
CPU_THROTTLED_S = _row("sys.cpu_throttled_s", "Limits", metric=True, combine="max")
STALL_CPU_PCT = _row("sys.stall_cpu_pct", "Limits", metric=True, combine="max")
STALL_IO_PCT = _row("sys.stall_io_pct", "Limits", metric=True, combine="max")
STALL_MEMORY_PCT = _row("sys.stall_memory_pct", "Limits", metric=True, combine="max")
IO_READ_GB = _row("sys.io_read_gb", "Limits", metric=True, combine="sum")
IO_WRITE_GB = _row("sys.io_write_gb", "Limits", metric=True, combine="sum")
NET_RX_GB = _row("sys.net_rx_gb", "Limits", metric=True, combine="sum")
NET_TX_GB = _row("sys.net_tx_gb", "Limits", metric=True, combine="sum")
RDMA_RX_GB = _row("sys.rdma_rx_gb", "Limits", metric=True, combine="sum")
RDMA_TX_GB = _row("sys.rdma_tx_gb", "Limits", metric=True, combine="sum")
NVLINK_RX_GB = _row("sys.nvlink_rx_gb", "Limits", metric=True, combine="sum")
NVLINK_TX_GB = _row("sys.nvlink_tx_gb", "Limits", metric=True, combine="sum")
GPU_BUSY_PCT = _row("sys.gpu_busy_pct", "Limits", metric=True, combine="gpu_mean")
GPU_LOW_UTIL_PCT = _row("sys.gpu_low_util_pct", "Limits", metric=True, combine="gpu_mean")
ERROR = _row("sysmetrics.error", "Errors", varies="process")

#: Every tag key the package writes, in display order.
ALL_KEYS: tuple[str, ...] = tuple(name for name, key in TABLE.items() if not key.metric)
#: The run's ledger's metrics, in display order.
METRIC_KEYS: tuple[str, ...] = tuple(name for name, key in TABLE.items() if key.metric)
#: The facts likeliest to explain why one run is slower than another on similar hardware.
PERFORMANCE_KEYS: tuple[str, ...] = tuple(name for name, key in TABLE.items() if key.performance)
#: Keys written only when ``MLFLOW_SYSMETRICS_INCLUDE`` asks for them.
OPT_IN_KEYS: frozenset[str] = frozenset(name for name, key in TABLE.items() if key.opt_in)
#: Keys whose value names one thing (a CPU model, an OS, a container kind ...).
NAME_KEYS: frozenset[str] = frozenset(name for name, key in TABLE.items() if key.names_one_thing)
#: Keys another process or moment on the same machine may write otherwise (see :class:`Key`).
VARYING_KEYS: frozenset[str] = frozenset(name for name, key in TABLE.items() if key.varies)
#: Keys that change from one moment to the next (``diff`` leaves them out unless asked).
MOMENTARY_KEYS: frozenset[str] = frozenset(name for name, key in TABLE.items() if key.varies == "moment")
#: Keys that say something of a run, not of its machine (``diff`` never lists them).
RUN_KEYS: frozenset[str] = frozenset(name for name, key in TABLE.items() if key.varies == "run")
#: The columns of the per-node table of a multi-node run: (title, key without ``sys.``).
NODE_COLUMNS: tuple[tuple[str, str], ...] = tuple(
    (key.node_column, name.removeprefix("sys.")) for name, key in TABLE.items() if key.node_column
)
#: What ``summary`` groups runs by: (key, column title).
SUMMARY_COLUMNS: tuple[tuple[str, str], ...] = tuple(
    (name, key.summary_column) for name, key in TABLE.items() if key.summary_column
)


def keys_of(source: str) -> tuple[str, ...]:
    """The keys the collector ``source`` writes, in order."""
    return tuple(name for name, key in TABLE.items() if key.source == source)


#: ``sys.ledger`` of a run whose ledger counted everything and has nothing to note.
LEDGER_EVERYTHING_COUNTED = "everything counted"
#: The clause of ``sys.ledger`` that says the stall figures are the whole host's (no cgroup PSI).
LEDGER_HOST_STALLS = "stalls: the whole host's (/proc/pressure), not the run's cgroup's"
#: The clause of ``sys.ledger`` that says the stall figures are the run's cgroup's, which holds
#: other processes than the run's (a login session's scope on a bare host, a container's init).
LEDGER_CGROUP_STALLS = "stalls: the cgroup's, other processes in it included"
#: The clause of ``sys.ledger`` that says ``sys.memory_peak_gb`` is the cgroup's ``memory.peak``,
#: which holds the group's page cache (which the kernel reclaims as the group nears its limit).
LEDGER_CGROUP_MEMORY_PEAK = "memory peak: the cgroup's memory.peak (page cache included)"

#: Value of ``sys.gpu`` on a machine with no GPU (as mlflow-sysmetrics 0.1.3 writes it).
NO_GPU = "None"

#: ``sysmetrics.error`` is cut to this many characters.
MAX_ERROR_LENGTH = 500


def implausible_tag(key: str, value: str) -> str | None:
    """:func:`._value.implausible` with the limit that fits ``key`` (names are short, lists longer)."""
    return implausible(value, MAX_NAME_LENGTH if key in NAME_KEYS else MAX_FACT_LENGTH)


def matches_any_known(pattern: str) -> bool:
    """Whether ``pattern`` (a key or ``fnmatch`` pattern) names at least one known key.

    Not memoised: settings are parsed once per distinct value of their variable.
    """
    from fnmatch import fnmatchcase

    return any(fnmatchcase(key, pattern) for key in ALL_KEYS)


def selected(key: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> bool:
    """Whether ``key`` is written under the given include and exclude patterns."""
    if not include and not exclude:
        return key not in OPT_IN_KEYS
    from fnmatch import fnmatchcase

    if key in OPT_IN_KEYS and not any(fnmatchcase(key, p) for p in include):
        return False
    return not any(fnmatchcase(key, p) for p in exclude)


def is_system_key(key: str) -> bool:
    """Whether ``key`` is one of this package's (``sys.*``, ``sysmetrics.*``)."""
    return key.startswith(("sys.", "sysmetrics."))


_NODE_KEY = r"^(sys|sysmetrics)\.node(\d+)\.(.+)$"


def node_key(key: str, node: int) -> str:
    """``key`` as node ``node`` of a multi-node job writes it on a shared run.

    Node 0 writes the plain key; node ``k`` inserts ``node<k>`` after the first part:
    ``sys.gpu`` -> ``sys.node1.gpu``, ``sysmetrics.error`` -> ``sysmetrics.node1.error``.
    """
    if node == 0:
        return key
    prefix, _, name = key.partition(".")
    return f"{prefix}.node{node}.{name}"


def split_node_key(key: str) -> tuple[int, str] | None:
    """``(k, "gpu")`` for ``sys.node<k>.gpu``; ``None`` for a key no node ``k >= 1`` wrote."""
    import re

    match = re.match(_NODE_KEY, key)
    return (int(match.group(2)), match.group(3)) if match else None


def plain_key(key: str) -> str:
    """The key that node ``k``'s ``key`` stands for: ``sys.node1.gpu`` -> ``sys.gpu``."""
    split = split_node_key(key)
    return key if split is None else f"{key.split('.', 1)[0]}.{split[1]}"


_RANK = {name: index for index, name in enumerate(TABLE)}


def _sort_key(key: str) -> tuple[float, int, str]:
    split = split_node_key(key)
    node = 0 if split is None else split[0]
    rank = _RANK.get(plain_key(key))
    return (float("inf"), 0, key) if rank is None else (node, rank, key)


def order(keys: Iterable[str]) -> list[str]:
    """Keys in the table's order; node ``k``'s keys after node 0's, unknown ones last by name."""
    return sorted(keys, key=_sort_key)


def group_of(key: str) -> str:
    """The heading ``key`` (or node ``k``'s copy of it) is shown under; ``Other`` if unknown."""
    found = TABLE.get(plain_key(key))
    return found.group if found is not None else "Other"
