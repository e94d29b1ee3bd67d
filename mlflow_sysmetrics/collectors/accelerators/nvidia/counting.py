"""NVIDIA's part of the run's ledger: a GPU's cumulative counters, and one process's accounting.

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

How long a kernel ran (``sys.gpu_busy_pct``), from the first of these a GPU gives:

1. GPM (GPU performance monitoring, Hopper and newer: ``nvmlGpmQueryDeviceSupport``): the
   hardware's own count of the time "any compute/graphics app was active on the GPU"
   (``NVML_GPM_METRIC_GRAPHICS_UTIL``) between two samples. GPM gives a share between two
   samples, not a counter: :func:`counters` keeps each device's last sample, and adds the
   share times the time between it and the new one to a count kept from the process's
   first reading, so that it answers a cumulative count as AMD's does. Samples less than
   100 ms apart are not compared (nvml.h: "greater than 100ms due to the internal sample
   refresh rate"): a reading that soon after the last answers the count at the last. The
   whole device, every process's kernels; needs no setting.
2. Accounting's sums (``nvmlDeviceGetAccountingStats_v2``, drivers 610 and newer): the sum
   of the driver's utilization samples of one process and their number, so that two
   readings tell the process's share between them. One process's kernels (the run's), and
   only where accounting is on (``nvidia-smi --accounting-mode=1``, as root).
3. Accounting's ``gpuUtilization`` (older drivers): the "percent of time over the process's
   lifetime during which one or more kernels was executing", rounded to a percent, which is
   the run's only for a process whose life on the GPU lies within the run: a program run by
   ``mlflow-sysmetrics run``, or a process that first used the GPU during the run.

GPM comes first because it counts the device, as AMD's activity counters do, with no
setting to turn on and no process to find (inside a container NVML knows processes by the
host's ids); accounting is per process (:func:`process_accounting`), and the ledger reads it
only for a GPU without GPM. A source that measures something else is not read for it: GPM's
SM activity and occupancy say how much of the GPU a kernel filled, not that one ran.
"""

from __future__ import annotations

import ctypes
import os
import time

from .... import _state
from ...._platform import LINUX
from ..counters import Counters, ProcessAccounting
from . import _nvml
from ._nvml import (
    NVML_ERROR_NOT_FOUND,
    NVML_ERROR_NOT_SUPPORTED,
    NVML_SUCCESS,
    NVMLError,
    _AccountingStats,
    _AccountingStatsV2,
    _check,
    _FieldValue,
    _GpmMetricsGet,
    _GpmSupport,
    _handle,
    _open_session,
    _ProcessInfo,
    _text,
    _ViolationTime,
)

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from ..device import Device

__all__ = ["clock_event_fields", "counters", "process_accounting"]

#: nvml.h: nvmlPerfPolicyType_t, nvmlMemoryErrorType_t, nvmlEccCounterType_t, nvmlEnableState_t.
NVML_PERF_POLICY_POWER = 0
NVML_PERF_POLICY_THERMAL = 1
NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
NVML_VOLATILE_ECC = 0
NVML_FEATURE_ENABLED = 1
#: nvml.h NVML_VALUE_NOT_AVAILABLE as an unsigned long long: "not available" (WDDM reports it).
NOT_AVAILABLE = 2**64 - 1
#: The same as an unsigned int (accounting's utilization where the device keeps none).
NOT_AVAILABLE_32 = 2**32 - 1
#: nvml.h nvmlGpmMetricId_t: "Percentage of time any compute/graphics app was active on the
#: GPU. 0.0 - 100.0"; the versions of nvmlGpmMetricsGet_t and nvmlGpmSupport_t.
GPM_GRAPHICS_UTIL = 1
GPM_METRICS_GET_VERSION = 1
GPM_SUPPORT_VERSION = 1
#: nvml.h: two GPM samples should be "greater than 100ms" apart.
GPM_SHORTEST_S = 0.1
#: nvml.h nvmlAccountingStats_v2_t: sumGpuUtil is "in unit of pct * 100".
SUM_UNIT = 100
#: Why a GPU gives no busy share of its own (the ledger adds accounting's reason, if any).
NO_GPM = "no GPM (Hopper and newer)"
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
        return self.code(fields, function, self.handle, *args) == NVML_SUCCESS

    def code(self, fields: tuple[str, ...], function: str, *args: object) -> int | None:
        """Call ``function(*args)``: its code, or ``None`` where it fails (and why, if more is to say).

        Not supported and not found are answered as codes; a missing function and any other
        error are ``None``, named in ``why`` for ``fields``.
        """
        try:
            code: int = getattr(self.lib, function)(*args)
        except AttributeError:
            for field in fields:
                self.why.setdefault(field, f"this NVML has no {function}")
            return None
        if code in (NVML_SUCCESS, NVML_ERROR_NOT_SUPPORTED, NVML_ERROR_NOT_FOUND):
            return code
        try:
            _check(self.lib, function, code)
        except NVMLError as exc:
            for field in fields:
                self.why.setdefault(field, f"NVML: {exc}")
        return None

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


class _Gpm:
    """One device's GPM count: its last sample, when it was taken, and the counts so far (in % x us)."""

    __slots__ = ("at", "busy", "of", "sample")

    def __init__(self, sample: ctypes.c_void_p, at: float) -> None:
        self.sample = sample
        self.at = at
        self.busy = 0.0
        self.of = 0.0


#: Each device's GPM count (by UUID), or why it has none; kept from the process's first reading.
_gpm: dict[str, _Gpm | str] = {}
_gpm_lock = _state.lock()


def _free_gpm() -> None:
    """Free the samples kept (``clear_cache()``): the next reading starts each device's count anew."""
    with _gpm_lock:
        kept = [gpm.sample for gpm in _gpm.values() if isinstance(gpm, _Gpm)]
        _gpm.clear()
    lib = _nvml._session
    if lib is None:
        return
    for sample in kept:
        try:
            lib.nvmlGpmSampleFree(sample)
        except AttributeError:  # pragma: no cover - a library that allocated them frees them
            break


def _forget_gpm() -> None:
    # A forked child has no session of its own yet, and the samples are the parent's to free.
    _gpm.clear()


_state.register(reset=_free_gpm, after_fork=_forget_gpm)


def _lacks_busy(read: _Reader, why: str) -> None:
    read.why.setdefault("busy", why)
    read.why.setdefault("busy_of", why)


def _gpm_sample(read: _Reader) -> ctypes.c_void_p | None:
    """A new GPM sample of the device, or ``None`` (why in ``read.why``)."""
    fields = ("busy", "busy_of")
    sample = ctypes.c_void_p()
    if read.code(fields, "nvmlGpmSampleAlloc", ctypes.byref(sample)) != NVML_SUCCESS:
        _lacks_busy(read, "NVML could not allocate a GPM sample")
        return None
    if read.code(fields, "nvmlGpmSampleGet", read.handle, sample) != NVML_SUCCESS:
        _lacks_busy(read, f"{NO_GPM}: the GPU answers no GPM sample")
        read.code((), "nvmlGpmSampleFree", sample)
        return None
    return sample


def _gpm_start(read: _Reader) -> _Gpm | str:
    """The device's GPM count from now on, or why it has none (kept for the process)."""
    support = _GpmSupport(version=GPM_SUPPORT_VERSION)
    code = read.code(("gpm",), "nvmlGpmQueryDeviceSupport", read.handle, ctypes.byref(support))
    if code != NVML_SUCCESS or not support.isSupportedDevice:
        lacking = read.why.pop("gpm", None)
        return f"{NO_GPM}: {lacking}" if lacking else NO_GPM
    sample = _gpm_sample(read)
    if sample is None:
        return read.why["busy"]
    return _Gpm(sample, time.monotonic())


def _gpm_busy(read: _Reader, uuid: str) -> dict[str, int]:
    """``busy`` and ``busy_of`` from GPM (see the module), or nothing (why in ``read.why``)."""
    with _gpm_lock:
        gpm = _gpm.get(uuid)
        if gpm is None:
            gpm = _gpm[uuid] = _gpm_start(read)
        if isinstance(gpm, str):
            _lacks_busy(read, gpm)
            return {}
        now = time.monotonic()
        if now - gpm.at >= GPM_SHORTEST_S:
            sample = _gpm_sample(read)
            share = None if sample is None else _gpm_share(read, gpm.sample, sample)
            if sample is None or share is None:
                if sample is not None:
                    read.code((), "nvmlGpmSampleFree", sample)
                return {}  # the last sample stays: the next reading covers this one's time too
            micros = (now - gpm.at) * 1e6
            gpm.busy += share * micros
            gpm.of += 100 * micros
            read.code((), "nvmlGpmSampleFree", gpm.sample)
            gpm.sample, gpm.at = sample, now
        return {"busy": round(gpm.busy), "busy_of": round(gpm.of)}


def _gpm_share(read: _Reader, first: ctypes.c_void_p, second: ctypes.c_void_p) -> float | None:
    """GPM's graphics activity between two samples, in percent (``None``: why in ``read.why``)."""
    get = _GpmMetricsGet(version=GPM_METRICS_GET_VERSION, numMetrics=1, sample1=first, sample2=second)
    get.metrics[0].metricId = GPM_GRAPHICS_UTIL
    if read.code(("busy", "busy_of"), "nvmlGpmMetricsGet", ctypes.byref(get)) != NVML_SUCCESS:
        _lacks_busy(read, "NVML could not compare two GPM samples")
        return None
    metric = get.metrics[0]
    if metric.nvmlReturn != NVML_SUCCESS:
        _lacks_busy(read, f"GPM answered no graphics activity (NVML error {metric.nvmlReturn})")
        return None
    return min(max(float(metric.value), 0.0), 100.0)


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
    found.update(_gpm_busy(read, device.uuid))
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


#: Why a process's account cannot be found by its process id inside a container.
_HOST_PIDS = "inside a container NVML knows processes by the host's process ids"
#: ``/proc/self/ns/pid`` of a process in the initial pid namespace: ``PROC_PID_INIT_INO``
#: (``include/linux/proc_ns.h``, 0xEFFFFFFC), fixed since Linux 3.8.
INITIAL_PID_NAMESPACE = "pid:[4026531836]"


def in_child_pid_namespace(link: str) -> bool:
    """Whether ``/proc/self/ns/pid`` (its target: ``link``) is a pid namespace other than the initial one.

    Only in the initial one are a process's ids the ones the driver, and so NVML, knows it by.
    """
    return link.strip() != INITIAL_PID_NAMESPACE


_namespace: dict[str, str | None] = _state.memo()


def _foreign_pids() -> str | None:
    """Why NVML cannot know this process by its own id (a child pid namespace), or ``None`` where it can."""
    if not LINUX:
        return None  # no pid namespaces: the driver's ids are the process's
    if "why" not in _namespace:
        try:
            link = os.readlink("/proc/self/ns/pid")
        except OSError as exc:
            reason = exc.strerror or str(exc)
            _namespace["why"] = (
                f"/proc/self/ns/pid ({reason}) does not say whether NVML knows this process's id"
            )
        else:
            _namespace["why"] = _HOST_PIDS if in_child_pid_namespace(link) else None
    return _namespace["why"]


def _forget_namespace() -> None:
    # A child of a process that made a pid namespace for its children is in that one.
    _namespace.clear()


_state.register(after_fork=_forget_namespace)

#: Why neither the peak nor the busy share is kept.
_ACCOUNTING_OFF = "NVML accounting is off (nvidia-smi --accounting-mode=1, as root)"


def process_accounting(device: Device, pid: int) -> ProcessAccounting:
    """Process ``pid``'s use of ``device`` as NVML accounting keeps it (``nvidia-smi --accounting-mode=1``).

    The peak is ``maxMemoryUsage``, the "maximum total memory in bytes that was ever
    allocated by the process" (nvml.h); what it holds now comes from the GPU's list of
    compute processes, accounting or not. How long its kernels ran: the sums of the
    driver's utilization samples where the library has ``nvmlDeviceGetAccountingStats_v2``
    (drivers 610 and newer), else ``gpuUtilization``, a share of the process's whole life
    (see the module). NVML knows processes by the ids of the initial pid namespace: in any
    other (a container), ``pid`` may be another process's there, and nothing is asked.
    """
    if not device.uuid:
        why = f"{device.name} has no UUID to find it by"
        return ProcessAccounting(why=why, busy_why=why)
    foreign = _foreign_pids()
    if foreign is not None:  # the id asked could be another process's on the host
        return ProcessAccounting(why=foreign, busy_why=foreign)
    lib = _open_session()
    read = _Reader(lib, _handle(lib, device.uuid))
    held, held_why = _held(read, pid)
    mode = read.unsigned("peak", "nvmlDeviceGetAccountingMode")
    if mode != NVML_FEATURE_ENABLED:
        why = read.why.get("peak") or _ACCOUNTING_OFF
        return ProcessAccounting(None, held, f"{why}; {held_why}" if held_why else why, busy_why=why)
    stats, code = _stats(read, pid)
    if stats is None:
        if code == NVML_ERROR_NOT_FOUND:
            why = f"NVML accounting has no record of process {pid} (it has not used this GPU)"
            return ProcessAccounting(None, held, why, False, busy_why=why)
        why = read.why.get("peak") or "NVML accounting keeps no record of processes on this GPU"
        return ProcessAccounting(None, held, why, busy_why=why)
    if stats.maxMemoryUsage == NOT_AVAILABLE:
        unavailable = "NVML marks the process's peak not available (as under Windows WDDM)"
        return _with_busy(ProcessAccounting(None, held, unavailable, True), stats)
    return _with_busy(ProcessAccounting(int(stats.maxMemoryUsage), held, held_why, True), stats)


def _stats(read: _Reader, pid: int) -> tuple[_AccountingStats | _AccountingStatsV2 | None, int | None]:
    """Accounting's record of ``pid`` (v2 where the library has it), or ``None`` and the call's code."""
    v2 = _AccountingStatsV2(pid=pid)
    code = read.code(("v2",), "nvmlDeviceGetAccountingStats_v2", read.handle, ctypes.byref(v2))
    if code == NVML_SUCCESS:
        return v2, code
    if code is not None and code != NVML_ERROR_NOT_SUPPORTED:
        return None, code  # no record of the process: v1 knows no more
    read.why.pop("v2", None)  # a library before v2, or a driver that answers v1 only
    v1 = _AccountingStats()
    code = read.code(
        ("peak",), "nvmlDeviceGetAccountingStats", read.handle, ctypes.c_uint(pid), ctypes.byref(v1)
    )
    return (v1, code) if code == NVML_SUCCESS else (None, code)


def _with_busy(found: ProcessAccounting, stats: _AccountingStats | _AccountingStatsV2) -> ProcessAccounting:
    """``found`` with how long the process's kernels ran, from accounting's record of it."""
    if stats.isRunning:
        # startTime: "CPU Timestamp in usec representing start time for the process"
        since = time.time() * 1e6 - stats.startTime
        life_ms = int(since / 1000) if stats.startTime and since >= 0 else None
    else:
        life_ms = int(stats.time)  # "Amount of time in ms during which the compute context was active"
    found = found._replace(life_ms=life_ms)
    unavailable = "NVML marks the process's utilization not available"
    if stats.gpuUtilization == NOT_AVAILABLE_32:
        return found._replace(busy_why=unavailable)
    if isinstance(stats, _AccountingStatsV2):
        if stats.sumGpuUtil == NOT_AVAILABLE:
            return found._replace(busy_why=unavailable)
        return found._replace(busy=int(stats.sumGpuUtil), busy_of=100 * SUM_UNIT * int(stats.sampleCount))
    return found._replace(busy=int(stats.gpuUtilization), busy_of=100, whole_life=True)


def _held(read: _Reader, pid: int) -> tuple[int | None, str | None]:
    """What ``pid`` holds now by the GPU's list of compute processes, or why it cannot be told.

    Asked only where NVML knows the process by its id (:func:`in_child_pid_namespace`).
    """
    count = ctypes.c_uint(64)
    processes = (_ProcessInfo * 64)()
    if not read.call(("held",), "nvmlDeviceGetComputeRunningProcesses_v3", ctypes.byref(count), processes):
        return None, read.why.get("held")
    listed = processes[: min(count.value, 64)]
    mine = [int(p.usedGpuMemory) for p in listed if p.pid == pid and p.usedGpuMemory != NOT_AVAILABLE]
    return sum(mine), None  # in the initial pid namespace: not listed, it holds nothing there
