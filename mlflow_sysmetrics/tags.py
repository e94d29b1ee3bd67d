"""Tag keys and how values are written.

Keys are a contract: other tools and users search on them, so they never change. Values are
strings; numbers are plain decimals; ``*_gb`` is 10^9 bytes rounded to two decimals.
"""

from __future__ import annotations

import math

CPU = "sys.cpu"
CPU_CORES = "sys.cpu_cores"
CPU_PHYSICAL_CORES = "sys.cpu_physical_cores"
CPU_AVAILABLE = "sys.cpu_available"
MEMORY_GB = "sys.memory_gb"
MEMORY_LIMIT_GB = "sys.memory_limit_gb"
DISK_FREE_GB = "sys.disk_free_gb"
DISK_TOTAL_GB = "sys.disk_total_gb"
PLATFORM = "sys.platform"
OS = "sys.os"
PYTHON = "sys.python"
MLFLOW = "sys.mlflow"
FRAMEWORKS = "sys.frameworks"
CUDA_RUNTIME = "sys.cuda_runtime"
CUDNN = "sys.cudnn"
NCCL = "sys.nccl"
GPU = "sys.gpu"
GPU_COUNT = "sys.gpu_count"
GPU_MEMORY_GB = "sys.gpu_memory_gb"
GPU_DRIVER = "sys.gpu_driver"
CUDA_DRIVER = "sys.cuda_driver"
GPU_COMPUTE_CAPABILITY = "sys.gpu_compute_capability"
GPU_MIG = "sys.gpu_mig"
GPU_POWER_LIMIT_W = "sys.gpu_power_limit_w"
GPU_LINK = "sys.gpu_link"
NETWORK = "sys.network"
CONTAINER = "sys.container"
CLOUD = "sys.cloud"
INSTANCE_TYPE = "sys.instance_type"
DIST_RANK = "sys.dist.rank"
DIST_LOCAL_RANK = "sys.dist.local_rank"
DIST_WORLD_SIZE = "sys.dist.world_size"
DIST_NODE_RANK = "sys.dist.node_rank"
DIST_NODES = "sys.dist.nodes"
SLURM_JOB_ID = "sys.slurm.job_id"
HOST = "sys.host"
ERROR = "sysmetrics.error"

#: Every key :func:`mlflow_sysmetrics.collect` can write, in display order.
ALL_KEYS: tuple[str, ...] = (
    CPU,
    CPU_CORES,
    CPU_PHYSICAL_CORES,
    CPU_AVAILABLE,
    MEMORY_GB,
    MEMORY_LIMIT_GB,
    DISK_FREE_GB,
    DISK_TOTAL_GB,
    PLATFORM,
    OS,
    PYTHON,
    MLFLOW,
    FRAMEWORKS,
    CUDA_RUNTIME,
    CUDNN,
    NCCL,
    GPU,
    GPU_COUNT,
    GPU_MEMORY_GB,
    GPU_DRIVER,
    CUDA_DRIVER,
    GPU_COMPUTE_CAPABILITY,
    GPU_MIG,
    GPU_POWER_LIMIT_W,
    GPU_LINK,
    NETWORK,
    CONTAINER,
    CLOUD,
    INSTANCE_TYPE,
    DIST_RANK,
    DIST_LOCAL_RANK,
    DIST_WORLD_SIZE,
    DIST_NODE_RANK,
    DIST_NODES,
    SLURM_JOB_ID,
    HOST,
    ERROR,
)

#: The facts likeliest to explain why one run is slower than another on similar hardware:
#: the framework stack, the GPU's power cap and links, the network fabric.
PERFORMANCE_KEYS: tuple[str, ...] = (
    FRAMEWORKS,
    CUDA_RUNTIME,
    CUDNN,
    NCCL,
    GPU_POWER_LIMIT_W,
    GPU_LINK,
    NETWORK,
)

#: Keys written only when ``MLFLOW_SYSMETRICS_INCLUDE`` asks for them.
OPT_IN_KEYS: frozenset[str] = frozenset({HOST})

#: Value of ``sys.gpu`` on a machine with no GPU (as mlflow-sysmetrics 0.1.3 writes it).
NO_GPU = "None"

#: MLflow refuses tag values longer than this (``MAX_TAG_VAL_LENGTH``).
MAX_VALUE_LENGTH = 8000
#: ``sysmetrics.error`` is cut to this many characters.
MAX_ERROR_LENGTH = 500
#: Longest a name of one thing can truly be: an x86 brand string is 48 characters (CPUID
#: leaves 0x80000002-4), NVML's device name fits 96 bytes, os-release names a few dozen.
MAX_NAME_LENGTH = 128
#: Longest any other value can truly be (a list of several GPU models included).
MAX_FACT_LENGTH = 1024
#: Keys whose value names one thing (a CPU model, an OS, a container kind ...).
NAME_KEYS: frozenset[str] = frozenset({CPU, OS, CONTAINER, CLOUD, INSTANCE_TYPE, HOST, SLURM_JOB_ID})
#: Compiled on first use (by ``re``'s own cache): most values are printable and never need it.
_CONTROL = "[\x00-\x1f\x7f-\x9f]"


def gb(num_bytes: float) -> str:
    """Bytes as decimal gigabytes (10^9) with at most two decimals: ``85520809984`` -> ``85.52``."""
    return str(round(num_bytes / 1e9, 2))


def cuda_version(encoded: int) -> str:
    """CUDA's encoded version as text: ``13000`` -> ``13.0``, ``12040`` -> ``12.4`` (major*1000 + minor*10).

    NVML's driver version and the frameworks' build numbers use the same encoding.
    """
    return f"{encoded // 1000}.{(encoded % 1000) // 10}"


def decimal(value: float) -> str:
    """A number as a plain decimal: ``2.0`` -> ``2``, ``1.5`` -> ``1.5``, ``1/3`` -> ``0.33``.

    Below 0.01, two significant digits (``0.004``), never a misleading ``0``.
    """
    if 0 < abs(value) < 0.005:
        places = 1 - math.floor(math.log10(abs(value)))
        return f"{value:.{places}f}".rstrip("0")
    rounded = round(value, 2)
    if rounded == int(rounded):
        return str(int(rounded))
    return f"{rounded:.2f}".rstrip("0")


def implausible(value: str, limit: int = MAX_NAME_LENGTH) -> str | None:
    """Why ``value`` cannot be a true fact (control characters, absurd length), or ``None``."""
    if not value.isprintable() and _has_control_characters(value):
        return "it holds control characters"
    if len(value) > limit:
        return f"it is {len(value)} characters long"
    return None


def _has_control_characters(value: str) -> bool:
    import re  # only for a value that is not all printable: most never need it

    return re.search(_CONTROL, value) is not None


def implausible_tag(key: str, value: str) -> str | None:
    """:func:`implausible` with the limit that fits ``key`` (names are short, lists longer)."""
    return implausible(value, MAX_NAME_LENGTH if key in NAME_KEYS else MAX_FACT_LENGTH)


def clip(value: str, limit: int = MAX_VALUE_LENGTH) -> str:
    """``value`` cut to ``limit`` characters, ending in an ellipsis when it was cut."""
    if len(value) <= limit:
        return value
    return value[: limit - 1] + "\u2026"


_known_patterns: dict[str, bool] = {}


def matches_any_known(pattern: str) -> bool:
    """Whether ``pattern`` (a key or ``fnmatch`` pattern) names at least one known key."""
    known = _known_patterns.get(pattern)
    if known is None:
        from fnmatch import fnmatchcase  # only settings with patterns need it

        known = any(fnmatchcase(key, pattern) for key in ALL_KEYS)
        if len(_known_patterns) < 256:
            _known_patterns[pattern] = known
    return known


def selected(key: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> bool:
    """Whether ``key`` is written under the given include and exclude patterns."""
    if not include and not exclude:
        return key not in OPT_IN_KEYS
    from fnmatch import fnmatchcase  # only settings with patterns need it

    if key in OPT_IN_KEYS and not any(fnmatchcase(key, p) for p in include):
        return False
    return not any(fnmatchcase(key, p) for p in exclude)


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
    import re  # for the CLI and multi-node reads, not for collecting

    match = re.match(_NODE_KEY, key)
    return (int(match.group(2)), match.group(3)) if match else None
