"""The ``gpu`` collector: every vendor's inventory, narrowed to what the process may use.

Inventories are read once per process and root; which devices are visible is worked out
(:mod:`.visibility`) again whenever ``CUDA_VISIBLE_DEVICES``, ``CUDA_DEVICE_ORDER`` or
ROCm's ``ROCR_VISIBLE_DEVICES`` / ``HIP_VISIBLE_DEVICES`` change, which costs no new look
at the hardware. Integrated graphics are left out of the tags (they stay in the snapshot).
"""

from __future__ import annotations

import os
import threading

from .. import _platform, _state
from .. import tags as T
from .._context import Context
from .._files import Root, once_per_root
from . import pci

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from .gpu import Device, Inventory

    Source = Callable[[Context], "Inventory | None"]

#: Environment variables that change which GPUs are visible.
VISIBILITY_ENV = ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES")

_lock = threading.Lock()
_inventories: dict[str, tuple[list[Inventory], list[str]]] = {}


def has_sources(root: Root) -> bool:
    """Whether this machine has a GPU source to ask (one that may be slow or hang)."""
    return bool(_sources(root))


@once_per_root
def _sources(root: Root) -> list[Source]:
    """The sources for this platform, and on Linux only those whose hardware is there.

    A vendor's module (and what it imports: ``ctypes`` for NVML, ``csv``, ``json``) is
    loaded only when its driver or device is present: the NVIDIA driver's ``/proc`` folder,
    WSL's ``/dev/dxg`` or the NVML library itself; an AMD accelerator on the PCI bus.
    Looked up once per root.
    """
    if _platform.MACOS:
        from . import apple

        return [apple.inventory]
    if _platform.WINDOWS:
        from . import windows

        return [_windows_nvidia, windows.inventory]
    sources: list[Source] = []
    if root.exists("/proc/driver/nvidia") or (root.is_live and (root.exists("/dev/dxg") or _nvml_present())):
        from . import nvidia

        sources.append(nvidia.inventory)
    found = pci.accelerators(root, pci.VENDOR_AMD)
    if found:
        from . import amd

        sources.append(lambda ctx: amd.inventory(ctx, found))
    return sources


#: Where the driver installs NVML (Debian, Red Hat, WSL, the NVIDIA container toolkit).
NVML_FOLDERS = (
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/usr/lib/wsl/lib",
    "/usr/local/nvidia/lib64",
)


def _nvml_present() -> bool:
    """Whether ``libnvidia-ml.so.1`` is where the loader would look (a few stats, no ``dlopen``)."""
    folders = [*os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep), *NVML_FOLDERS]
    return any(folder and os.path.exists(os.path.join(folder, "libnvidia-ml.so.1")) for folder in folders)


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
    for source in sources if sources is not None else _sources(ctx.root):
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


class Selection:
    """The devices a process may use, the whole GPUs it was given, and what is not known."""

    __slots__ = ("chosen_gpus", "devices", "unknown")

    def __init__(self, devices: list[Device], chosen_gpus: list[Device], unknown: list[str]) -> None:
        self.devices = devices
        self.chosen_gpus = chosen_gpus
        self.unknown = unknown


def visible_devices(inventories: list[Inventory], environ: Mapping[str, str] | None = None) -> Selection:
    """The devices the process may use, honouring each vendor's visibility variables."""
    from . import visibility

    env = os.environ if environ is None else environ
    devices: list[Device] = []
    chosen: list[Device] = []
    unknown: list[str] = []
    nvml_seen = any(inv.vendor == "nvidia" for inv in inventories)
    for inventory in inventories:
        if inventory.vendor == "amd":
            picked = visibility.rocm(
                inventory.devices,
                env.get("ROCR_VISIBLE_DEVICES"),
                env.get("HIP_VISIBLE_DEVICES"),
                env.get("CUDA_VISIBLE_DEVICES"),
            )
            devices.extend(d for d in picked if not d.integrated)
            continue
        if inventory.vendor == "windows":
            # NVML already listed the NVIDIA adapters; the registry adds the others.
            own = [d for d in inventory.devices if not (nvml_seen and d.vendor == "nvidia")]
            nvidia = [d for d in own if d.vendor == "nvidia"]
            others = [d for d in own if d.vendor != "nvidia"]
        elif inventory.vendor == "nvidia":
            nvidia, others = list(inventory.devices), []
        else:
            devices.extend(d for d in inventory.devices if not d.integrated)
            continue
        if nvidia:
            seen = visibility.cuda(nvidia, env.get("CUDA_VISIBLE_DEVICES"), env.get("CUDA_DEVICE_ORDER"))
            devices.extend(seen.devices)
            chosen.extend(seen.gpus)
            if seen.unknown:
                unknown.append(seen.unknown)
        devices.extend(d for d in others if not d.integrated)
    return Selection(devices, chosen, unknown)


def collect(ctx: Context) -> dict[str, str]:
    """``sys.gpu``, ``sys.gpu_count`` and the other GPU tags for the visible GPUs."""
    inventories = read_inventories(ctx)
    if not inventories:  # no GPU driver or device here: nothing more to import or ask
        ctx.details.update(gpus=[], gpu_sources=[])
        return {} if ctx.errors else {T.GPU: T.NO_GPU, T.GPU_COUNT: "0"}
    from .gpu import describe, gpu_tags

    selection = visible_devices(inventories)
    ctx.details.update(describe(selection.devices, inventories))
    for inventory in inventories:
        ctx.errors.extend(inventory.errors)
    devices = []
    for device in selection.devices:
        reason = T.implausible(device.name) if device.name else None
        if reason:  # the device is there; its name is not one
            ctx.errors.append(f"ValueError: a GPU model name that cannot be true ({reason}); left out")
        devices.append(device._replace(name="") if reason else device)
    ctx.errors.extend(selection.unknown)
    if not devices and ctx.errors:
        # No GPU found, but a source failed: "None" would be a guess, so say nothing.
        return {}
    found = gpu_tags(devices, inventories, selection.chosen_gpus)
    if selection.unknown:
        for key in (T.GPU, T.GPU_MEMORY_GB, T.GPU_COMPUTE_CAPABILITY):
            found.pop(key, None)
    return found


def _forget() -> None:
    with _lock:
        _inventories.clear()


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()


_state.register(reset=_forget, after_fork=_after_fork_in_child)
