"""Apple's GPUs: the chip on Apple silicon, ``system_profiler``'s list on Intel Macs.

``machdep.cpu.brand_string`` is the chip (``Apple M2 Max``), which is also the GPU; its
memory is the machine's unified memory (``hw.memsize``), both from the one ``sysctl`` call
the CPU collector makes (:func:`..macos.sysctl_values`). ``system_profiler`` takes hundreds
of milliseconds, so it is asked only on Intel Macs, whose GPUs ``sysctl`` cannot name.
"""

from __future__ import annotations

import json
import re

from ..._context import Context
from ..macos import sysctl_values
from .device import Device, Inventory
from .visibility import Visible

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


def _size(text: str | None) -> int | None:
    match = re.match(r"\s*(\d+(?:\.\d+)?)\s*(MB|GB)", text or "")
    if not match:
        return None
    return int(float(match.group(1)) * (1024**3 if match.group(2) == "GB" else 1024**2))


def parse_system_profiler(text: str) -> list[Device]:
    """Display devices from ``system_profiler SPDisplaysDataType -json``."""
    data = json.loads(text)
    items = data.get("SPDisplaysDataType", []) if isinstance(data, dict) else []
    devices: list[Device] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        name = item.get("sppci_model") or item.get("_name")
        if not isinstance(name, str) or not name.strip():
            continue
        vendor_text = str(item.get("spdisplays_vendor", "")).lower()
        vendor = next((v for v in ("amd", "intel", "nvidia", "apple") if v in vendor_text), "other")
        memory = _size(item.get("spdisplays_vram") or item.get("_spdisplays_vram"))
        devices.append(Device(vendor, len(devices), name.strip(), memory_bytes=memory))
    return devices


def inventory(ctx: Context) -> Inventory | None:
    """The GPU: the chip on Apple silicon; ``system_profiler``'s list on Intel Macs."""
    values = sysctl_values(ctx)
    brand = " ".join(values.get("machdep.cpu.brand_string", "").split())
    if brand.startswith("Apple"):
        try:
            memory: int | None = int(values.get("hw.memsize", ""))
        except ValueError:
            memory = None
        device = Device("apple", 0, brand, memory_bytes=memory, unified_memory=True)
        note = "unified memory: the GPU's memory is the machine's"
        return Inventory("apple", "sysctl", (device,), notes=(note,))
    try:
        text = ctx.run(["system_profiler", "SPDisplaysDataType", "-json"])
    except FileNotFoundError:
        return None
    return Inventory("apple", "system_profiler", tuple(parse_system_profiler(text)))


def visible(devices: Sequence[Device], env: Mapping[str, str]) -> Visible:
    """Every GPU: macOS has no variable that hides one from a process."""
    return Visible(list(devices), list(devices))
