"""The collectors, one per concern, chosen once for this platform.

A collector is named as its module, the concern it reads (``system``, ``frameworks``,
``distributed``, ...): the name a user reads in ``sysmetrics.error`` and the ``source`` of its
keys in :data:`mlflow_sysmetrics.tags.TABLE`. A platform's own way to a concern lives in that
platform's module (``macos``, ``windows_registry``), and the ``gpu`` collector, named after its
tags, is the ``accelerators`` package of vendors. Adding a fact means a collector function (or
a line in one) and its key's row in the table; a new concern is one more module and one more
row here.
"""

from __future__ import annotations

from .. import _platform
from .._context import Collector, Context
from .._files import Root, once_per_root
from . import (
    _mountinfo,
    accelerators,
    cloud,
    container,
    cpu,
    disk,
    distributed,
    frameworks,
    memory,
    network,
    software,
    system,
)

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Mapping


def _host(ctx: Context) -> Mapping[str, str]:
    """The ``host`` collector, whose module loads only where ``sys.host`` is asked for (opt-in)."""
    from . import host

    return host.collect(ctx)


def for_platform(name: str) -> tuple[Collector, ...]:
    """The collectors for platform ``name`` (``linux``, ``macos``, ``windows``, ``other``)."""
    disk_ = Collector("disk", disk.collect, inline=True)
    software_ = Collector("software", software.collect)
    gpu = Collector(
        "gpu",
        accelerators.collect,
        env=accelerators.VISIBILITY_ENV,
        blocking=accelerators.has_sources if name == "linux" else True,
    )
    distributed_ = Collector("distributed", distributed.collect, inline=True)
    host_ = Collector("host", _host)
    frameworks_ = Collector("frameworks", frameworks.collect, inline=True)
    common_tail = (disk_, software_, frameworks_, gpu, distributed_, host_)
    if name == "linux":
        return (
            Collector("cpu", cpu.collect_linux),
            Collector("memory", memory.collect_linux),
            Collector("system", system.collect_linux),
            *common_tail,
            Collector("container", container.collect, env=container.ENV),
            Collector("cloud", cloud.collect_linux),
            Collector("network", network.collect_linux),
        )
    if name == "macos":
        from . import macos

        return (
            Collector("cpu", macos.collect_cpu, blocking=True),  # sysctl, a tool
            Collector("memory", memory.collect_psutil),
            Collector("system", system.collect_macos),
            *common_tail,
        )
    if name == "windows":
        from . import windows_registry

        return (
            Collector("cpu", windows_registry.collect_cpu),
            Collector("memory", memory.collect_psutil),
            Collector("system", system.collect_windows),
            *common_tail,
            Collector("cloud", cloud.collect_windows),
        )
    return (
        Collector("cpu", cpu.collect_counts),
        Collector("memory", memory.collect_psutil),
        Collector("system", system.collect_other),
        disk_,
        software_,
        frameworks_,
        distributed_,
        host_,
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
