"""AMD GPUs: the PCI bus and ``amdgpu``'s sysfs files first, the tools only to fill gaps.

``/sys/bus/pci/devices`` counts AMD display devices (vendor ``0x1002``) without any tool,
and ``amdgpu`` adds the memory size (``mem_info_vram_total``) and, on recent kernels, the
product name. Only when a name or size is still missing is the ``amdsmi`` library tried
(when installed), then ``rocm-smi``, which can take 1 to 3 s and so runs under the deadline.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from .._context import Context
from .._files import Root
from .gpu import Device, Inventory

_LOG = logging.getLogger("mlflow_sysmetrics")

AMD_VENDOR_ID = 0x1002
#: PCI base class 0x03 (display): VGA 0x0300, 3D 0x0302, other display 0x0380 (Instinct).
DISPLAY_CLASS = 0x03
#: Names of data-centre parts by PCI device id, for machines without ROCm tools.
DEVICE_NAMES: dict[int, str] = {
    0x66A1: "AMD Instinct MI50",
    0x738C: "AMD Instinct MI100",
    0x7408: "AMD Instinct MI250X",
    0x740C: "AMD Instinct MI250X/MI250",
    0x740F: "AMD Instinct MI210",
    0x74A0: "AMD Instinct MI300A",
    0x74A1: "AMD Instinct MI300X",
    0x74A5: "AMD Instinct MI325X",
}


def _hex(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(text.strip(), 16)
    except ValueError:
        return None


def _bytes(text: str | None) -> int | None:
    try:
        value = int((text or "").strip())
    except ValueError:
        return None
    return value if value > 0 else None


def _named(name: str) -> str:
    name = " ".join(name.split())
    return name if name.upper().startswith("AMD") else f"AMD {name}"


def from_sysfs(root: Root) -> Inventory | None:
    """AMD display devices on the PCI bus, with what ``amdgpu`` tells of them."""
    devices: list[Device] = []
    for bus in root.listdir("/sys/bus/pci/devices"):
        base = f"/sys/bus/pci/devices/{bus}"
        vendor = _hex(root.read_line(f"{base}/vendor"))
        klass = _hex(root.read_line(f"{base}/class"))
        if vendor != AMD_VENDOR_ID or klass is None or klass >> 16 != DISPLAY_CLASS:
            continue
        device_id = _hex(root.read_line(f"{base}/device")) or 0
        product = root.read_line(f"{base}/product_name")
        name = _named(product) if product else DEVICE_NAMES.get(device_id, f"AMD GPU [1002:{device_id:04x}]")
        devices.append(
            Device(
                "amd",
                len(devices),
                name,
                memory_bytes=_bytes(root.read_line(f"{base}/mem_info_vram_total")),
                bus_id=bus,
            )
        )
    if not devices:
        return None
    driver = root.read_line("/sys/module/amdgpu/version")
    return Inventory("amd", "sysfs", tuple(devices), driver)


def _complete(inventory: Inventory) -> bool:
    return all(d.memory_bytes and not d.name.startswith("AMD GPU [") for d in inventory.devices)


def parse_rocm_smi(text: str) -> tuple[list[Device], str | None]:
    """``rocm-smi --showproductname --showmeminfo vram --showdriverversion --showbus --json``."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("rocm-smi printed JSON that is not an object")
    devices: list[Device] = []
    cards = sorted(
        (key for key in data if key.startswith("card") and key[4:].isascii() and key[4:].isdigit()),
        key=lambda key: int(key[4:]),
    )
    driver = None
    system = data.get("system")
    if isinstance(system, dict):
        driver = _text(system.get("Driver version"))
    for key in cards:
        card = data[key]
        if not isinstance(card, dict):
            continue
        name = _text(card.get("Card series")) or _text(card.get("Card SKU")) or _text(card.get("Card model"))
        if not name:
            continue
        driver = driver or _text(card.get("Driver version"))
        devices.append(
            Device(
                "amd",
                int(key[4:]),
                _named(name),
                _text(card.get("Unique ID")),
                _bytes(_text(card.get("VRAM Total Memory (B)"))),
                _text(card.get("PCI Bus")),
                _text(card.get("GFX Version")),
            )
        )
    return devices, driver


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def from_rocm_smi(ctx: Context) -> Inventory | None:
    """AMD GPUs as ``rocm-smi`` tells them; ``None`` when it is not installed."""
    args = [
        "rocm-smi",
        "--showproductname",
        "--showmeminfo",
        "vram",
        "--showdriverversion",
        "--showbus",
        "--json",
    ]
    try:
        text = ctx.run(args)
    except FileNotFoundError:
        return None
    devices, driver = parse_rocm_smi(text)
    return Inventory("amd", "rocm-smi", tuple(devices), driver)


def from_amdsmi() -> Inventory | None:
    """AMD GPUs through the ``amdsmi`` library, when it is installed."""
    try:
        import amdsmi
    except ImportError:
        return None
    amdsmi.amdsmi_init()
    try:
        devices = []
        driver = None
        for index, handle in enumerate(amdsmi.amdsmi_get_processor_handles()):
            asic = amdsmi.amdsmi_get_gpu_asic_info(handle)
            vram = amdsmi.amdsmi_get_gpu_vram_info(handle)
            size_mib = vram.get("vram_size") if isinstance(vram, dict) else None
            info = amdsmi.amdsmi_get_gpu_driver_info(handle)
            driver = driver or (info.get("driver_version") if isinstance(info, dict) else None)
            devices.append(
                Device(
                    "amd",
                    index,
                    _named(str(asic.get("market_name") or "GPU")),
                    _text(amdsmi.amdsmi_get_gpu_device_uuid(handle)),
                    int(size_mib) * 1024 * 1024 if isinstance(size_mib, int) and size_mib > 0 else None,
                    _text(amdsmi.amdsmi_get_gpu_device_bdf(handle)),
                    _text(asic.get("target_graphics_version")),
                )
            )
    finally:
        amdsmi.amdsmi_shut_down()
    return Inventory("amd", "amdsmi", tuple(devices), driver)


def inventory(ctx: Context) -> Inventory | None:
    """AMD GPUs by the cheapest source that names them; ``None`` when there are none."""
    pci = from_sysfs(ctx.root)
    if pci is None or _complete(pci):
        return pci
    sources: list[Callable[[], Inventory | None]] = [lambda: from_rocm_smi(ctx)]
    if ctx.root.is_live:
        sources.insert(0, from_amdsmi)
    for source in sources:
        try:
            found = source()
        except Exception as exc:  # a vendor tool or library failing is one clause, not a crash
            ctx.note_error(exc)
            continue
        if found is not None and found.devices:
            return Inventory(
                "amd",
                found.source,
                found.devices,
                found.driver or pci.driver,
            )
    return pci
