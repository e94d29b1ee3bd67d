"""The collectors, one per concern, chosen once for this platform.

Adding a fact means adding one collector function and one row here (and its key in
:mod:`mlflow_sysmetrics.tags`).
"""

from __future__ import annotations

from .. import _platform
from .. import tags as T
from .._context import Collector
from .._files import Root, once_per_root
from . import (
    _mountinfo,
    accelerators,
    cloud,
    container,
    cpu,
    disk,
    distributed,
    memory,
    network,
    software,
    system,
)

CPU_KEYS = (T.CPU, T.CPU_CORES, T.CPU_PHYSICAL_CORES, T.CPU_AVAILABLE)
MEMORY_KEYS = (T.MEMORY_GB, T.MEMORY_LIMIT_GB)
GPU_KEYS = (
    T.GPU,
    T.GPU_COUNT,
    T.GPU_MEMORY_GB,
    T.GPU_DRIVER,
    T.CUDA_DRIVER,
    T.GPU_COMPUTE_CAPABILITY,
    T.GPU_MIG,
    T.GPU_POWER_LIMIT_W,
    T.GPU_LINK,
)
FRAMEWORK_KEYS = (T.FRAMEWORKS, T.CUDA_RUNTIME, T.CUDNN, T.NCCL)
DIST_KEYS = (
    T.DIST_RANK,
    T.DIST_LOCAL_RANK,
    T.DIST_WORLD_SIZE,
    T.DIST_NODE_RANK,
    T.DIST_NODES,
    T.SLURM_JOB_ID,
)


def for_platform(name: str) -> tuple[Collector, ...]:
    """The collectors for platform ``name`` (``linux``, ``macos``, ``windows``, ``other``)."""
    disk_ = Collector("disk", disk.collect, (T.DISK_FREE_GB, T.DISK_TOTAL_GB), inline=True)
    software_ = Collector("software", software.collect, (T.PYTHON, T.MLFLOW))
    gpu = Collector(
        "gpu",
        accelerators.collect,
        GPU_KEYS,
        env=accelerators.VISIBILITY_ENV,
        blocking=accelerators.has_sources if name == "linux" else True,
    )
    dist = Collector("dist", distributed.collect, DIST_KEYS, inline=True)
    host = Collector("host", system.collect_host, (T.HOST,))
    frameworks = Collector("frameworks", software.collect_frameworks, FRAMEWORK_KEYS, inline=True)
    common_tail = (disk_, software_, frameworks, gpu, dist, host)
    if name == "linux":
        return (
            Collector("cpu", cpu.collect_linux, CPU_KEYS),
            Collector("memory", memory.collect_linux, MEMORY_KEYS),
            Collector("os", system.collect_linux, (T.PLATFORM, T.OS)),
            *common_tail,
            Collector("container", container.collect, (T.CONTAINER,), env=container.ENV),
            Collector("cloud", cloud.collect_linux, (T.CLOUD, T.INSTANCE_TYPE)),
            Collector("network", network.collect_linux, (T.NETWORK,)),
        )
    if name == "macos":
        from . import apple

        return (
            Collector("cpu", apple.collect_cpu, CPU_KEYS, blocking=True),  # sysctl, a tool
            Collector("memory", memory.collect_psutil, MEMORY_KEYS),
            Collector("os", system.collect_macos, (T.PLATFORM, T.OS)),
            *common_tail,
        )
    if name == "windows":
        from . import windows

        return (
            Collector("cpu", windows.collect_cpu, CPU_KEYS),
            Collector("memory", memory.collect_psutil, MEMORY_KEYS),
            Collector("os", system.collect_windows, (T.PLATFORM, T.OS)),
            *common_tail,
            Collector("cloud", cloud.collect_windows, (T.CLOUD, T.INSTANCE_TYPE)),
        )
    return (
        Collector("cpu", cpu.collect_counts, CPU_KEYS),
        Collector("memory", memory.collect_psutil, MEMORY_KEYS),
        Collector("os", system.collect_other, (T.PLATFORM, T.OS)),
        disk_,
        software_,
        frameworks,
        dist,
        host,
    )


COLLECTORS: tuple[Collector, ...] = for_platform(_platform.NAME)


@once_per_root
def reads_cannot_block(root: Root) -> bool:
    """Whether reading this root's files cannot block, so they may be read in the caller's thread.

    True for the live Linux machine whose root file system is on a local disk: ``/proc``
    and ``/sys`` answer from the kernel, and ``/etc`` from the disk Python itself was just
    loaded from. A replayed tree (which may hold a FIFO), a root on a network file system,
    and macOS and Windows (whose sources are tools and registries) are read by workers.
    """
    return _platform.LINUX and root.is_live and _mountinfo.is_local(root, "/")
