"""NVIDIA's part of the run's ledger: a GPU's cumulative counters, and one process's GPU memory.

Read through an NVML session kept open from the first reading on (:func:`._nvml._open_session`),
so a run's two readings cost microseconds. Each call fails alone: a call the library lacks
(a newer NVML drops deprecated functions) or refuses costs its own field, named in
:attr:`~..counters.Counters.why`, never the others.

The time the clocks were held down comes from the clocks event reason counters
(``nvmlDeviceGetFieldValues``: nanoseconds since the driver loaded, the counters
``nvidia-smi -q -d PERFORMANCE`` prints as "Clocks Event Reasons Counters"), which also
count hardware slowdown; ``nvmlDeviceGetViolationStatus`` (software power cap and thermal
only, deprecated for removal in CUDA 14) only where the fields are not there. NVIDIA
numbered three of those fields twice: 251-253 in the libraries of drivers 575 to 580.65,
269-271 from 580.82 on, 251-253 being power-smoothing fields there (nvml.h of each driver,
as NVIDIA's ``nvidia-ml-py`` releases for those drivers give it). The driver's version picks
the numbering; between the two, no guess is made.
"""

from __future__ import annotations

import ctypes

from .... import _state
from ...._platform import LINUX
from ..counters import Counters, ProcessMemory
from ._nvml import (
    NVML_ERROR_NOT_FOUND,
    NVML_ERROR_NOT_SUPPORTED,
    NVML_SUCCESS,
    NVMLError,
    _AccountingStats,
    _check,
    _FieldValue,
    _handle,
    _open_session,
    _ProcessInfo,
    _text,
    _ViolationTime,
)

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from ..device import Device

__all__ = ["clock_event_fields", "counters", "process_memory"]

#: nvml.h: nvmlPerfPolicyType_t, nvmlMemoryErrorType_t, nvmlEccCounterType_t, nvmlEnableState_t.
NVML_PERF_POLICY_POWER = 0
NVML_PERF_POLICY_THERMAL = 1
NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
NVML_VOLATILE_ECC = 0
NVML_FEATURE_ENABLED = 1
#: nvml.h NVML_VALUE_NOT_AVAILABLE as an unsigned long long: "not available" (WDDM reports it).
NOT_AVAILABLE = 2**64 - 1
#: nvml.h field ids that every driver since field values came numbers alike.
FIELD_POWER_CAP = 74  # NVML_FI_DEV_PERF_POLICY_POWER = ..._CLOCKS_EVENT_REASON_SW_POWER_CAP
FIELD_THERMAL_POLICY = 75  # NVML_FI_DEV_PERF_POLICY_THERMAL, the software thermal counter's old name
FIELD_LOW_UTILIZATION = 78  # NVML_FI_DEV_PERF_POLICY_LOW_UTILIZATION
FIELD_NVLINK_DATA_TX = 138  # NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX, KiB
FIELD_NVLINK_DATA_RX = 139  # NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX, KiB
#: nvml.h: for the NVLink throughput fields, "a scopeId of UINT_MAX returns aggregate value
#: summed up across all links".
ALL_LINKS = 0xFFFFFFFF
#: NVML_FI_DEV_CLOCKS_EVENT_REASON_{SW_THERM,HW_THERM,HW_POWER_BRAKE}_SLOWDOWN by the driver
#: that numbers them so: (first driver version, (sw thermal, hw thermal, hw power brake)).
CLOCK_EVENT_NUMBERING: tuple[tuple[tuple[int, ...], tuple[int, int, int]], ...] = (
    ((580, 82), (269, 270, 271)),
    ((575,), (251, 252, 253)),
)
#: The last driver known to number them the older way; between it and 580.82 no guess is made.
LAST_OLD_NUMBERING = (580, 65, 99)


def _version(driver: str) -> tuple[int, ...]:
    parts = []
    for part in driver.split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


def clock_event_fields(driver: str) -> tuple[int, int, int] | str:
    """The field ids of software thermal, hardware thermal and power brake time for ``driver``.

    A string says why there are none (a driver before they came, or one whose numbering is
    not known).
    """
    version = _version(driver)
    if not version:
        return f"the driver's version ({driver!r}) does not say how it numbers them"
    new, old = CLOCK_EVENT_NUMBERING
    if version >= new[0]:
        return new[1]
    if old[0] <= version <= LAST_OLD_NUMBERING:
        return old[1]
    if version < old[0]:
        return f"driver {driver} keeps no hardware slowdown counters (they came with driver 575)"
    return f"driver {driver} numbers its hardware slowdown counters in a way not known here"


_driver: dict[str, str] = _state.memo()


def _driver_version(lib: ctypes.CDLL) -> str:
    if "version" not in _driver:
        _driver["version"] = _text(lib, "nvmlSystemGetDriverVersion")
    return _driver["version"]


class _Reader:
    """One device's calls, each failing alone into ``why``."""

    __slots__ = ("handle", "lib", "why")

    def __init__(self, lib: ctypes.CDLL, handle: ctypes.c_void_p) -> None:
        self.lib = lib
        self.handle = handle
        self.why: dict[str, str] = {}

    def call(self, fields: tuple[str, ...], function: str, *args: object) -> bool:
        """Call ``function(handle, *args)``: True on success, False (and why, where there is more to say)."""
        try:
            code = getattr(self.lib, function)(self.handle, *args)
        except AttributeError:
            for field in fields:
                self.why.setdefault(field, f"this NVML has no {function}")
            return False
        if code in (NVML_ERROR_NOT_SUPPORTED, NVML_ERROR_NOT_FOUND):
            return False
        try:
            _check(self.lib, function, code)
        except NVMLError as exc:
            for field in fields:
                self.why.setdefault(field, f"NVML: {exc}")
            return False
        return True

    def wide(self, field: str, function: str, *args: object) -> int | None:
        value = ctypes.c_ulonglong()
        return value.value if self.call((field,), function, *args, ctypes.byref(value)) else None

    def unsigned(self, field: str, function: str) -> int | None:
        value = ctypes.c_uint()
        return value.value if self.call((field,), function, ctypes.byref(value)) else None

    def violation(self, field: str, policy: int) -> int | None:
        value = _ViolationTime()
        ok = self.call((field,), "nvmlDeviceGetViolationStatus", ctypes.c_uint(policy), ctypes.byref(value))
        return int(value.violationTime) if ok else None

    def fields(self, wanted: dict[str, tuple[int, int]]) -> dict[str, int | None]:
        """The field values ``wanted`` (record field -> (field id, scope)) in one call; those answered."""
        values = (_FieldValue * len(wanted))()
        for slot, (field_id, scope) in zip(values, wanted.values(), strict=True):
            slot.fieldId, slot.scopeId = field_id, scope
        if not self.call(tuple(wanted), "nvmlDeviceGetFieldValues", ctypes.c_int(len(wanted)), values):
            return {}
        found: dict[str, int | None] = {}
        for name, slot in zip(wanted, values, strict=True):
            if slot.nvmlReturn == NVML_SUCCESS and slot.value.ullVal != NOT_AVAILABLE:
                found[name] = int(slot.value.ullVal)
        return found


def counters(device: Device) -> Counters:
    """The cumulative counters of the NVIDIA GPU ``device`` now (see :class:`..counters.Counters`)."""
    if not device.uuid:
        raise NVMLError(f"{device.name} has no UUID to find it by")
    lib = _open_session()
    read = _Reader(lib, _handle(lib, device.uuid))
    wanted = {
        "power_cap_ns": (FIELD_POWER_CAP, 0),
        "low_util_ns": (FIELD_LOW_UTILIZATION, 0),
    }
    if device.nvlink_links:
        wanted.update(
            nvlink_tx_kib=(FIELD_NVLINK_DATA_TX, ALL_LINKS), nvlink_rx_kib=(FIELD_NVLINK_DATA_RX, ALL_LINKS)
        )
    numbering = clock_event_fields(_driver_version(lib))
    if isinstance(numbering, str):
        wanted["thermal_ns"] = (FIELD_THERMAL_POLICY, 0)
        read.why.update(hw_thermal_ns=numbering, hw_power_brake_ns=numbering)
    else:
        wanted.update(
            thermal_ns=(numbering[0], 0), hw_thermal_ns=(numbering[1], 0), hw_power_brake_ns=(numbering[2], 0)
        )
    found = read.fields(wanted)
    # Where the fields are not there, the older call (software power cap and thermal only).
    if "power_cap_ns" not in found:
        found["power_cap_ns"] = read.violation("power_cap_ns", NVML_PERF_POLICY_POWER)
    if "thermal_ns" not in found:
        found["thermal_ns"] = read.violation("thermal_ns", NVML_PERF_POLICY_THERMAL)
    limits = (ctypes.c_uint(), ctypes.c_uint())
    max_power = None
    if read.call(
        ("max_power_w",), "nvmlDeviceGetPowerManagementLimitConstraints", *(ctypes.byref(v) for v in limits)
    ):
        max_power = limits[1].value / 1000 or None
    return Counters(
        energy_mj=read.wide("energy_mj", "nvmlDeviceGetTotalEnergyConsumption"),
        ecc_uncorrected=read.wide(
            "ecc_uncorrected",
            "nvmlDeviceGetTotalEccErrors",
            ctypes.c_uint(NVML_MEMORY_ERROR_TYPE_UNCORRECTED),
            ctypes.c_uint(NVML_VOLATILE_ECC),
        ),
        pcie_replays=read.unsigned("pcie_replays", "nvmlDeviceGetPcieReplayCounter"),
        max_power_w=max_power,
        why=tuple(read.why.items()),
        **found,
    )


#: Why a process's GPU memory cannot be matched by its process id inside a container.
_HOST_PIDS = "inside a container NVML knows processes by the host's process ids"


def process_memory(device: Device, pid: int) -> ProcessMemory:
    """The GPU memory process ``pid`` holds on ``device`` now, and the most it ever held.

    The peak is NVML accounting's ``maxMemoryUsage``, the "maximum total memory in bytes that
    was ever allocated by the process" (nvml.h), kept only while accounting is on
    (``nvidia-smi --accounting-mode=1``, as root).
    """
    if not device.uuid:
        return ProcessMemory(why=f"{device.name} has no UUID to find it by")
    lib = _open_session()
    read = _Reader(lib, _handle(lib, device.uuid))
    held, held_why = _held(read, pid)
    mode = read.unsigned("peak", "nvmlDeviceGetAccountingMode")
    if mode != NVML_FEATURE_ENABLED:
        why = read.why.get("peak") or "NVML accounting is off (nvidia-smi --accounting-mode=1, as root)"
        return ProcessMemory(None, held, f"{why}; {held_why}" if held_why else why)
    stats = _AccountingStats()
    if not read.call(("peak",), "nvmlDeviceGetAccountingStats", ctypes.c_uint(pid), ctypes.byref(stats)):
        why = read.why.get("peak") or (
            f"NVML accounting has no record of process {pid} (it used no GPU yet, or {_HOST_PIDS})"
        )
        return ProcessMemory(None, held, why)
    if stats.maxMemoryUsage == NOT_AVAILABLE:
        return ProcessMemory(
            None, held, "NVML marks the process's peak not available (as under Windows WDDM)"
        )
    return ProcessMemory(int(stats.maxMemoryUsage), held, held_why)


def _held(read: _Reader, pid: int) -> tuple[int | None, str | None]:
    """What ``pid`` holds now by the GPU's list of compute processes, or why it cannot be told."""
    count = ctypes.c_uint(64)
    processes = (_ProcessInfo * 64)()
    if not read.call(("held",), "nvmlDeviceGetComputeRunningProcesses_v3", ctypes.byref(count), processes):
        return None, read.why.get("held")
    listed = processes[: min(count.value, 64)]
    mine = [int(p.usedGpuMemory) for p in listed if p.pid == pid and p.usedGpuMemory != NOT_AVAILABLE]
    if mine:
        return sum(mine), None
    if listed and LINUX:
        return None, f"NVML lists {len(listed)} process(es) on it, none as process {pid} ({_HOST_PIDS})"
    return 0, None
