"""NVML's pass: every NVIDIA GPU this process may use, with every fact, in one session.

Builds each :class:`..device.Device` from NVML (through the binding :mod:`._nvml`), the facts
of :data:`.facts.FACTS` included; walks the MIG instances of a GPU in MIG mode; and leaves
out the GPUs and instances NVML refuses with ``NVML_ERROR_NO_PERMISSION`` (not granted to
this process: a SLURM job's cgroup, another container's instance).
"""

from __future__ import annotations

import ctypes

from ...._value import cuda_version
from ..device import Device, Inventory
from ._nvml import (
    NVML_ERROR_INVALID_ARGUMENT,
    NVML_ERROR_NO_PERMISSION,
    NVMLError,
    _check,
    _Memory,
    _optional,
    _PciInfo,
    _text,
    load,
)
from .facts import FACTS

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

#: nvml.h's NVML_NVLINK_MAX_LINKS: links are asked by index up to this many.
NVLINK_MAX_LINKS = 18


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
    """The facts of :data:`.facts.FACTS` (power cap, PCIe link, ...) and the active NVLink links."""
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
            cuda_driver = cuda_version(cuda.value)
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
