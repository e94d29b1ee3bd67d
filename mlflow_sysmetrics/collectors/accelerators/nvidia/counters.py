"""The ledger's counters: one GPU's cumulative counters, read through a session kept open.

The run's ledger (``mlflow_sysmetrics._ledger``) reads these at a run's start and end; the
NVML session (:func:`._nvml._open_session`) stays open between the two readings.
"""

from __future__ import annotations

import ctypes

from ...._value import Record
from ._nvml import (
    NVMLError,
    _AccountingStats,
    _handle,
    _open_session,
    _optional,
    _ProcessInfo,
    _text,
    _unsigned,
    _ViolationTime,
    _wide,
)

#: What the ledger uses (:class:`NVMLError` is what these functions raise).
__all__ = ["Counters", "NVMLError", "counters", "memory_held", "memory_peak"]


#: nvml.h: nvmlPerfPolicyType_t, nvmlMemoryErrorType_t, nvmlEccCounterType_t, nvmlEnableState_t.
NVML_PERF_POLICY_POWER = 0
NVML_PERF_POLICY_THERMAL = 1
NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
NVML_VOLATILE_ECC = 0
NVML_FEATURE_ENABLED = 1


class Counters(Record):
    """One GPU's cumulative counters at one moment (``None``: the GPU does not keep that one).

    ``energy_mj``: millijoules since the driver loaded (Volta and newer);
    ``power_ns`` / ``thermal_ns``: time its clocks were held down by the power cap / by
    temperature (nvmlDeviceGetViolationStatus); ``ecc_uncorrected``: uncorrected ECC errors
    since the driver loaded (volatile); ``pcie_replays``: PCIe replays.
    """

    name: str
    energy_mj: int | None = None
    power_ns: int | None = None
    thermal_ns: int | None = None
    ecc_uncorrected: int | None = None
    pcie_replays: int | None = None


def _violation(lib: ctypes.CDLL, handle: ctypes.c_void_p, policy: int) -> int | None:
    value = _ViolationTime()
    ok = _optional(lib, "nvmlDeviceGetViolationStatus", handle, ctypes.c_uint(policy), ctypes.byref(value))
    return int(value.violationTime) if ok else None


def counters(uuid: str) -> Counters:
    """The cumulative counters of the GPU ``uuid`` now (see :class:`Counters`)."""
    lib = _open_session()
    handle = _handle(lib, uuid)
    replays = _unsigned(lib, "nvmlDeviceGetPcieReplayCounter", handle)
    return Counters(
        _text(lib, "nvmlDeviceGetName", handle),
        _wide(lib, "nvmlDeviceGetTotalEnergyConsumption", handle),
        _violation(lib, handle, NVML_PERF_POLICY_POWER),
        _violation(lib, handle, NVML_PERF_POLICY_THERMAL),
        _wide(
            lib,
            "nvmlDeviceGetTotalEccErrors",
            handle,
            ctypes.c_uint(NVML_MEMORY_ERROR_TYPE_UNCORRECTED),
            ctypes.c_uint(NVML_VOLATILE_ECC),
        ),
        replays,
    )


def memory_peak(uuid: str, pid: int) -> int | None:
    """The most memory process ``pid`` held on the GPU, by NVML accounting; ``None`` if it is off."""
    lib = _open_session()
    handle = _handle(lib, uuid)
    mode = _unsigned(lib, "nvmlDeviceGetAccountingMode", handle)
    if mode != NVML_FEATURE_ENABLED:
        return None
    stats = _AccountingStats()
    if not _optional(lib, "nvmlDeviceGetAccountingStats", handle, ctypes.c_uint(pid), ctypes.byref(stats)):
        return None
    return int(stats.maxMemoryUsage) or None


def memory_held(uuid: str, pid: int) -> int | None:
    """The memory process ``pid`` holds on the GPU now (its running compute processes' list)."""
    lib = _open_session()
    handle = _handle(lib, uuid)
    count = ctypes.c_uint(64)
    processes = (_ProcessInfo * 64)()
    if not _optional(lib, "nvmlDeviceGetComputeRunningProcesses_v3", handle, ctypes.byref(count), processes):
        return None
    held = [int(p.usedGpuMemory) for p in processes[: min(count.value, 64)] if p.pid == pid]
    return sum(held) if held else 0
