"""macOS: the CPU model and, on Apple silicon, the GPU, from one ``sysctl`` call.

``machdep.cpu.brand_string`` is the chip (``Apple M2 Max``), which is also the GPU; its
memory is the machine's unified memory (``hw.memsize``). ``system_profiler`` takes hundreds
of milliseconds, so it is asked only on Intel Macs, whose GPUs ``sysctl`` cannot name.
"""

from __future__ import annotations

import json
import re
import threading

from .. import _state
from .. import tags as T
from .._context import Context
from . import cpu
from .gpu import Device, Inventory

SYSCTL_NAMES = ("machdep.cpu.brand_string", "hw.memsize")

_lock = threading.Lock()
_values: dict[str, str] | None = None


def parse_sysctl(text: str) -> dict[str, str]:
    """``name: value`` lines of ``sysctl NAME...``."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and value.strip():
            values[name.strip()] = value.strip()
    return values


def sysctl_values(ctx: Context) -> dict[str, str]:
    """The ``sysctl`` values we use, read once per process (shared by the CPU and GPU)."""
    global _values
    if not _lock.acquire(timeout=max(ctx.remaining(), 0.001)):
        raise TimeoutError("sysctl gave no answer in time")
    try:
        if _values is None:
            _values = parse_sysctl(ctx.run(["sysctl", *SYSCTL_NAMES]))
        return _values
    finally:
        _lock.release()


def _forget() -> None:
    global _values
    _values = None


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()


_state.register(reset=_forget, after_fork=_after_fork_in_child)


def collect_cpu(ctx: Context) -> dict[str, str]:
    """CPU tags on macOS: the chip name from ``sysctl``, counts from ``os`` and psutil."""
    found = cpu.collect_counts(ctx)
    brand = sysctl_values(ctx).get("machdep.cpu.brand_string")
    if brand:
        found[T.CPU] = " ".join(brand.split())
    return found


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
