"""GPUs of every vendor, as one list, and how that list is told in tags.

Vendor modules (:mod:`.nvidia`, :mod:`.amd`, :mod:`.apple`, :mod:`.windows`) return an
:class:`Inventory`; this module selects what the process may see (``CUDA_VISIBLE_DEVICES``
and friends) and writes the ``sys.gpu*`` tags.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from .. import tags as T


class Device(NamedTuple):
    """One GPU (or one MIG instance of one)."""

    vendor: str
    index: int  # type: ignore[assignment]  # shadows tuple.index, deliberately: the field is the index
    name: str
    uuid: str | None = None
    memory_bytes: int | None = None
    bus_id: str | None = None
    compute_capability: str | None = None
    mig_enabled: bool | None = None
    mig_devices: tuple[Device, ...] = ()
    unified_memory: bool = False


class Inventory(NamedTuple):
    """What one vendor's source says about the machine's GPUs."""

    vendor: str
    source: str
    devices: tuple[Device, ...] = ()
    driver: str | None = None
    cuda_driver: str | None = None
    notes: tuple[str, ...] = ()


def select_visible(devices: Sequence[Device], spec: str | None) -> list[Device]:
    """The devices a ``CUDA_VISIBLE_DEVICES``-style ``spec`` leaves visible, in its order.

    ``None`` leaves all visible; an empty string none. Entries are indexes (in the order
    of ``devices``, which is PCI bus order as ``nvidia-smi`` shows it), ``GPU-`` UUIDs or
    unique prefixes of them, and ``MIG-`` UUIDs of MIG instances. As CUDA does, the list
    ends at the first entry that names no device (``0,2,-1,1`` shows 0 and 2).
    """
    if spec is None:
        return list(devices)
    chosen: list[Device] = []
    for token in spec.split(","):
        device = _lookup(devices, token.strip())
        if device is None or device in chosen:
            break
        chosen.append(device)
    return chosen


def _lookup(devices: Sequence[Device], token: str) -> Device | None:
    if not token:
        return None
    if token.isascii() and token.isdigit():
        index = int(token)
        return devices[index] if index < len(devices) else None
    lowered = token.lower()
    if lowered.startswith("mig-"):
        for device in devices:
            for instance in device.mig_devices:
                if instance.uuid and instance.uuid.lower() == lowered:
                    return instance
        return None
    matches = [d for d in devices if d.uuid and d.uuid.lower().startswith(lowered)]
    if len(matches) == 1 and len(lowered) > 4:
        return matches[0]
    return None


def _grouped(devices: Sequence[Device]) -> list[tuple[str, list[Device]]]:
    groups: dict[str, list[Device]] = {}
    for device in devices:
        groups.setdefault(device.name, []).append(device)
    return list(groups.items())


def gpu_tags(devices: Sequence[Device], inventories: Sequence[Inventory]) -> dict[str, str]:
    """The ``sys.gpu*`` tags for the visible ``devices``.

    One model: its name; several: ``2x NVIDIA A100-SXM4-80GB, 1x Tesla T4`` in first-seen
    order, with memory and compute capability listed in the same order.
    """
    if not devices:
        return {T.GPU: T.NO_GPU, T.GPU_COUNT: "0"}
    groups = _grouped(devices)
    found: dict[str, str] = {T.GPU_COUNT: str(len(devices))}
    if len(groups) == 1:
        found[T.GPU] = groups[0][0]
    else:
        found[T.GPU] = ", ".join(f"{len(members)}x {name}" for name, members in groups)
    memories = [members[0].memory_bytes for _, members in groups]
    if all(m is not None and m > 0 for m in memories):
        found[T.GPU_MEMORY_GB] = ", ".join(T.gb(m) for m in memories if m is not None)
    capabilities = [members[0].compute_capability for _, members in groups]
    if all(capabilities):
        unique = list(dict.fromkeys(c for c in capabilities if c))
        found[T.GPU_COMPUTE_CAPABILITY] = (
            unique[0] if len(unique) == 1 else ", ".join(c for c in capabilities if c)
        )
    used = [inv for inv in inventories if any(_holds(inv, d) for d in devices)]
    drivers = [inv.driver for inv in used if inv.driver]
    if drivers:
        found[T.GPU_DRIVER] = ", ".join(dict.fromkeys(drivers))
    cuda = [inv.cuda_driver for inv in used if inv.cuda_driver]
    if cuda:
        found[T.CUDA_DRIVER] = cuda[0]
    mig = mig_summary(devices)
    if mig:
        found[T.GPU_MIG] = mig
    return found


def _holds(inventory: Inventory, device: Device) -> bool:
    return any(device == d or device in d.mig_devices for d in inventory.devices)


def mig_summary(devices: Sequence[Device]) -> str | None:
    """``sys.gpu_mig``: the MIG instances in use (``2x 3g.40gb``), when MIG is on."""
    profiles: list[str] = []
    any_enabled = False
    for device in devices:
        if device.uuid and device.uuid.upper().startswith("MIG-"):
            any_enabled = True
            profiles.append(_profile(device.name))
        elif device.mig_enabled:
            any_enabled = True
            profiles.extend(_profile(instance.name) for instance in device.mig_devices)
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
