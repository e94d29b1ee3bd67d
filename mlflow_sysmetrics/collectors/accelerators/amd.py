"""AMD GPUs: the PCI bus and ``amdgpu``'s sysfs files first, the tools only to fill gaps.

Which devices count is decided by :mod:`.pci` (display and processing-accelerator classes,
bound to ``amdgpu``). ``amdgpu`` adds the memory size (``mem_info_vram_total``), the unique
id ROCm names a GPU by (``unique_id``) and, on some boards, the product name. Names come
from libdrm's ``amdgpu.ids`` table (device id and revision, the table ``rocm-smi`` and HIP
read too) for the data-centre parts; where a name is still missing or the table names
more than one product, the ``amdsmi`` library (when installed) or ``rocm-smi`` is asked,
under the deadline (it can take seconds). Integrated graphics (a Ryzen APU's) are listed
in the snapshot but are not accelerators a training run uses.
"""

from __future__ import annotations

import json

from ..._context import Context
from ..._files import Root, positive_int
from . import pci, visibility
from .device import Device, Inventory

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

AMD_VENDOR_ID = pci.VENDOR_AMD
DRIVER = "amdgpu"

#: Product names by (PCI device id, revision), as libdrm's data/amdgpu.ids writes them.
AMDGPU_IDS: dict[tuple[int, int], str] = {
    (0x66A1, 0x02): "AMD Instinct MI60 / MI50",
    (0x66A1, 0x06): "AMD Radeon Pro VII",
    (0x738C, 0x01): "AMD Instinct MI100",
    (0x7408, 0x00): "AMD Instinct MI250X",
    (0x740C, 0x01): "AMD Instinct MI250X / MI250",
    (0x740F, 0x02): "AMD Instinct MI210",
    (0x74A0, 0x00): "AMD Instinct MI300A",
    (0x74A1, 0x00): "AMD Instinct MI300X",
    (0x74A2, 0x00): "AMD Instinct MI308X",
    (0x74A5, 0x00): "AMD Instinct MI325X",
    (0x74A8, 0x00): "AMD Instinct MI308X HF",
    (0x74A9, 0x00): "AMD Instinct MI300X HF",
    (0x74B5, 0x00): "AMD Instinct MI300X VF",
    (0x74B6, 0x00): "AMD Instinct MI308X",
    (0x74BD, 0x00): "AMD Instinct MI300X HF",
    (0x75A0, 0x00): "AMD Instinct MI350X",
    (0x75A3, 0x00): "AMD Instinct MI355X",
    (0x75B0, 0x00): "AMD Instinct MI350X VF",
    (0x75B3, 0x00): "AMD Instinct MI355X VF",
}
#: Ids that pci.ids gives to more than one product, by the name it gives them.
SHARED_IDS: dict[int, str] = {
    0x66A0: "AMD Radeon Pro/Radeon Instinct",
    0x66A1: "AMD Radeon Pro VII/Radeon Instinct MI50 32GB",
}
#: Graphics built into Ryzen and other APUs (named "... Graphics" / "Radeon 610M" and the
#: like in amdgpu.ids, by code name in pci.ids): not accelerators for a training run.
INTEGRATED_IDS = frozenset(
    {
        *range(0x1309, 0x131E),  # Kaveri
        *range(0x9830, 0x983E),  # Kabini
        *range(0x9850, 0x9857),  # Mullins
        0x9874,  # Carrizo
        0x98E4,  # Stoney
        0x15DD,  # Raven
        0x15D8,  # Picasso
        0x1636,  # Renoir
        0x1638,  # Cezanne
        0x164C,  # Lucienne
        0x15E7,  # Barcelo
        0x163F,  # Van Gogh
        0x1435,  # custom APU
        0x1681,  # Rembrandt
        0x164E,  # Raphael
        0x13C0,  # Granite Ridge
        0x1506,  # Mendocino
        0x15BF,  # Phoenix
        0x15C8,  # Phoenix 2
        0x1900,  # Hawk Point
        0x1901,  # Hawk Point 2
        0x150E,  # Strix Point
        0x1586,  # Strix Halo
        0x1114,  # Krackan Point
        0x1902,  # Krackan Point
    }
)


def _named(name: str) -> str:
    name = " ".join(name.split())
    return name if name.upper().startswith("AMD") else f"AMD {name}"


def uuid_from_unique_id(text: str | None) -> str | None:
    """ROCm's name for a GPU (``GPU-4b2c1a7e0a6e7c3d``) from its unique id (``0x4b2c...`` or bare hex)."""
    if not text:
        return None
    digits = text.strip().lower().removeprefix("0x")
    if not digits or digits in ("n/a", "0") or any(c not in "0123456789abcdef" for c in digits):
        return None
    return f"GPU-{digits}"


def table_name(device_id: int, revision: int | None) -> tuple[str | None, bool]:
    """The product name by PCI id, and whether it names one product (no tool need confirm it)."""
    name = AMDGPU_IDS.get((device_id, revision)) if revision is not None else None
    if name is None:
        names = {n for (d, _), n in AMDGPU_IDS.items() if d == device_id}
        if device_id in SHARED_IDS:
            return SHARED_IDS[device_id], False
        name = names.pop() if len(names) == 1 else None
    if name is None:
        return None, False
    return name, "/" not in name


def power_cap_w(root: Root, base: str) -> float | None:
    """The power cap ``amdgpu`` enforces, from its hwmon ``power1_cap`` (microwatts)."""
    for hwmon in root.listdir(f"{base}/hwmon"):
        microwatts = positive_int(root.read_line(f"{base}/hwmon/{hwmon}/power1_cap"))
        if microwatts:
            return microwatts / 1e6
    return None


#: AMD's dGPUs sit behind a PCIe switch of their own (upstream port 1002:1478, downstream
#: 1479); the slot's link is above it (see :func:`.pci.link`).
INTERNAL_BRIDGE_VENDOR = AMD_VENDOR_ID
#: amdgpu lowers the link's width in low power states, with its speed (``pp_dpm_pcie``: see
#: :func:`.pci.link`).
WIDTH_DROPS_WHEN_IDLE = True
#: The HSA topology the KFD driver publishes: one node per CPU and per GPU agent, in the
#: order the ROCr runtime (and so HIP and PyTorch) enumerates the agents.
KFD_NODES = "/sys/class/kfd/kfd/topology/nodes"


def _properties(text: str | None) -> dict[str, str]:
    """``name value`` lines of a KFD topology ``properties`` file."""
    found = {}
    for line in (text or "").splitlines():
        name, _, value = line.strip().partition(" ")
        if value:
            found[name] = value.strip()
    return found


def _location(bus: str) -> tuple[int, int] | None:
    """KFD's ``(domain, location_id)`` of a PCI function: ``bus << 8 | device << 3 | function``."""
    try:
        domain, number, slot = bus.split(":")
        device, function = slot.split(".")
        return int(domain, 16), int(number, 16) << 8 | int(device, 16) << 3 | int(function, 16)
    except ValueError:
        return None


def kfd_agents(root: Root) -> dict[tuple[int, int], list[tuple[str | None, int | None]]]:
    """The GPU agents of the KFD topology by PCI location: each one's unique id and memory.

    A GPU in a compute partition mode is several agents on one PCI function (AMD's MI300X
    partitioning guide: "CPX mode creates eight independent compute partitions per GPU",
    each its own device to HIP and PyTorch), each with its partition's memory
    (``mem_banks/<n>/properties`` ``size_in_bytes``).
    """
    agents: dict[tuple[int, int], list[tuple[str | None, int | None]]] = {}
    names = [n for n in root.listdir(KFD_NODES) if n.isascii() and n.isdigit()]
    for node in sorted(names, key=int):
        props = _properties(root.read(f"{KFD_NODES}/{node}/properties"))
        if props.get("simd_count", "0") == "0":  # a CPU agent
            continue
        try:
            where = (int(props.get("domain", "0")), int(props["location_id"]))
        except (KeyError, ValueError):
            continue
        memory = 0
        for bank in root.listdir(f"{KFD_NODES}/{node}/mem_banks"):
            bank_props = _properties(root.read(f"{KFD_NODES}/{node}/mem_banks/{bank}/properties"))
            memory += positive_int(bank_props.get("size_in_bytes")) or 0
        unique = props.get("unique_id", "")
        uuid = uuid_from_unique_id(f"{int(unique):x}") if unique.isascii() and unique.isdigit() else None
        agents.setdefault(where, []).append((uuid, memory or None))
    return agents


def _partitions(root: Root, base: str, bus: str, device: Device, notes: list[str]) -> list[Device]:
    """``device`` as the logical devices its compute partition mode makes (itself in SPX mode)."""
    mode = root.read_line(f"{base}/current_compute_partition")
    if not mode or mode.upper() == "SPX":
        return [device]
    memory_mode = root.read_line(f"{base}/current_memory_partition")
    where = _location(bus)
    found = kfd_agents(root).get(where, []) if where else []
    if len(found) <= 1:
        notes.append(f"{bus}: compute partition mode {mode}, but the KFD topology lists no partitions")
        return [device]
    memory_note = f", memory partition mode {memory_mode}" if memory_mode else ""
    notes.append(f"{bus}: compute partition mode {mode}{memory_note}: {len(found)} devices")
    return [
        device._replace(uuid=uuid or device.uuid, memory_bytes=memory or device.memory_bytes)
        for uuid, memory in found
    ]


def from_sysfs(root: Root) -> Inventory | None:
    """AMD accelerators on the PCI bus that ``amdgpu`` serves, with what it tells of them."""
    return _from_sysfs(root)[0]


def _from_sysfs(root: Root) -> tuple[Inventory | None, bool]:
    """:func:`from_sysfs`, and whether a tool must still be asked for a name or a size."""
    devices: list[Device] = []
    notes: list[str] = []
    unsure = False
    for found in pci.accelerators(root, AMD_VENDOR_ID):
        reason = pci.unusable_reason(found, DRIVER)
        if reason is not None:
            notes.append(reason)
            continue
        base = f"{pci.DEVICES}/{found.bus}"
        product = root.read_line(f"{base}/product_name")
        name, final = table_name(found.device, found.revision)
        memory = positive_int(root.read_line(f"{base}/mem_info_vram_total"))
        integrated = found.device in INTEGRATED_IDS
        if not integrated and (memory is None or not (product or final)):
            unsure = True
        pcie = pci.link(
            root,
            found.bus,
            internal_bridge_vendor=INTERNAL_BRIDGE_VENDOR,
            width_drops_when_idle=WIDTH_DROPS_WHEN_IDLE,
        )
        device = Device(
            "amd",
            0,
            _named(product) if product else name or f"AMD GPU [1002:{found.device:04x}]",
            uuid_from_unique_id(root.read_line(f"{base}/unique_id")),
            memory_bytes=memory,
            bus_id=found.bus,
            integrated=integrated,
            power_limit_w=power_cap_w(root, base),
            pcie_generation=pcie[0] if pcie else None,
            pcie_width=pcie[1] if pcie else None,
        )
        for logical in _partitions(root, base, found.bus, device, notes):
            devices.append(logical._replace(index=len(devices)))
    if not devices and not notes:
        return None, False
    driver = root.read_line("/sys/module/amdgpu/version")
    return Inventory("amd", "sysfs", tuple(devices), driver, notes=tuple(notes)), unsure


def _fields(card: dict[str, Any]) -> dict[str, str]:
    # rocm-smi's keys changed case across releases ("Card series" before ROCm 6, "Card
    # Series" since); the values are what matter.
    return {str(k).strip().lower(): text for k, v in card.items() if (text := _text(v))}


def parse_rocm_smi(text: str) -> tuple[list[Device], str | None]:
    """The JSON of ``rocm-smi`` asked :data:`ROCM_SMI_ARGS` (product, VRAM, driver, bus, unique id)."""
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
        driver = _fields(system).get("driver version")
    for key in cards:
        card = data[key]
        if not isinstance(card, dict):
            continue
        fields = _fields(card)
        # "Card Series" is the product; "Card Model" is a PCI id and "Card SKU" a board part
        # number (D70701), neither of them a name.
        name = fields.get("card series")
        driver = driver or fields.get("driver version")
        devices.append(
            Device(
                "amd",
                int(key[4:]),
                _named(name) if name else "",
                uuid_from_unique_id(fields.get("unique id")),
                positive_int(fields.get("vram total memory (b)")),
                fields.get("pci bus"),
                fields.get("gfx version"),
            )
        )
    return devices, driver


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


ROCM_SMI_ARGS = (
    "rocm-smi",
    "--showproductname",
    "--showmeminfo",
    "vram",
    "--showdriverversion",
    "--showbus",
    "--showuniqueid",
    "--json",
)


def from_rocm_smi(ctx: Context) -> Inventory | None:
    """AMD GPUs as ``rocm-smi`` tells them; ``None`` when it is not installed."""
    try:
        text = ctx.run(ROCM_SMI_ARGS)
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
            market = _text(asic.get("market_name"))
            devices.append(
                Device(
                    "amd",
                    index,
                    _named(market) if market else "",
                    # ROCm names a GPU by its ASIC serial (what PyTorch matches against too).
                    uuid_from_unique_id(_text(asic.get("asic_serial"))),
                    int(size_mib) * 1024 * 1024 if isinstance(size_mib, int) and size_mib > 0 else None,
                    _text(amdsmi.amdsmi_get_gpu_device_bdf(handle)),
                    _text(asic.get("target_graphics_version")),
                )
            )
    finally:
        amdsmi.amdsmi_shut_down()
    return Inventory("amd", "amdsmi", tuple(devices), driver)


def _bus_key(bus: str | None) -> str:
    return (bus or "").strip().lower()


def _fill(pci_devices: Inventory, tool: Inventory) -> Inventory:
    """The PCI list (it decides which devices count) with the tool's names, ids and sizes."""
    by_bus = {_bus_key(d.bus_id): d for d in tool.devices if d.bus_id}
    devices = []
    for device in pci_devices.devices:
        told = by_bus.get(_bus_key(device.bus_id))
        if told is None:
            devices.append(device)
            continue
        # the tool names the product better than the table; sysfs's other facts stand
        devices.append(device._filled_from(told)._replace(name=told.name or device.name))
    return pci_devices._replace(
        source=f"{pci_devices.source}+{tool.source}",
        devices=tuple(devices),
        driver=pci_devices.driver or tool.driver,
    )


def inventory(ctx: Context) -> Inventory | None:
    """AMD GPUs by the cheapest source that names them; ``None`` when there are none."""
    found, unsure = _from_sysfs(ctx.root)
    if found is None or not unsure:
        return found
    sources: list[Callable[[], Inventory | None]] = [lambda: from_rocm_smi(ctx)]
    if ctx.root.is_live:
        sources.insert(0, from_amdsmi)
    for source in sources:
        try:
            told = source()
        except Exception as exc:  # a vendor tool or library failing is one clause, not a crash
            ctx.note_error(exc)
            continue
        if told is not None and told.devices:
            return _fill(found, told)
    return found


def visible(devices: Sequence[Device], env: Mapping[str, str]) -> visibility.Visible:
    """What a ROCm process enumerates: ROCR's variable, then HIP's, else CUDA's (see :mod:`.visibility`)."""
    rocr, hip, cuda = (
        env.get(name) for name in ("ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES")
    )
    picked = visibility.rocm(devices, rocr, hip, cuda)
    return visibility.Visible(picked, picked)
