"""The PCI bus: the one place that decides which devices are compute accelerators.

A device counts when its base class (``/sys/bus/pci/devices/*/class``, PCI Code and ID
Assignment Specification) is 0x03, display controller (VGA 0x0300, 3D 0x0302, other
0x0380), or 0x12, processing accelerator (``lspci`` prints "Processing accelerators
[1200]": AMD Instinct MI300 parts announce themselves so), and when it is bound to a
driver that serves it to the host. A device bound to ``vfio-pci`` or ``pci-stub`` is held
for a virtual machine, and one bound to no driver cannot run anything: neither is usable
here, and both are kept out (and named in the snapshot).
"""

from __future__ import annotations

import posixpath

from ..._files import Root, once_per_root
from ..._value import Record

DEVICES = "/sys/bus/pci/devices"
VENDOR_AMD = 0x1002
DISPLAY_CLASS = 0x03
ACCELERATOR_CLASS = 0x12
#: Drivers that hold a device for a guest: the host cannot use it.
PASSTHROUGH_DRIVERS = frozenset({"vfio-pci", "pci-stub", "pciback", "xen-pciback"})


class PciDevice(Record):
    """One PCI function, as sysfs describes it."""

    bus: str
    vendor: int
    device: int
    revision: int | None
    pci_class: int
    driver: str | None


def hex_value(text: str | None) -> int | None:
    """``0x1002`` (a sysfs id file) as an integer, or ``None``."""
    if not text:
        return None
    try:
        return int(text.strip(), 16)
    except ValueError:
        return None


@once_per_root
def _compute_functions(root: Root) -> list[PciDevice]:
    """Every display and processing-accelerator function on the bus, read once per root."""
    found = []
    for bus in root.listdir(DEVICES):
        base = f"{DEVICES}/{bus}"
        pci_class = hex_value(root.read_line(f"{base}/class"))
        if pci_class is None or pci_class >> 16 not in (DISPLAY_CLASS, ACCELERATOR_CLASS):
            continue
        found.append(
            PciDevice(
                bus,
                hex_value(root.read_line(f"{base}/vendor")) or 0,
                hex_value(root.read_line(f"{base}/device")) or 0,
                hex_value(root.read_line(f"{base}/revision")),
                pci_class,
                root.link_name(f"{base}/driver"),
            )
        )
    return found


def accelerators(root: Root, vendor: int) -> list[PciDevice]:
    """``vendor``'s display and processing-accelerator functions, in bus order, bound or not."""
    return [device for device in _compute_functions(root) if device.vendor == vendor]


def unusable_reason(device: PciDevice, driver: str) -> str | None:
    """Why ``device`` cannot run work on this host, or ``None`` when bound to ``driver``."""
    if device.driver == driver:
        return None
    if device.driver in PASSTHROUGH_DRIVERS:
        return f"{device.bus} is bound to {device.driver} (held for a virtual machine)"
    if device.driver is None:
        return f"{device.bus} is bound to no driver"
    return f"{device.bus} is bound to {device.driver}, not {driver}"


#: PCIe generation by link speed in GT/s (PCI Express Base Specification).
_GENERATIONS = {2.5: 1, 5.0: 2, 8.0: 3, 16.0: 4, 32.0: 5, 64.0: 6, 128.0: 7}


def generation(speed: str | None) -> int | None:
    """PCIe generation from a sysfs link speed such as ``32.0 GT/s PCIe``; ``None`` if unknown."""
    try:
        return _GENERATIONS.get(float((speed or "").split()[0]))
    except (ValueError, IndexError):
        return None


def is_function(name: str) -> bool:
    """Whether ``name`` is a PCI function's address as sysfs names it (``0000:00:01.1``)."""
    domain, _, rest = name.partition(":")
    bus, _, slot = rest.partition(":")
    device, _, function = slot.partition(".")
    return all(
        len(part) == size and all(c in "0123456789abcdef" for c in part)
        for part, size in ((domain, 4), (bus, 2), (device, 2), (function, 1))
    )


def _number(root: Root, path: str) -> int | None:
    try:
        value = int(root.read_line(path) or "")
    except ValueError:
        return None
    return value if value > 0 else None


def _full_speed(root: Root, ends: list[str], most: int) -> bool:
    """Whether the link runs at the generation ``most`` both ends allow (read at either end)."""
    for path in ends:
        current = generation(root.read_line(f"{path}/current_link_speed"))
        if current is not None:
            return current >= most
    return False


def link(
    root: Root, bus: str, *, internal_bridge_vendor: int | None = None, width_drops_when_idle: bool = False
) -> tuple[int, int] | None:
    """The device's link to the host: the generation both ends allow, and its width.

    ``max_link_speed`` is what one end supports (the kernel's ``pcie_get_speed_cap``); the
    link runs at the lower of its two ends, so the port above the device is read too: its
    folder is the parent of the device's in ``/sys/devices`` (the device's entry under
    ``/sys/bus/pci/devices`` links there). A vendor's own bridges in front of its device
    (an AMD dGPU's internal switch: ``internal_bridge_vendor``) are stepped over, as
    amdgpu's ``amdgpu_device_partner_bandwidth`` steps over them, to reach the slot's link;
    behind a PCIe switch of another vendor (DGX and HGX boards) the link read is the
    device's to that switch. The width is the negotiated one (``current_link_width``),
    except where the vendor's driver narrows the link in low power states
    (``width_drops_when_idle``, amdgpu's ``pp_dpm_pcie``, whose low levels lower the speed
    with the width): there a narrower width read while the link runs below the speed both
    ends allow is a power state, and the widths both ends support are told instead; at
    that full speed (``current_link_speed``) the link really runs at its width. Without
    the port above (a replayed tree that captured the device alone), the device's own values.
    """
    device = root.resolve(f"{DEVICES}/{bus}") or f"{DEVICES}/{bus}"
    end, upstream = device, None
    parent = posixpath.dirname(device)
    while is_function(posixpath.basename(parent)):
        vendor = hex_value(root.read_line(f"{parent}/vendor"))
        if internal_bridge_vendor is not None and vendor == internal_bridge_vendor:
            end, parent = parent, posixpath.dirname(parent)
            continue
        upstream = parent
        break
    ends = [path for path in (end, upstream) if path is not None]
    generations = [g for g in (generation(root.read_line(f"{p}/max_link_speed")) for p in ends) if g]
    if not generations or generation(root.read_line(f"{end}/max_link_speed")) is None:
        return None
    width = _number(root, f"{end}/current_link_width")
    if width_drops_when_idle and not (width and _full_speed(root, ends, min(generations))):
        widths = [w for w in (_number(root, f"{p}/max_link_width") for p in ends) if w]
        width = min(widths) if widths else width
    return (min(generations), width) if width else None
