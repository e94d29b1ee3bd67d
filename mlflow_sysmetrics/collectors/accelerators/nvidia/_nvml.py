"""A small ctypes binding to NVIDIA's management library (NVML): loading, errors, structures.

Why not ``nvidia-ml-py`` (``pynvml``)? It is a binding to this same library, and importing it
costs more than the whole pass here before NVML is even initialised (figures in the README's
Performance section); these dozen calls cost nothing to define. ``nvmlInit`` and
``nvmlShutdown`` are reference counted by NVML, so this coexists with other users of NVML
in the process (MLflow's system metrics, PyTorch). Two users here: the facts' pass
(:mod:`.nvml_pass`) initialises, reads and shuts down, keeping no handle; the run's ledger
(:mod:`.counters`) keeps one session open (:func:`_open_session`) from its first reading on,
so that a run's two readings cost microseconds, not a driver initialisation. A forked child
opens its own.
"""

from __future__ import annotations

import ctypes
import os

from .... import _platform, _state

NVML_SUCCESS = 0
NVML_ERROR_NOT_SUPPORTED = 3
#: nvml.h: a device the caller may not use, e.g. one a SLURM job's cgroup does not grant.
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_INVALID_ARGUMENT = 2
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


class _AccountingStatsV2(ctypes.Structure):
    # nvml.h nvmlAccountingStats_v2_t (driver 610 and newer): the utilization samples' sums
    _fields_ = [
        ("pid", ctypes.c_uint),
        ("isRunning", ctypes.c_uint),
        ("gpuUtilization", ctypes.c_uint),
        ("memoryUtilization", ctypes.c_uint),
        ("maxMemoryUsage", ctypes.c_ulonglong),
        ("sampleCount", ctypes.c_uint),
        ("sumGpuUtil", ctypes.c_ulonglong),
        ("sumFbUtil", ctypes.c_ulonglong),
        ("time", ctypes.c_ulonglong),
        ("startTime", ctypes.c_ulonglong),
    ]


class _GpmSupport(ctypes.Structure):
    # nvml.h nvmlGpmSupport_t (version NVML_GPM_SUPPORT_VERSION, 1)
    _fields_ = [("version", ctypes.c_uint), ("isSupportedDevice", ctypes.c_uint)]


class _GpmMetric(ctypes.Structure):
    # nvml.h nvmlGpmMetric_t: metricId in; nvmlReturn, value and metricInfo (three names) out
    _fields_ = [
        ("metricId", ctypes.c_uint),
        ("nvmlReturn", ctypes.c_uint),
        ("value", ctypes.c_double),
        ("shortName", ctypes.c_char_p),
        ("longName", ctypes.c_char_p),
        ("unit", ctypes.c_char_p),
    ]


#: Room for ``metrics[NVML_GPM_METRIC_MAX]``, which each nvml.h sizes anew (333 in CUDA 13's,
#: 477 in nvidia-ml-py 13.615's): the library reads ``numMetrics`` of them, and finds room for
#: all of its own should it touch more.
GPM_METRIC_ROOM = 512


class _GpmMetricsGet(ctypes.Structure):
    # nvml.h nvmlGpmMetricsGet_t (version NVML_GPM_METRICS_GET_VERSION, 1); a sample
    # (nvmlGpmSample_t) is an opaque pointer, alone in its struct in the newer headers
    _fields_ = [
        ("version", ctypes.c_uint),
        ("numMetrics", ctypes.c_uint),
        ("sample1", ctypes.c_void_p),
        ("sample2", ctypes.c_void_p),
        ("metrics", _GpmMetric * GPM_METRIC_ROOM),
    ]


class _Value(ctypes.Union):
    # nvml.h nvmlValue_t
    _fields_ = [
        ("dVal", ctypes.c_double),
        ("uiVal", ctypes.c_uint),
        ("ulVal", ctypes.c_ulong),
        ("ullVal", ctypes.c_ulonglong),
        ("sllVal", ctypes.c_longlong),
        ("siVal", ctypes.c_int),
        ("usVal", ctypes.c_ushort),
    ]


class _FieldValue(ctypes.Structure):
    # nvml.h nvmlFieldValue_t, as nvmlDeviceGetFieldValues fills it
    _fields_ = [
        ("fieldId", ctypes.c_uint32),
        ("scopeId", ctypes.c_uint32),
        ("timestamp", ctypes.c_int64),
        ("latencyUsec", ctypes.c_int64),
        ("valueType", ctypes.c_uint),
        ("nvmlReturn", ctypes.c_uint),
        ("value", _Value),
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


def _forget() -> None:
    global _load_error
    _load_error = None  # the library may have been installed since


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


def _forget_session() -> None:
    # A forked child has no NVML session of its own: it opens one when it first reads.
    global _session
    _session = None
    _handles.clear()


_state.register(reset=_forget, after_fork=_forget_session)
