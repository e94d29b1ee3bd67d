"""NVIDIA's fallbacks to NVML: the driver's ``/proc`` files and ``nvidia-smi``.

Used where NVML cannot be loaded or initialised, and on a replayed machine
(``MLFLOW_SYSMETRICS_ROOT``): the driver's ``/proc`` files give model, UUID, bus and driver
version without a subprocess, and one ``nvidia-smi --query-gpu`` call adds the rest (the
fields of :data:`.facts.FACTS`), with the CUDA version from ``nvidia-smi --version`` (or its
status table's header); sysfs gives each GPU's PCIe link (:func:`..pci.link`).

The parsers import ``re`` and ``csv`` themselves, once each where used: NVML's path imports
neither, and this module only when a fallback runs.
"""

from __future__ import annotations

from ...._context import Context
from ...._files import Root
from .. import pci
from ..device import Device, Inventory
from .facts import FACTS, QUERY_FIELDS, REQUIRED_FIELDS, _clean

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from typing import Any

_DRIVER = r"Kernel Module\b.*?\s(\d+\.\d+(?:\.\d+)*)(?:\s|$)"
_CUDA = r"(?i)CUDA[\w ]*?Version\s*:\s*(\d+\.\d+)"
#: A GPU UUID as the driver writes it; an uninitialised GPU shows ``GPU-????????-...`` instead.
_UUID = r"^GPU-[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$"
_MIG_LINE = r"^\s+MIG\s+(\S+)\s+Device\s+(\d+):\s*\(UUID:\s*(MIG-[^)\s]+)\)"
_GPU_LINE = r"^GPU\s+(\d+):.*\(UUID:\s*(GPU-[^)\s]+)\)"


def parse_information(text: str) -> dict[str, str]:
    """``/proc/driver/nvidia/gpus/*/information``: ``Key: value`` lines."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            values[key.strip()] = value.strip()
    return values


def parse_driver_version(text: str) -> str | None:
    """Driver version from ``/proc/driver/nvidia/version`` (``580.159.04``)."""
    import re

    match = re.search(_DRIVER, text)
    return match.group(1) if match else None


def gpu_uuid(text: str | None) -> str | None:
    """``text`` when it is a GPU UUID; ``None`` for the placeholder of a GPU not yet initialised."""
    import re

    return text if text and re.match(_UUID, text) else None


def from_proc(root: Root) -> Inventory | None:
    """NVIDIA GPUs named by the driver's ``/proc`` files, or ``None`` without the driver.

    ``/proc/driver/nvidia`` is not namespaced: a container given one of eight GPUs still
    lists all eight there. What the process may open is told by ``/dev``: without
    ``/dev/nvidiactl`` no GPU can be used at all, and a GPU counts only when its
    ``/dev/nvidia<minor>`` is there. (A replayed tree that captured no ``/dev`` is not filtered.)
    """
    folders = root.listdir("/proc/driver/nvidia/gpus")
    if not folders:
        return None
    driver = parse_driver_version(root.read("/proc/driver/nvidia/version") or "")
    filter_by_node = root.exists("/dev")
    if filter_by_node and not root.exists("/dev/nvidiactl"):
        note = f"/dev/nvidiactl is missing: none of the {len(folders)} GPUs the driver lists can be opened"
        return Inventory("nvidia", "proc", (), driver, notes=(note,))
    devices: list[Device] = []
    for bus in folders:
        info = parse_information(root.read(f"/proc/driver/nvidia/gpus/{bus}/information") or "")
        name = info.get("Model")
        if not name or info.get("GPU Excluded", "No").lower().startswith("yes"):
            continue
        minor = info.get("Device Minor")
        if filter_by_node and minor and not root.exists(f"/dev/nvidia{minor}"):
            continue
        devices.append(
            Device(
                "nvidia",
                len(devices),
                name,
                gpu_uuid(info.get("GPU UUID")),
                bus_id=info.get("Bus Location") or bus,
            )
        )
    return Inventory("nvidia", "proc", tuple(devices), driver)


def _mib(value: str) -> int | None:
    import re

    match = re.match(r"\s*(\d+(?:\.\d+)?)\s*(MiB|GiB)?\s*$", value)
    if not match:
        return None
    number = float(match.group(1))
    return int(number * (1024**3 if match.group(2) == "GiB" else 1024**2))


def parse_query_csv(text: str) -> tuple[list[Device], str | None]:
    """Rows of ``nvidia-smi --query-gpu=... --format=csv`` (with header) as devices and driver."""
    import csv
    import re

    try:
        rows = [row for row in csv.reader(text.splitlines(), skipinitialspace=True) if row]
    except csv.Error:
        return [], None
    if not rows:
        return [], None
    header = [re.sub(r"\s*\[.*\]$", "", h.strip()) for h in rows[0]]
    devices: list[Device] = []
    driver = None
    for row in rows[1:]:
        values = dict(zip(header, (cell.strip() for cell in row), strict=False))
        name = _clean(values.get("name"))
        if not name:
            continue
        driver = driver or _clean(values.get("driver_version"))
        memory = _clean(values.get("memory.total"))
        mig = _clean(values.get("mig.mode.current"))
        bus = _clean(values.get("pci.bus_id"))
        uuid = gpu_uuid(_clean(values.get("uuid")))
        device = Device(
            "nvidia",
            len(devices),
            name,
            uuid,
            _mib(memory) if memory else None,
            bus,
            _clean(values.get("compute_cap")),
            None if mig is None else mig.lower() == "enabled",
        )
        devices.append(
            device._replace(**{fact.field: fact.smi_value(values.get(fact.smi)) for fact in FACTS})
        )
    return devices, driver


def _with_links(ctx: Context, inventory: Inventory) -> Inventory:
    """The fallback inventory with each GPU's PCIe link: from sysfs, else as ``nvidia-smi`` told it.

    sysfs gives both ends of the link (see :func:`.pci.link`). A MIG instance runs under
    its GPU's power cap and links, so it shares them.
    """
    devices = []
    for device in inventory.devices:
        pcie = pci.link(ctx.root, _sysfs_bus(device.bus_id)) if device.bus_id else None
        shared: dict[str, Any] = {fact.field: getattr(device, fact.field) for fact in FACTS}
        if pcie is not None:
            shared.update(pcie_generation=pcie[0], pcie_width=pcie[1])
        instances = tuple(i._replace(**shared) for i in device.mig_devices)
        devices.append(device._replace(**shared, mig_devices=instances))
    return inventory._replace(devices=tuple(devices))


def _sysfs_bus(bus: str | None) -> str:
    """``0000:00:06.0`` as sysfs names a device, from NVIDIA's ``00000000:00:06.0``."""
    domain, _, rest = (bus or "").lower().partition(":")
    try:
        return f"{int(domain, 16):04x}:{rest}"
    except ValueError:
        return (bus or "").lower()


def parse_cuda_version(text: str) -> str | None:
    """CUDA driver version from ``nvidia-smi``'s header or ``nvidia-smi -q``."""
    import re

    match = re.search(_CUDA, text)
    return match.group(1) if match else None


def parse_list(text: str) -> dict[str, list[Device]]:
    """MIG instances per GPU UUID from ``nvidia-smi -L``."""
    import re

    found: dict[str, list[Device]] = {}
    current: str | None = None
    for line in text.splitlines():
        gpu = re.match(_GPU_LINE, line)
        if gpu:
            current = gpu.group(2)
            found[current] = []
            continue
        mig = re.match(_MIG_LINE, line)
        if mig and current is not None:
            found[current].append(Device("nvidia", int(mig.group(2)), f"MIG {mig.group(1)}", mig.group(3)))
    return found


def _cuda_from_nvidia_smi(ctx: Context) -> str | None:
    # "--version" prints the CUDA version on recent drivers and asks the GPUs nothing; the
    # full status table (whose header also has it) queries every GPU, several times slower
    # (figures in the README's Performance section).
    try:
        cuda = parse_cuda_version(ctx.run(["nvidia-smi", "--version"]))
    except (RuntimeError, OSError):
        cuda = None
    return cuda or parse_cuda_version(ctx.run(["nvidia-smi"]))


def _refused_field(message: str) -> str | None:
    """The field that ``Field "compute_cap" is not a valid field to query.`` names, if any."""
    import re

    match = re.search(r'Field "([^"]+)" is not a valid field', message)
    return match.group(1) if match else None


def from_nvidia_smi(ctx: Context) -> Inventory | None:
    """One ``nvidia-smi --query-gpu`` call for all GPUs, plus its header for CUDA's version.

    ``None`` when ``nvidia-smi`` is not installed; errors (a hang, a non-zero exit) raise.
    """
    fields = QUERY_FIELDS.split(",")
    while True:
        try:
            text = ctx.run(["nvidia-smi", f"--query-gpu={','.join(fields)}", "--format=csv"])
            break
        except FileNotFoundError:
            return None
        except RuntimeError as exc:
            refused = _refused_field(str(exc))
            if refused not in fields or refused in REQUIRED_FIELDS:
                raise
            fields.remove(refused)  # an older driver: ask again without it
    devices, driver = parse_query_csv(text or "")
    if not devices:
        raise ValueError("nvidia-smi printed no GPU rows that could be read")
    cuda = _cuda_from_nvidia_smi(ctx)
    if any(d.mig_enabled for d in devices):
        instances = parse_list(ctx.run(["nvidia-smi", "-L"]))
        devices = [
            d._replace(
                mig_devices=tuple(
                    Device("nvidia", m.index, f"{d.name} {m.name}", m.uuid)
                    for m in instances.get(d.uuid or "", [])
                )
            )
            for d in devices
        ]
    return Inventory("nvidia", "nvidia-smi", tuple(devices), driver, cuda)


def _merge(proc: Inventory, smi: Inventory) -> Inventory:
    """``/proc``'s list (it honours the container's device nodes) filled in from ``nvidia-smi``."""
    by_uuid: dict[str | None, Device] = {d.uuid: d for d in smi.devices if d.uuid}
    by_bus = {_bus_key(d.bus_id): d for d in smi.devices if d.bus_id}
    devices = []
    for device in proc.devices:
        extra = by_uuid.get(device.uuid) or by_bus.get(_bus_key(device.bus_id))
        if extra is None:
            devices.append(device)
            continue
        devices.append(device._filled_from(extra))  # /proc's identity, the rest nvidia-smi's
    return Inventory(
        "nvidia",
        "proc+nvidia-smi",
        tuple(devices),
        proc.driver or smi.driver,
        smi.cuda_driver,
    )


def _bus_key(bus: str | None) -> str:
    # nvidia-smi writes 00000000:00:06.0, the kernel 0000:00:06.0.
    if not bus:
        return ""
    domain, _, rest = bus.lower().partition(":")
    try:
        return f"{int(domain, 16)}:{rest}"
    except ValueError:
        return bus.lower()


def inventory(ctx: Context, failure: Exception | None = None) -> Inventory | None:
    """The driver's ``/proc`` list filled in by ``nvidia-smi`` and sysfs; ``None`` without the driver.

    ``failure``: why NVML could not be used, noted as an error where the driver lists GPUs
    (NVML should have answered for them).
    """
    root = ctx.root
    proc = from_proc(root)
    if failure is not None and proc is not None:
        ctx.note_error(failure)
    if proc is None or not proc.devices:
        # No NVIDIA driver here: nvidia-smi, if installed at all, could only fail.
        return proc
    try:
        smi = from_nvidia_smi(ctx)
    except (RuntimeError, TimeoutError, OSError, ValueError) as exc:
        ctx.note_error(exc)
        return proc
    return proc if smi is None else _with_links(ctx, _merge(proc, smi))
