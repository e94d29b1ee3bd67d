"""The ``gpu`` collector: every vendor's inventory, narrowed to what the process may use.

One contract for every vendor: a vendor is one row of :data:`VENDORS` and one module (or
package) beside this one. The row says on which platforms it applies, how to tell cheaply
(without importing its module) that its driver or device is here, and which environment
variables change what a process may use. The module is a :class:`.contract.VendorModule`:

- ``inventory(ctx: Context) -> Inventory | None``: its devices on this machine, and
- ``visible(devices, env) -> Visible``: which of them a process may use under ``env``
  (its runtime's own grammar of ``*_VISIBLE_DEVICES``), and the whole GPUs chosen.

A source that lists every vendor's devices (Windows' display adapters, macOS's
``system_profiler``) has ``lists_others``: each of its devices is selected by the rule of
its own vendor's row where one applies, and is left to that vendor's own inventory where it
has one (an NVIDIA GPU NVML lists). A new vendor is one module plus one row.

Inventories are read once per process and root; which devices are visible is worked out
again whenever one of the rows' variables changes, which costs no new look at the
hardware. Integrated graphics are left out of the tags (they stay in the snapshot).
"""

from __future__ import annotations

import os

from ... import _platform, _state
from ... import tags as T
from ..._context import Context
from ..._files import Root, once_per_root
from ..._value import Record, implausible
from . import pci

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from types import ModuleType

    from .contract import VendorModule
    from .device import Device, Inventory
    from .visibility import Visible


class Vendor(Record):
    """One row of the contract (see the module): a vendor, or a source of several vendors' devices."""

    name: str
    platforms: tuple[str, ...]
    present: Callable[[Root], bool]
    env: tuple[str, ...] = ()
    lists_others: bool = False

    def module(self) -> VendorModule:
        """The vendor's module (imported now, if not yet: only where its hardware is present)."""
        # __import__ rather than importlib.import_module: importlib's own import is not free
        package: ModuleType = __import__(__name__, fromlist=[self.name])
        module: VendorModule = getattr(package, self.name)
        return module


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


def _nvidia_present(root: Root) -> bool:
    """The NVIDIA driver's ``/proc`` folder, WSL's ``/dev/dxg`` or the NVML library; Windows: always."""
    if _platform.WINDOWS:
        return True
    if root.exists("/proc/driver/nvidia"):
        return True
    return root.is_live and (root.exists("/dev/dxg") or _nvml_present())


def _amd_present(root: Root) -> bool:
    """An AMD display or processing accelerator on the PCI bus."""
    return bool(pci.accelerators(root, pci.VENDOR_AMD))


def _always(root: Root) -> bool:
    return True


VENDORS: tuple[Vendor, ...] = (
    Vendor("nvidia", ("linux", "windows"), _nvidia_present, ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")),
    # HIP reads CUDA_VISIBLE_DEVICES where HIP_VISIBLE_DEVICES is unset (see .visibility)
    Vendor(
        "amd",
        ("linux",),
        _amd_present,
        ("ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"),
    ),
    Vendor("apple", ("macos",), _always, lists_others=True),
    Vendor("windows", ("windows",), _always, lists_others=True),
)
#: Environment variables that change which GPUs are visible (every row's).
VISIBILITY_ENV: tuple[str, ...] = tuple(dict.fromkeys(name for vendor in VENDORS for name in vendor.env))


def _here(platform: str) -> dict[str, Vendor]:
    return {vendor.name: vendor for vendor in VENDORS if platform in vendor.platforms}


_inventories: dict[str, tuple[list[Inventory], list[str]]] = _state.memo()
#: The roots whose inventories a thread of this process is reading now (a wedged driver's stay).
_reading: set[str] = set()
_lock = _state.lock()


def _forget_readers() -> None:
    # The threads reading in the parent do not exist in a forked child.
    _reading.clear()


_state.register(after_fork=_forget_readers)


def has_sources(root: Root) -> bool:
    """Whether this machine has a GPU source to ask (one that may be slow or hang)."""
    return bool(_sources(root))


@once_per_root
def _sources(root: Root) -> list[Vendor]:
    """The rows for this platform whose hardware is present (looked up once per root).

    A vendor's module (and what it imports: ``ctypes`` for NVML, ``csv``, ``json``) is
    loaded only when its driver or device is present.
    """
    return [vendor for vendor in _here(_platform.NAME).values() if vendor.present(root)]


def read_inventories(ctx: Context, sources: Sequence[Vendor] | None = None) -> list[Inventory]:
    """Each present vendor's inventory for this root, read once per process."""
    key = ctx.root.path
    with _lock:
        cached = _inventories.get(key)
        if cached is None:
            _reading.add(key)
    if cached is not None:
        ctx.errors.extend(cached[1])
        return cached[0]
    found: list[Inventory] = []
    try:
        for vendor in sources if sources is not None else _sources(ctx.root):
            try:
                inventory = vendor.module().inventory(ctx)
            except Exception as exc:  # one vendor failing leaves the others' facts
                ctx.note_error(exc)
                continue
            if inventory is not None:
                found.append(inventory)
        with _lock:
            _inventories[key] = (found, list(ctx.errors))
    finally:
        with _lock:
            _reading.discard(key)
    return found


def cached_inventories(root: Root) -> list[Inventory] | None:
    """The inventories this process has read for ``root``, without reading; ``None`` where none was."""
    with _lock:
        cached = _inventories.get(root.path)
    return None if cached is None else cached[0]


def inventories_under_way(root: Root) -> bool:
    """Whether a read of ``root``'s inventories has begun and not ended (a driver that does not answer)."""
    with _lock:
        return root.path in _reading and root.path not in _inventories


class Selection(Record):
    """The devices a process may use, the whole GPUs it was given, and why some are not known."""

    devices: list[Device]
    chosen_gpus: list[Device]
    unknown_reasons: list[str]


def visible_devices(
    inventories: Sequence[Inventory], environ: Mapping[str, str] | None = None, platform: str | None = None
) -> Selection:
    """The devices the process may use, each selected by its own vendor's rule (see the module)."""
    env = os.environ if environ is None else environ
    rows = _here(platform or _platform.NAME)
    own = {inv.vendor for inv in inventories if inv.vendor in rows and not rows[inv.vendor].lists_others}
    selection = Selection([], [], [])
    for inventory in inventories:
        lists_others = inventory.vendor in rows and rows[inventory.vendor].lists_others
        groups: dict[str, list[Device]] = {}
        for device in inventory.devices:
            if lists_others and device.vendor in own and device.vendor != inventory.vendor:
                continue  # its vendor's own inventory lists it
            groups.setdefault(device.vendor if lists_others else inventory.vendor, []).append(device)
        for vendor, devices in groups.items():
            row = rows.get(vendor)
            seen: Visible | None = row.module().visible(devices, env) if row is not None else None
            chosen = seen.devices if seen is not None else devices
            selection.devices.extend(d for d in chosen if not d.integrated)
            selection.chosen_gpus.extend(seen.gpus if seen is not None else devices)
            if seen is not None and seen.unknown_reason:
                selection.unknown_reasons.append(seen.unknown_reason)
    return selection


def collect(ctx: Context) -> dict[str, str]:
    """``sys.gpu``, ``sys.gpu_count`` and the other GPU tags for the visible GPUs."""
    inventories = read_inventories(ctx)
    if not inventories:  # no GPU driver or device here: nothing more to import or ask
        ctx.details.update(gpus=[], gpu_sources=[])
        return {} if ctx.errors else {T.GPU: T.NO_GPU, T.GPU_COUNT: "0"}
    from .device import describe, gpu_tags

    selection = visible_devices(inventories)
    ctx.details.update(describe(selection.devices, inventories))
    for inventory in inventories:
        ctx.errors.extend(inventory.errors)
    devices = []
    for device in selection.devices:
        reason = implausible(device.name) if device.name else None
        if reason:  # the device is there; its name is not one
            ctx.errors.append(f"ValueError: a GPU model name that cannot be true ({reason}); left out")
        devices.append(device._replace(name="") if reason else device)
    ctx.errors.extend(selection.unknown_reasons)
    if not devices and ctx.errors:
        # No GPU found, but a source failed: "None" would be a guess, so say nothing.
        return {}
    found = gpu_tags(devices, inventories, selection.chosen_gpus)
    if selection.unknown_reasons:
        for key in (T.GPU, T.GPU_MEMORY_GB, T.GPU_COMPUTE_CAPABILITY):
            found.pop(key, None)
    return found
