"""Display adapters of Windows, from the registry; PowerShell's CIM query as the fallback.

The registry is read through :class:`..windows_registry.Registry`, whose real form wraps
:mod:`winreg`; tests replay recorded registry values through the same interface. The list
holds every vendor's adapters: an NVIDIA GPU that NVML lists too is left to NVML, and the
ones it alone lists are selected by NVIDIA's rules (the contract in :mod:`.`).
PowerShell's CIM query runs under the deadline.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..._context import Context
from ..windows_registry import Registry, WinRegistry
from .device import Device, Inventory
from .visibility import Visible

TYPE_CHECKING = False  # the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

#: The device class of display adapters.
DISPLAY_CLASS_KEY = r"SYSTEM\CurrentControlSet\Control\Class\{4d36e968-e325-11ce-bfc1-08002be10318}"

_VENDORS = {"10de": "nvidia", "1002": "amd", "8086": "intel", "1414": "microsoft", "5143": "qualcomm"}


def nvidia_driver_from_windows(version: str) -> str | None:
    """NVIDIA's own driver number from the Windows one: ``31.0.15.5222`` -> ``552.22``."""
    digits = "".join(version.split(".")[-2:])
    if len(digits) < 5 or not (digits.isascii() and digits.isdigit()):
        return None
    tail = digits[-5:]
    return f"{int(tail[:3])}.{tail[3:]}"


def _memory(values: dict[str, Any]) -> int | None:
    qword = values.get("HardwareInformation.qwMemorySize")
    if isinstance(qword, int) and qword > 0:
        return qword
    dword = values.get("HardwareInformation.MemorySize")
    if isinstance(dword, bytes) and dword:
        dword = int.from_bytes(dword[:8], "little")
    if isinstance(dword, int) and dword > 0:
        return dword
    return None


def adapters(registry: Registry) -> tuple[list[Device], dict[str, str]]:
    """Physical display adapters (PCI only) and each vendor's driver version."""
    devices: list[Device] = []
    drivers: dict[str, str] = {}
    for sub in registry.subkeys(DISPLAY_CLASS_KEY):
        if not (sub.isascii() and sub.isdigit()):  # "Properties", "Configuration"
            continue
        values = registry.values(f"{DISPLAY_CLASS_KEY}\\{sub}")
        name = values.get("DriverDesc")
        device_id = str(values.get("MatchingDeviceId", "")).lower()
        if not isinstance(name, str) or not device_id.startswith("pci\\"):
            continue  # the basic display driver, remote and indirect displays
        match = re.search(r"ven_([0-9a-f]{4})", device_id)
        vendor = _VENDORS.get(match.group(1), "other") if match else "other"
        driver = str(values.get("DriverVersion", "")) or None
        if vendor == "nvidia" and driver:
            driver = nvidia_driver_from_windows(driver) or driver
        if driver:
            drivers.setdefault(vendor, driver)
        devices.append(Device(vendor, len(devices), " ".join(name.split()), memory_bytes=_memory(values)))
    return devices, drivers


def parse_cim(text: str) -> list[Device]:
    """``Get-CimInstance Win32_VideoController | ConvertTo-Json`` (an object or a list)."""
    data = json.loads(text) if text.strip() else []
    items = data if isinstance(data, list) else [data]
    devices: list[Device] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("Name"), str):
            continue
        pnp = str(item.get("PNPDeviceID", "")).lower()
        if not pnp.startswith("pci\\"):
            continue
        match = re.search(r"ven_([0-9a-f]{4})", pnp)
        vendor = _VENDORS.get(match.group(1), "other") if match else "other"
        devices.append(Device(vendor, len(devices), item["Name"].strip()))
    return devices


def inventory(ctx: Context, registry: Registry | None = None) -> Inventory | None:
    """Display adapters from the registry, else from PowerShell's CIM query."""
    devices, drivers = adapters(registry or WinRegistry())
    if devices:
        driver = ", ".join(dict.fromkeys(drivers.values())) or None
        return Inventory("windows", "registry", tuple(devices), driver)
    try:
        text = ctx.run(
            [
                "powershell",
                "-NoProfile",
                "-NonInteractive",
                "-Command",
                "Get-CimInstance Win32_VideoController | "
                "Select-Object Name,PNPDeviceID,DriverVersion | ConvertTo-Json",
            ]
        )
    except FileNotFoundError:
        return None
    return Inventory("windows", "powershell", tuple(parse_cim(text)))


def visible(devices: Sequence[Device], env: Mapping[str, str]) -> Visible:
    """Every adapter: Windows has no variable of its own that hides one from a process.

    The adapters of a vendor with a row of its own (NVIDIA, AMD) are selected by that row's
    rule instead (see the contract in :mod:`.`).
    """
    return Visible(list(devices), list(devices))
