"""The ``gpu`` collector: every vendor's inventory, narrowed to what the process may use.

Inventories are read once per process and root; which devices are visible is worked out
again whenever ``CUDA_VISIBLE_DEVICES`` (or ROCm's ``HIP_VISIBLE_DEVICES`` /
``ROCR_VISIBLE_DEVICES``) changes, which costs no new look at the hardware.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping

from .. import _platform
from .._context import Context
from .gpu import Device, Inventory, describe, gpu_tags, select_visible

#: Environment variables that change which GPUs are visible.
VISIBILITY_ENV = ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES")

Source = Callable[[Context], "Inventory | None"]

_lock = threading.Lock()
_inventories: dict[str, tuple[list[Inventory], list[str]]] = {}


def _sources() -> list[Source]:
    # Only this platform's modules are imported.
    if _platform.MACOS:
        from . import apple

        return [apple.inventory]
    if _platform.WINDOWS:
        from . import windows

        return [_windows_nvidia, windows.inventory]
    from . import amd, nvidia

    return [nvidia.inventory, amd.inventory]


def _windows_nvidia(ctx: Context) -> Inventory | None:  # pragma: no cover - needs Windows
    from . import _nvml

    try:
        return _nvml.inventory()
    except (OSError, _nvml.NVMLError):
        return None


def read_inventories(ctx: Context, sources: list[Source] | None = None) -> list[Inventory]:
    """Each vendor's inventory for this root, read once per process."""
    key = ctx.root.path
    with _lock:
        cached = _inventories.get(key)
    if cached is not None:
        ctx.errors.extend(cached[1])
        return cached[0]
    found: list[Inventory] = []
    for source in sources or _sources():
        try:
            inventory = source(ctx)
        except Exception as exc:  # one vendor failing leaves the others' facts
            ctx.note_error(exc)
            continue
        if inventory is not None:
            found.append(inventory)
    with _lock:
        _inventories[key] = (found, list(ctx.errors))
    return found


def visible_devices(inventories: list[Inventory], environ: Mapping[str, str] | None = None) -> list[Device]:
    """The devices the process may use, honouring each vendor's visibility variable."""
    env = os.environ if environ is None else environ
    devices: list[Device] = []
    seen_windows_nvidia = any(inv.vendor == "nvidia" for inv in inventories)
    for inventory in inventories:
        if inventory.vendor == "nvidia":
            devices.extend(select_visible(inventory.devices, env.get("CUDA_VISIBLE_DEVICES")))
        elif inventory.vendor == "amd":
            spec = env.get(
                "HIP_VISIBLE_DEVICES", env.get("ROCR_VISIBLE_DEVICES", env.get("CUDA_VISIBLE_DEVICES"))
            )
            devices.extend(select_visible(inventory.devices, spec))
        elif inventory.vendor == "windows":
            # NVML already listed the NVIDIA adapters; the registry adds the others.
            others = [d for d in inventory.devices if not (seen_windows_nvidia and d.vendor == "nvidia")]
            nvidia_ones = [d for d in others if d.vendor == "nvidia"]
            rest = [d for d in others if d.vendor != "nvidia"]
            devices.extend(select_visible(nvidia_ones, env.get("CUDA_VISIBLE_DEVICES")) + rest)
        else:
            devices.extend(inventory.devices)
    return devices


def collect(ctx: Context) -> dict[str, str]:
    """``sys.gpu``, ``sys.gpu_count`` and the other GPU tags for the visible GPUs."""
    inventories = read_inventories(ctx)
    devices = visible_devices(inventories)
    ctx.details.update(describe(devices, inventories))
    if not devices and ctx.errors:
        # No GPU found, but a source failed: "None" would be a guess, so say nothing.
        return {}
    return gpu_tags(devices, inventories)


def forget() -> None:
    """Drop the inventories read so far (tests, and :func:`mlflow_sysmetrics.collect` cache clears)."""
    with _lock:
        _inventories.clear()


def _reset_after_fork() -> None:
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
