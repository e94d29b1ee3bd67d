"""A small ctypes binding to NVIDIA's management library (NVML), for the facts we tag.

Why not ``nvidia-ml-py`` (``pynvml``)? It is a binding to this same library, and importing it
costs more than the whole pass here before NVML is even initialised (figures in the README's
Performance section); these dozen calls cost nothing to define. ``nvmlInit`` and
``nvmlShutdown`` are reference counted by NVML, so this coexists with other users of NVML
in the process (MLflow's system metrics, PyTorch). The facts' pass shuts down when done and
keeps no handle; the run's ledger (:func:`counters`) keeps one session open from its first
reading on, so that a run's two readings cost microseconds, not a driver initialisation.
"""

from __future__ import annotations

import ctypes
import os

from ... import _platform, _state
from ... import tags as T
from ..._value import Record
from .device import Device, Inventory

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

NVML_SUCCESS = 0
NVML_ERROR_NOT_SUPPORTED = 3
#: nvml.h: a device the caller may not use, e.g. one a SLURM job's cgroup does not grant.
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_INVALID_ARGUMENT = 2
#: nvml.h's NVML_NVLINK_MAX_LINKS: links are asked by index up to this many.
NVLINK_MAX_LINKS = 18
_BUFFER = 96


class NVMLError(RuntimeError):
    """An NVML call returned an error code."""

    def __init__(self, message: str, code: int = -1) -> None:
        super().__init__(message)
        self.code = code


class _Memory(ctypes.Structure):
    _fields_ = [
        ("total", ctypes.c_ulonglong),
        ("free", ctypes.c_ulonglong),
        ("used", ctypes.c_ulonglong),
    ]


class _ViolationTime(ctypes.Structure):
    # nvml.h nvmlViolationTime_t: violationTime is the time held down, in ns
    _fields_ = [("referenceTime", ctypes.c_ulonglong), ("violationTime", ctypes.c_ulonglong)]


class _AccountingStats(ctypes.Structure):
    # nvml.h nvmlAccountingStats_t
    _fields_ = [
        ("gpuUtilization", ctypes.c_uint),
        ("memoryUtilization", ctypes.c_uint),
        ("maxMemoryUsage", ctypes.c_ulonglong),
        ("time", ctypes.c_ulonglong),
        ("startTime", ctypes.c_ulonglong),
        ("isRunning", ctypes.c_uint),
        ("reserved", ctypes.c_uint * 5),
    ]


class _ProcessInfo(ctypes.Structure):
    # nvml.h nvmlProcessInfo_t, as nvmlDeviceGetComputeRunningProcesses_v3 fills it
    _fields_ = [
        ("pid", ctypes.c_uint),
        ("usedGpuMemory", ctypes.c_ulonglong),
        ("gpuInstanceId", ctypes.c_uint),
        ("computeInstanceId", ctypes.c_uint),
    ]


class _PciInfo(ctypes.Structure):
    _fields_ = [
        ("busIdLegacy", ctypes.c_char * 16),
        ("domain", ctypes.c_uint),
        ("bus", ctypes.c_uint),
        ("device", ctypes.c_uint),
        ("pciDeviceId", ctypes.c_uint),
        ("pciSubSystemId", ctypes.c_uint),
        ("busId", ctypes.c_char * 32),
    ]


_lock = _state.lock()
_library: ctypes.CDLL | None = None
_load_error: OSError | None = None


def library_names() -> list[str]:
    """Where NVML is looked for on this platform, most likely first."""
    if _platform.WINDOWS:
        system_root = os.environ.get("SYSTEMROOT", r"C:\Windows")
        program_files = os.environ.get("PROGRAMFILES", r"C:\Program Files")
        return [
            os.path.join(system_root, "System32", "nvml.dll"),
            os.path.join(program_files, "NVIDIA Corporation", "NVSMI", "nvml.dll"),
        ]
    return ["libnvidia-ml.so.1", "libnvidia-ml.so"]


def load() -> ctypes.CDLL:
    """The NVML library, loaded once per process; :class:`OSError` when it is not installed."""
    global _library, _load_error
    with _lock:
        if _library is not None:
            return _library
        if _load_error is not None:
            raise _load_error
        error: OSError | None = None
        for name in library_names():
            try:
                _library = ctypes.CDLL(name)
                return _library
            except OSError as exc:
                error = exc
        _load_error = OSError(f"NVML library not found ({error})")
        raise _load_error


def _check(lib: ctypes.CDLL, function: str, code: int) -> None:
    if code == NVML_SUCCESS:
        return
    try:
        error_string = lib.nvmlErrorString
        error_string.restype = ctypes.c_char_p
        text = error_string(code)
        message = text.decode("utf-8", "replace") if text else f"error {code}"
    except AttributeError:
        message = f"error {code}"
    raise NVMLError(f"{function} returned {code}: {message}", code)


def _text(lib: ctypes.CDLL, function: str, *args: object) -> str:
    buffer = ctypes.create_string_buffer(_BUFFER)
    _check(lib, function, getattr(lib, function)(*args, buffer, ctypes.c_uint(_BUFFER)))
    return buffer.value.decode("utf-8", "replace").strip()


def _optional(lib: ctypes.CDLL, function: str, *args: object) -> bool:
    """Call ``function``; False when the device does not support it, raise on real errors."""
    try:
        call = getattr(lib, function)
    except AttributeError:
        return False
    code = call(*args)
    if code in (NVML_ERROR_NOT_SUPPORTED, NVML_ERROR_NOT_FOUND, NVML_ERROR_FUNCTION_NOT_FOUND):
        return False
    _check(lib, function, code)
    return True


def _unsigned(lib: ctypes.CDLL, function: str, handle: ctypes.c_void_p) -> int | None:
    value = ctypes.c_uint()
    return value.value if _optional(lib, function, handle, ctypes.byref(value)) else None


def _nvlink_links(lib: ctypes.CDLL, handle: ctypes.c_void_p) -> int | None:
    """Active NVLink links, asked link by link; ``None`` for a GPU without NVLink."""
    active = 0
    supported = False
    state = ctypes.c_uint()
    for link in range(NVLINK_MAX_LINKS):
        try:
            if not _optional(
                lib, "nvmlDeviceGetNvLinkState", handle, ctypes.c_uint(link), ctypes.byref(state)
            ):
                break
        except NVMLError as exc:
            if exc.code == NVML_ERROR_INVALID_ARGUMENT:  # past the GPU's last link
                break
            raise
        supported = True
        active += state.value == 1
    return active if supported else None


def _facts(lib: ctypes.CDLL, handle: ctypes.c_void_p) -> dict[str, Any]:
    """The facts of :data:`.nvidia.FACTS` (power cap, PCIe link, ...) and the active NVLink links."""
    from .nvidia import FACTS

    found: dict[str, Any] = {}
    for fact in FACTS:
        outputs = [ctypes.c_uint() for _ in range(fact.outputs)]
        if _optional(lib, fact.nvml, handle, *(ctypes.byref(o) for o in outputs)):
            found[fact.field] = fact.nvml_value(outputs[0].value)
    found["nvlink_links"] = _nvlink_links(lib, handle)
    return found


def _device(lib: ctypes.CDLL, handle: ctypes.c_void_p, index: int, mig: bool) -> Device:
    name = _text(lib, "nvmlDeviceGetName", handle)
    uuid: str | None = _text(lib, "nvmlDeviceGetUUID", handle) or None
    memory = _Memory()
    memory_bytes = (
        int(memory.total) if _optional(lib, "nvmlDeviceGetMemoryInfo", handle, ctypes.byref(memory)) else None
    )
    if mig:
        gi, ci = ctypes.c_uint(), ctypes.c_uint()
        ids = None
        if _optional(lib, "nvmlDeviceGetGpuInstanceId", handle, ctypes.byref(gi)) and _optional(
            lib, "nvmlDeviceGetComputeInstanceId", handle, ctypes.byref(ci)
        ):
            ids = (gi.value, ci.value)
        return Device("nvidia", index, name, uuid, memory_bytes, mig_ids=ids)
    major, minor = ctypes.c_int(), ctypes.c_int()
    capability = None
    if _optional(lib, "nvmlDeviceGetCudaComputeCapability", handle, ctypes.byref(major), ctypes.byref(minor)):
        capability = f"{major.value}.{minor.value}"
    pci = _PciInfo()
    bus_id = None
    if _optional(lib, "nvmlDeviceGetPciInfo_v3", handle, ctypes.byref(pci)):
        bus_id = pci.busId.decode("ascii", "replace") or None
    current, pending = ctypes.c_uint(), ctypes.c_uint()
    mig_enabled: bool | None = None
    instances: list[Device] = []
    if _optional(lib, "nvmlDeviceGetMigMode", handle, ctypes.byref(current), ctypes.byref(pending)):
        mig_enabled = current.value == 1
    extra = _facts(lib, handle)
    if mig_enabled:
        slots = ctypes.c_uint()
        if _optional(lib, "nvmlDeviceGetMaxMigDeviceCount", handle, ctypes.byref(slots)):
            for slot in range(slots.value):
                child = ctypes.c_void_p()
                try:
                    present = _optional(
                        lib, "nvmlDeviceGetMigDeviceHandleByIndex", handle, slot, ctypes.byref(child)
                    )
                except NVMLError as exc:
                    if exc.code != NVML_ERROR_NO_PERMISSION:
                        raise
                    continue  # another container's instance: not ours to use
                if present:  # a MIG instance runs under its GPU's power cap and links
                    instances.append(_device(lib, child, len(instances), mig=True)._replace(**extra))
    return Device(
        "nvidia", index, name, uuid, memory_bytes, bus_id, capability, mig_enabled, tuple(instances), **extra
    )


def inventory(defer: Callable[[Callable[[], object]], None] | None = None) -> Inventory:
    """Every NVIDIA GPU this process may use, as NVML sees it, with driver and CUDA versions.

    ``nvmlDeviceGetCount_v2`` counts every GPU of the machine, even those whose handle is
    refused with ``NVML_ERROR_NO_PERMISSION`` (nvml.h), as happens to the GPUs a SLURM job
    was not given: those are left out. A GPU that fails otherwise is left out and named in
    the inventory's errors; the others keep their facts. Nearly all the cost is
    ``nvmlInit_v2`` and the first handle (``benchmarks/nvml_breakdown.py`` times each call).
    ``defer`` takes ``nvmlShutdown`` to call once the answer is handed over (nobody waits
    for it); without it, NVML is shut down before this returns.
    """
    lib = load()
    _check(lib, "nvmlInit_v2", lib.nvmlInit_v2())
    try:
        driver = _text(lib, "nvmlSystemGetDriverVersion") or None
        cuda = ctypes.c_int()
        cuda_driver = None
        if _optional(lib, "nvmlSystemGetCudaDriverVersion_v2", ctypes.byref(cuda)):
            cuda_driver = T.cuda_version(cuda.value)
        count = ctypes.c_uint()
        _check(lib, "nvmlDeviceGetCount_v2", lib.nvmlDeviceGetCount_v2(ctypes.byref(count)))
        devices: list[Device] = []
        notes: list[str] = []
        errors: list[str] = []
        for index in range(count.value):
            handle = ctypes.c_void_p()
            try:
                _check(
                    lib,
                    "nvmlDeviceGetHandleByIndex_v2",
                    lib.nvmlDeviceGetHandleByIndex_v2(ctypes.c_uint(index), ctypes.byref(handle)),
                )
                devices.append(_device(lib, handle, len(devices), mig=False))
            except NVMLError as exc:
                if exc.code == NVML_ERROR_NO_PERMISSION:
                    notes.append(f"NVML device {index}: no permission (not granted to this process)")
                else:
                    errors.append(f"NVMLError: NVML device {index}: {exc}")
    except BaseException:
        lib.nvmlShutdown()
        raise
    if defer is None:
        lib.nvmlShutdown()
    else:
        defer(lib.nvmlShutdown)
    return Inventory(
        "nvidia", "nvml", tuple(devices), driver, cuda_driver, notes=tuple(notes), errors=tuple(errors)
    )


def _forget() -> None:
    global _load_error
    _load_error = None  # the library may have been installed since


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


_session: ctypes.CDLL | None = None
_handles: dict[str, ctypes.c_void_p] = {}


def _open_session() -> ctypes.CDLL:
    """NVML initialised and kept so (see the module), once per process."""
    global _session
    lib = load()
    with _lock:
        if _session is None:
            _check(lib, "nvmlInit_v2", lib.nvmlInit_v2())
            _session = lib
        return _session


def _handle(lib: ctypes.CDLL, uuid: str) -> ctypes.c_void_p:
    handle = _handles.get(uuid)
    if handle is None:
        handle = ctypes.c_void_p()
        _check(
            lib,
            "nvmlDeviceGetHandleByUUID",
            lib.nvmlDeviceGetHandleByUUID(uuid.encode(), ctypes.byref(handle)),
        )
        _handles[uuid] = handle
    return handle


def _wide(lib: ctypes.CDLL, function: str, *args: object) -> int | None:
    value = ctypes.c_ulonglong()
    return value.value if _optional(lib, function, *args, ctypes.byref(value)) else None


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


def _forget_session() -> None:
    # A forked child has no NVML session of its own: it opens one when it first reads.
    global _session
    _session = None
    _handles.clear()


_state.register(reset=_forget, after_fork=_forget_session)
