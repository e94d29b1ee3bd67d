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

from ... import _state
from ..._context import Context
from ..._files import Root, positive_int
from . import pci, visibility
from .device import Device, Inventory

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

    from .counters import Counters

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


# The run's ledger: one GPU's cumulative counters through amdsmi (the contract's optional part,
# see .counters).

#: The unit of the energy counter in amdgpu's gpu_metrics: 2^-16 J (``kgd_pp_interface.h``:
#: "Energy (15.259uJ (2^-16) units)"). amdsmi reports it as ``counter_resolution`` 15.3, a
#: float32 it hard-codes "since all ASICs have same resolution" (``rocm_smi.cc``,
#: ``kEnergyCounterResolution``): the same unit rounded, 0.27 % high.
ENERGY_UNIT_UJ = 1e6 / 2**16
#: PCI device ids whose power firmware keeps a 64-bit energy counter: the MI200 series
#: (``aldebaran_ppt.c``: ``EnergyAcc64bitHigh << 32 | EnergyAcc64bitLow``) and the MI300 and
#: MI350 series (``smu_v13_0_6_ppt.c``, ``smu_v13_0_12_ppt.c``: ``SocketEnergyAcc``, 64-bit).
WIDE_ENERGY_IDS = frozenset({0x7408, 0x740C, 0x740F, *range(0x74A0, 0x74C0), *range(0x75A0, 0x75C0)})
#: What a 32-bit and a 64-bit counter read where the driver has no energy to give (``UINT_MAX``:
#: ``smu_v14_0_2_ppt.c``, and ``smu_v13_0_7_ppt.c`` on newer firmware; gpu_metrics tables
#: start all ones, ``smu_cmn_init_soft_gpu_metrics``).
NOT_AVAILABLE = (2**32 - 1, 2**64 - 1)
#: ``gfx_activity_acc`` is a 32-bit field of gpu_metrics (``gpu_metrics_v1_6``).
ACTIVITY_MODULUS = 2**32

_amdsmi_lock = _state.lock()
#: What does not change while amdsmi's session lasts, by PCI bus: the handle, the PCI device id,
#: the board's maximum power and why it is not known.
_amdsmi_devices: dict[str, tuple[Any, int | None, float | None, str | None]] = {}
_amdsmi_open: list[bool] = []


def _amdsmi_reason(exc: BaseException) -> str:
    """One line for what an amdsmi call raised (its ``AmdSmiLibraryException`` text spans lines)."""
    info = getattr(exc, "err_info", None)
    return str(info) if info else " ".join(str(exc).split()) or type(exc).__name__


def _amdsmi_device(amdsmi: Any, bus: str) -> tuple[Any, int | None, float | None, str | None]:
    """The amdsmi handle of the GPU at PCI ``bus`` and its fixed facts, the session opened once."""
    key = _bus_key(bus)
    with _amdsmi_lock:
        known = _amdsmi_devices.get(key)
        if known is not None:
            try:  # a handle is good while the session lasts: the program may have shut it down
                if _bus_key(str(amdsmi.amdsmi_get_gpu_device_bdf(known[0]))) == key:
                    return known
            except Exception:  # a stale handle: looked up afresh below
                pass
            _amdsmi_devices.clear()
            _amdsmi_open.clear()
        if not _amdsmi_open:
            amdsmi.amdsmi_init()  # never shut down: see counters()
            _amdsmi_open.append(True)
        handle = None
        for candidate in amdsmi.amdsmi_get_processor_handles():
            if _bus_key(str(amdsmi.amdsmi_get_gpu_device_bdf(candidate))) == key:
                handle = candidate
                break
        if handle is None:
            raise LookupError(f"amdsmi lists no GPU at {bus}")
        found = (handle, _pci_device_id(bus), *_board_maximum(amdsmi, handle, bus))
        _amdsmi_devices[key] = found
        return found


def _machine() -> Root:
    """The machine's files, where the settings say (the ledger reads counters on the live root only)."""
    from ... import settings

    return Root(settings.current().root)


def _pci_device_id(bus: str) -> int | None:
    return pci.hex_value(_machine().read_line(f"{pci.DEVICES}/{bus}/device"))


def _board_maximum(amdsmi: Any, handle: Any, bus: str) -> tuple[float | None, str | None]:
    """The most power the board may be set to draw (W), and why not where it cannot be told.

    amdsmi's ``amdsmi_get_power_cap_info`` ``max_power_cap`` (microwatts, its Python API
    reference), else hwmon's ``power1_cap_max`` (microwatts, Linux ``Documentation/gpu/amdgpu/
    thermal.rst``). A figure under 1 W is not a board's maximum in microwatts.
    """
    why = None
    try:
        microwatts = amdsmi.amdsmi_get_power_cap_info(handle).get("max_power_cap")
    except Exception as exc:
        microwatts, why = None, f"amdsmi's amdsmi_get_power_cap_info failed: {_amdsmi_reason(exc)}"
    if isinstance(microwatts, int) and microwatts >= 1_000_000:
        return microwatts / 1e6, None
    if microwatts is not None:
        why = f"amdsmi's max_power_cap {microwatts!r} is not a board's maximum in microwatts"
    base = f"{pci.DEVICES}/{bus}/hwmon"
    root = _machine()
    for hwmon in root.listdir(base):
        cap = positive_int(root.read_line(f"{base}/{hwmon}/power1_cap_max"))
        if cap is not None and cap >= 1_000_000:
            return cap / 1e6, None
    return None, why or "neither amdsmi nor hwmon's power1_cap_max states the board's maximum"


def _energy_unit_uj(resolution: object) -> float | None:
    """Microjoules per count: the firmware's 2^-16 J where amdsmi gives it rounded, else amdsmi's figure."""
    if not isinstance(resolution, (int, float)) or not resolution > 0:
        return None
    return ENERGY_UNIT_UJ if abs(resolution - ENERGY_UNIT_UJ) < 0.05 else float(resolution)


def _number(value: object) -> int | None:
    # amdsmi answers "N/A" for a field the device's gpu_metrics table does not have
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _ask(amdsmi: Any, handle: Any, function: str, fields: tuple[str, ...], why: list[tuple[str, str]]) -> Any:
    """What amdsmi's ``function`` says of ``handle``, or ``None`` with the reason for each of ``fields``."""
    call = getattr(amdsmi, function, None)
    problem = f"this amdsmi has no {function} (an older library)"
    if call is not None:
        try:
            return call(handle)
        except Exception as exc:
            problem = f"amdsmi's {function} failed: {_amdsmi_reason(exc)}"
    why.extend((field, problem) for field in fields)
    return None


def _energy(
    amdsmi: Any, handle: Any, device_id: int | None, why: list[tuple[str, str]]
) -> tuple[int | None, int | None]:
    """The energy counter in millijoules and where it wraps (see :func:`counters`)."""
    answer = _ask(amdsmi, handle, "amdsmi_get_energy_count", ("energy_mj",), why)
    if not isinstance(answer, dict):
        return None, None
    # "power": the same counter, under the only name older amdsmi gives it (ROCm 6.0)
    count = _number(answer.get("energy_accumulator", answer.get("power")))
    unit = _energy_unit_uj(answer.get("counter_resolution"))
    if count is None or unit is None:
        why.append(("energy_mj", f"amdsmi's energy count has no counter and resolution: {answer!r}"))
        return None, None
    if count in NOT_AVAILABLE:
        why.append(("energy_mj", f"the driver marks its energy counter not available ({count:#x})"))
        return None, None
    if count == 0:
        why.append(("energy_mj", "its energy counter reads 0 (an MI200's second die: its first counts both)"))
        return None, None
    wide = count > NOT_AVAILABLE[0] or device_id in WIDE_ENERGY_IDS
    if unit == ENERGY_UNIT_UJ:  # exact: 1000 mJ per 65536 counts
        return count * 1000 // 2**16, None if wide else 2**32 * 1000 // 2**16
    return int(count * unit / 1000), None if wide else round(2**32 * unit / 1000)


def counters(device: Device) -> Counters:
    """The cumulative counters of the AMD GPU ``device`` now, through amdsmi (found by PCI bus id).

    - Energy: ``amdsmi_get_energy_count``'s ``energy_accumulator`` (``power`` in older
      amdsmi) in the firmware's unit, 2^-16 J (15.259 uJ; amdsmi's ``counter_resolution``
      15.3 is that unit rounded and is read as it, any other resolution as given). The
      counter is 64-bit on the MI200 series (both halves of ``EnergyAcc64bitHigh/Low``) and
      on the MI300 and MI350 series (``SocketEnergyAcc``); every other board copies a 32-bit
      firmware counter into gpu_metrics (``uint32_t EnergyAccumulator`` of the SMU 11 tables:
      MI100, Radeon RX 5000/6000; SMU 13.0.0/13.0.7: Radeon RX 7000, Radeon PRO W7000; SMU
      14.0.2: Radeon RX 9000), which wraps every 65.5 kJ, under four minutes at 300 W. amdsmi
      does not give the table's version, so the rule is the PCI device id
      (:data:`WIDE_ENERGY_IDS`), and any reading above 2^32 - 1 is a 64-bit counter's: a
      32-bit one carries ``energy_modulus_mj`` (65,536,000 mJ) and the ledger follows its
      wraps. All ones (``UINT_MAX``, UINT64_MAX) mean "not available"; 0 means the device
      counts none (the MI200's second die, whose module's energy is counted on its first).
    - ``power_w``: gpu_metrics' ``current_socket_power`` (MI300 series) or
      ``average_socket_power`` (W), which tells a counter that stands still (an MI100's
      firmware, amdsmi before ROCm 6.1 within one session) from an idle device.
    - ``busy``, ``busy_of``: gpu_metrics' ``gfx_activity_acc`` (the busy percentage summed at
      each accumulation cycle, a 32-bit field) and 100 x ``accumulation_counter`` (the
      cycles), which only the MI300 series' gpu_metrics v1.6 and later carry. The activity
      count wraps at 2^32 (``busy_modulus``) and grows by at most 100 a cycle, but neither
      ``kgd_pp_interface.h`` ("Accumulation cycle counter") nor amdsmi's documents say how
      many cycles a second the firmware counts: with no bound on its growth in time, no
      guard period follows it, and a run over which it may have wrapped more than once gets
      no busy share (the ledger says so).
    - ``max_power_w``: the board's maximum power cap (``amdsmi_get_power_cap_info``
      ``max_power_cap``, else hwmon ``power1_cap_max``).
    - ``ecc_uncorrected``: ``amdsmi_get_gpu_total_ecc_count``'s ``uncorrectable_count``;
      ``pcie_replays``: ``amdsmi_get_gpu_pci_replay_counter``.

    Each call fails alone: what one raises, or a function this amdsmi lacks, costs its fields
    only, named in ``why``. amdsmi keeps one session per process and does not count its users
    (``amdsmi_init`` does nothing while one is open, ``amdsmi_shut_down`` closes it for every
    caller, the program's own included): the ledger opens it on its first reading and never
    shuts it down, so that each reading costs a few calls, not an initialisation, and a
    session the program holds is never closed under it.
    """
    try:
        import amdsmi
    except ImportError:
        raise ImportError("AMD GPU counters require the amdsmi package (ROCm's amd-smi library)") from None

    from .counters import Counters

    if not device.bus_id:
        raise LookupError(f"{device.name} has no PCI bus id to find it by in amdsmi")
    handle, device_id, max_power_w, max_why = _amdsmi_device(amdsmi, device.bus_id)
    why: list[tuple[str, str]] = [] if max_why is None else [("max_power_w", max_why)]
    energy_mj, modulus = _energy(amdsmi, handle, device_id, why)

    metrics = _ask(amdsmi, handle, "amdsmi_get_gpu_metrics_info", ("busy", "busy_of"), why) or {}
    power = _number(metrics.get("current_socket_power"))
    power = power if power is not None else _number(metrics.get("average_socket_power"))
    busy, cycles = _number(metrics.get("gfx_activity_acc")), _number(metrics.get("accumulation_counter"))
    if metrics and (busy is None or cycles is None):
        lacking = "its gpu_metrics table has no accumulated activity (the MI300 series' v1.6 and later have)"
        why.extend((("busy", lacking), ("busy_of", lacking)))
        busy = cycles = None
    ecc = _ask(amdsmi, handle, "amdsmi_get_gpu_total_ecc_count", ("ecc_uncorrected",), why)
    replays = _ask(amdsmi, handle, "amdsmi_get_gpu_pci_replay_counter", ("pcie_replays",), why)
    return Counters(
        energy_mj=energy_mj,
        energy_modulus_mj=modulus,
        ecc_uncorrected=_number(ecc.get("uncorrectable_count")) if isinstance(ecc, dict) else None,
        pcie_replays=_number(replays),
        busy=busy,
        busy_of=cycles * 100 if cycles is not None else None,
        busy_modulus=ACTIVITY_MODULUS if busy is not None else None,
        max_power_w=max_power_w,
        power_w=float(power) if power else None,
        why=tuple(why),
    )


def _forget_amdsmi_session() -> None:
    # A forked child asks amdsmi again for its handles (amdsmi_init there is harmless).
    _amdsmi_devices.clear()
    _amdsmi_open.clear()


_state.register(after_fork=_forget_amdsmi_session)
