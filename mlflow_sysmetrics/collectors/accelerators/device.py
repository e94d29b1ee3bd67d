"""GPUs of every vendor, as one list, and how that list is told in tags.

Vendor modules (:mod:`.nvidia`, :mod:`.amd`, :mod:`.apple`, :mod:`.windows`) return an
:class:`Inventory` of :class:`Device` records; once each vendor's rule has selected what the
process may use, this module writes the ``sys.gpu*`` tags.
"""

from __future__ import annotations

from ... import tags as T
from ..._value import Record, decimal, gb

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any


class Device(Record):
    """One GPU (or one MIG instance or compute partition of one).

    ``integrated``: graphics built into the CPU package (an APU's), listed but not a training
    accelerator. ``mig_ids``: a MIG instance's GPU instance and compute instance ids (the old
    ``MIG-GPU-<uuid>/<gi>/<ci>`` names). ``power_limit_w``: the power limit the GPU enforces,
    in watts (a MIG instance: its GPU's). ``pcie_generation`` and ``pcie_width``: the PCIe
    link's generation and width (see :func:`.pci.link`). ``nvlink_links``: active NVLink
    links, ``None`` where the GPU has no NVLink (or it cannot be read).
    """

    vendor: str
    index: int
    name: str
    uuid: str | None = None
    memory_bytes: int | None = None
    bus_id: str | None = None
    compute_capability: str | None = None
    mig_enabled: bool | None = None
    mig_devices: tuple[Device, ...] = ()
    unified_memory: bool = False
    integrated: bool = False
    mig_ids: tuple[int, int] | None = None
    power_limit_w: float | None = None
    pcie_generation: int | None = None
    pcie_width: int | None = None
    nvlink_links: int | None = None
    ecc_mode: bool | None = None


class Inventory(Record):
    """What one vendor's source says about the machine's GPUs.

    ``errors``: devices that failed to answer (the others' facts still count).
    """

    vendor: str
    source: str
    devices: tuple[Device, ...] = ()
    driver: str | None = None
    cuda_driver: str | None = None
    notes: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


#: Facts told once per model, in ``sys.gpu``'s order: (key, :class:`Device` field, how one
#: value is written). A GPU fact of this kind is its field above and one row here.
PER_MODEL: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    (T.GPU_POWER_LIMIT_W, "power_limit_w", decimal),
    (T.GPU_ECC, "ecc_mode", lambda on: "on" if on else "off"),
)


def _grouped(devices: Sequence[Device]) -> list[tuple[str, list[Device]]]:
    groups: dict[str, list[Device]] = {}
    for device in devices:
        groups.setdefault(device.name, []).append(device)
    return list(groups.items())


def gpu_tags(
    devices: Sequence[Device],
    inventories: Sequence[Inventory],
    chosen_gpus: Sequence[Device] | None = None,
) -> dict[str, str]:
    """The ``sys.gpu*`` tags for the visible ``devices``.

    One model: its name; several: ``2x NVIDIA A100-SXM4-80GB, 1x Tesla T4`` in first-seen
    order, with memory and compute capability listed in the same order. A device whose
    name is not known (empty) leaves the per-model facts out; the count stays.
    ``chosen_gpus`` are the whole GPUs the visibility variable chose (for ``sys.gpu_mig``).
    """
    if not devices:
        found = {T.GPU: T.NO_GPU, T.GPU_COUNT: "0"}
        mig = mig_summary(devices, chosen_gpus or ())
        if mig:
            found[T.GPU_MIG] = mig
        return found
    found = {T.GPU_COUNT: str(len(devices))}
    _machine_wide(found, devices, inventories, chosen_gpus or devices)
    if all(d.name for d in devices):
        _per_model(found, devices)
    return {key: found[key] for key in T.keys_of("gpu") if key in found}


def _per_model(found: dict[str, str], devices: Sequence[Device]) -> None:
    """Name, memory and compute capability, one value per model in first-seen order."""
    groups = _grouped(devices)
    if len(groups) == 1:
        found[T.GPU] = groups[0][0]
    else:
        found[T.GPU] = ", ".join(f"{len(members)}x {name}" for name, members in groups)
    memories = [members[0].memory_bytes for _, members in groups]
    if all(m is not None and m > 0 for m in memories):
        found[T.GPU_MEMORY_GB] = ", ".join(gb(m) for m in memories if m is not None)
    capabilities = [members[0].compute_capability for _, members in groups]
    if all(capabilities):
        unique = list(dict.fromkeys(c for c in capabilities if c))
        found[T.GPU_COMPUTE_CAPABILITY] = (
            unique[0] if len(unique) == 1 else ", ".join(c for c in capabilities if c)
        )
    for key, field, write in PER_MODEL:
        values = [getattr(members[0], field) for _, members in groups]
        if all(value is not None for value in values):
            found[key] = ", ".join(write(value) for value in values)
    links = [link_text(device) for device in devices]
    known = {link for link in links if link is not None}
    if known and len(known) == len(set(links)):  # every GPU's link is known
        found[T.GPU_LINK] = known.pop() if len(known) == 1 else "mixed"


def link_text(device: Device) -> str | None:
    """``PCIe Gen5 x16, NVLink 18 links`` for one GPU; ``None`` when its PCIe link is not known."""
    if device.pcie_generation is None or device.pcie_width is None:
        return None
    text = f"PCIe Gen{device.pcie_generation} x{device.pcie_width}"
    if device.nvlink_links:
        text += f", NVLink {device.nvlink_links} link{'s' if device.nvlink_links != 1 else ''}"
    return text


def _machine_wide(
    found: dict[str, str],
    devices: Sequence[Device],
    inventories: Sequence[Inventory],
    chosen_gpus: Sequence[Device],
) -> None:
    """Driver, CUDA driver version and MIG instances: facts of the machine, not of a model."""
    used = [inv for inv in inventories if any(_holds(inv, d) for d in devices)]
    drivers = [inv.driver for inv in used if inv.driver]
    if drivers:
        found[T.GPU_DRIVER] = ", ".join(dict.fromkeys(drivers))
    cuda = [inv.cuda_driver for inv in used if inv.cuda_driver]
    if cuda:
        found[T.CUDA_DRIVER] = cuda[0]
    mig = mig_summary(devices, chosen_gpus)
    if mig:
        found[T.GPU_MIG] = mig


def _holds(inventory: Inventory, device: Device) -> bool:
    return any(device == d or device in d.mig_devices for d in inventory.devices)


def mig_summary(devices: Sequence[Device], chosen_gpus: Sequence[Device] = ()) -> str | None:
    """``sys.gpu_mig``: the MIG instances in use (``1x 3g.20gb``), when MIG is on.

    ``devices`` are what the process enumerates (MIG instances among them);
    ``chosen_gpus`` the whole GPUs it was given, to tell "MIG on, no instance" apart.
    """
    profiles = [_profile(d.name) for d in devices if d.uuid and d.uuid.upper().startswith("MIG-")]
    profiles.extend(_profile(i.name) for d in devices if d.mig_enabled for i in d.mig_devices)
    any_enabled = bool(profiles) or any(d.mig_enabled for d in (*devices, *chosen_gpus))
    if not any_enabled:
        return None
    if not profiles:
        return "enabled, no instances"
    counts: dict[str, int] = {}
    for profile in profiles:
        counts[profile] = counts.get(profile, 0) + 1
    return ", ".join(f"{count}x {profile}" for profile, count in counts.items())


def _profile(name: str) -> str:
    # NVML names a MIG instance "NVIDIA A100-SXM4-40GB MIG 3g.20gb".
    marker = " MIG "
    return name.split(marker, 1)[1] if marker in name else name.removeprefix("MIG ").strip()


def _plain(value: Any) -> Any:
    """Devices as dicts and tuples as lists, so the document survives a JSON round trip."""
    if isinstance(value, Device):
        return _plain(value._asdict())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def describe(devices: Sequence[Device], inventories: Sequence[Inventory]) -> dict[str, Any]:
    """The per-device detail for the snapshot document."""
    return {
        "gpus": [_plain(d) for d in devices],
        "gpu_sources": [
            {
                "vendor": inv.vendor,
                "source": inv.source,
                "driver": inv.driver,
                "cuda_driver": inv.cuda_driver,
                "devices": len(inv.devices),
                "notes": list(inv.notes),
            }
            for inv in inventories
        ],
    }
