"""NVIDIA GPUs: NVML first, ``/proc/driver/nvidia`` and ``nvidia-smi`` as fallbacks.

The vendor module (the contract in :mod:`..contract`), on top of its parts, each importing
only those below it:

- :mod:`.facts`: the table of facts both sources read (a leaf);
- :mod:`._nvml`: the ctypes binding (loading, errors, structures, the kept session);
- :mod:`.nvml_pass`: the devices as NVML tells them, MIG instances and permissions included;
- :mod:`.fallback`: the driver's ``/proc`` files and ``nvidia-smi``, and their parsers;
- :mod:`.counting`: the run's ledger's counters and a process's accounting (the contract's
  optional parts: :func:`counters`, :func:`process_accounting`).

On the live machine NVML (no ``pynvml`` import) gives every fact in one in-process pass.
Where NVML cannot be loaded or initialised, and on a replayed machine
(``MLFLOW_SYSMETRICS_ROOT``), the fallbacks run. Each part is imported where it is used:
NVML's path loads neither the fallbacks nor their ``re`` and ``csv``, a replayed machine no
``ctypes``. Which GPUs a CUDA process may use is :func:`visible` (CUDA's grammar is in
:mod:`..visibility`).
"""

from __future__ import annotations

from .... import _log
from ...._context import Context
from .. import visibility
from ..device import Device, Inventory

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ..counters import Counters, ProcessAccounting


def inventory(ctx: Context) -> Inventory | None:
    """NVIDIA GPUs by the cheapest source that knows every fact, or ``None`` if none.

    On the live machine NVML answers everything in one pass; its shutdown is left until
    the answer is handed over. The driver's files and ``nvidia-smi`` are read only when
    NVML cannot be used, and on a replayed machine.
    """
    root = ctx.root
    failure = None
    if root.is_live:
        from . import _nvml, nvml_pass

        try:
            return nvml_pass.inventory(defer=ctx.defer)
        except OSError:
            _log.logger().debug("NVML is not installed; trying the driver's files and nvidia-smi")
        except _nvml.NVMLError as exc:
            _log.logger().debug("NVML failed (%s); trying the driver's files and nvidia-smi", exc)
            failure = exc
    from . import fallback

    return fallback.inventory(ctx, failure)


def visible(devices: Sequence[Device], env: Mapping[str, str]) -> visibility.Visible:
    """What a CUDA process enumerates under ``CUDA_VISIBLE_DEVICES`` and ``CUDA_DEVICE_ORDER``."""
    return visibility.cuda(devices, env.get("CUDA_VISIBLE_DEVICES"), env.get("CUDA_DEVICE_ORDER"))


def counters(device: Device) -> Counters:
    """The cumulative counters of ``device`` now, for the run's ledger (see :mod:`.counting`)."""
    from . import counting

    return counting.counters(device)


def process_accounting(device: Device, pid: int) -> ProcessAccounting:
    """Process ``pid``'s use of ``device`` as NVML accounting keeps it (see :mod:`.counting`)."""
    from . import counting

    return counting.process_accounting(device, pid)
