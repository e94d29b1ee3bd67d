"""Which GPUs a process may use, read from each runtime's ``*_VISIBLE_DEVICES`` as it reads it.

CUDA (``CUDA_VISIBLE_DEVICES``), as PyTorch documents and emulates CUDA's parser in
``torch.cuda._parse_visible_devices``: a list that starts with ``GPU-`` or ``MIG-`` is a
list of UUIDs (or unique prefixes) and ends at the first entry without that prefix;
otherwise each entry is read as ``strtoul`` reads it (``1gpu2`` is 1), and the list ends at
the first negative or invalid entry or at the first index past the last device. A repeated
device makes the whole list empty. NVIDIA's MIG guide adds that one CUDA process
enumerates a single MIG device (the first one visible), and no whole GPU beside it.

ROCm: ``ROCR_VISIBLE_DEVICES`` (indexes or ``GPU-`` UUIDs, mixed) is applied first by the
ROCr runtime; then the HIP runtime selects among the devices it left, by
``HIP_VISIBLE_DEVICES``, or by ``CUDA_VISIBLE_DEVICES`` where that is unset or empty: every
HIP on ROCm has read it so, from HIP 0.82 (2016) to today's ``clr``
(``rocclr/device/rocm/rocdevice.cpp``, ``Device::init``; PyTorch's ROCm build reads it the
same way in ``torch.cuda._parse_visible_devices``). HIP's grammar is its own, not CUDA's:
an entry is a decimal index written plainly (``str(int(entry)) == entry``) or names a
device whose ``GPU-`` UUID contains it; the list ends at the first entry that names no
device, a repeated device is skipped, and an empty list selects every device.
"""

from __future__ import annotations

from ..._value import Record
from .device import Device

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Sequence

#: ``CUDA_DEVICE_ORDER`` value under which CUDA's indexes follow PCI bus order.
PCI_BUS_ORDER = "PCI_BUS_ID"


def strtoul(text: str) -> int:
    """The number ``text`` starts with, read as C's ``strtoul`` does; -1 when there is none."""
    digits = 0
    for position, char in enumerate(text):
        if char.isascii() and (char.isdigit() or (position == 0 and char in "+-")):
            digits = position + 1
            continue
        break
    try:
        return int(text[:digits])
    except ValueError:
        return -1


def parse_cuda(spec: str) -> list[int] | list[str]:
    """``CUDA_VISIBLE_DEVICES`` as indexes or UUID entries, in CUDA's grammar (see the module)."""
    for prefix in ("GPU-", "MIG-"):
        if spec.startswith(prefix):
            uuids: list[str] = []
            for entry in spec.split(","):
                if entry in uuids:
                    return []
                if not entry.startswith(prefix):
                    break
                uuids.append(entry)
            return uuids
    indexes: list[int] = []
    for entry in spec.split(","):
        index = strtoul(entry.strip())
        if index in indexes:
            return []
        if index < 0:
            break
        indexes.append(index)
    return indexes


def _by_prefix(devices: Sequence[Device], token: str) -> Device | None:
    """The one device whose UUID starts with ``token``; ``None`` when none or several do."""
    lowered = token.lower()
    matches = [d for d in devices if d.uuid and d.uuid.lower().startswith(lowered)]
    return matches[0] if len(matches) == 1 else None


def _mig_instance(gpus: Sequence[Device], token: str) -> Device | None:
    """The MIG instance named by ``MIG-<uuid>``, or by the old ``MIG-GPU-<uuid>/<gi>/<ci>``."""
    lowered = token.lower()
    parent, _, ids = lowered.removeprefix("mig-").partition("/")
    gi, _, ci = ids.partition("/")
    for gpu in gpus:
        for instance in gpu.mig_devices:
            if instance.uuid and instance.uuid.lower() == lowered:
                return instance
            if (
                ids
                and gpu.uuid
                and gpu.uuid.lower() == parent
                and instance.mig_ids is not None
                and (str(instance.mig_ids[0]), str(instance.mig_ids[1])) == (gi, ci)
            ):
                return instance
    return None


class Visible(Record):
    """What a process enumerates: its devices, the whole GPUs chosen, and why they are not known.

    ``unknown_reason`` says why the devices chosen cannot be named (an index whose GPU the
    runtime's order does not tell), or is ``None``.
    """

    devices: list[Device]
    gpus: list[Device]
    unknown_reason: str | None = None


def _pick(devices: Sequence[Device], picked: Sequence[Device | None]) -> list[Device]:
    chosen: list[Device] = []
    for device in picked:
        if device is None:
            break
        if device in chosen:
            return []
        chosen.append(device)
    return chosen


def _enumerated(gpus: Sequence[Device]) -> list[Device]:
    """MIG guide: CUDA enumerates one MIG device if any is visible, and then no whole GPU."""
    instances = [instance for gpu in gpus if gpu.mig_enabled for instance in gpu.mig_devices]
    if instances:
        return instances[:1]
    return [gpu for gpu in gpus if not gpu.mig_enabled]


def cuda(devices: Sequence[Device], spec: str | None, order: str | None) -> Visible:
    """The NVIDIA devices a CUDA process sees under ``CUDA_VISIBLE_DEVICES=spec``.

    ``devices`` are the GPUs in PCI bus order (NVML's and ``nvidia-smi``'s order). CUDA
    uses that order for indexes only with ``CUDA_DEVICE_ORDER=PCI_BUS_ID``; otherwise it
    puts the fastest first by a heuristic it does not document, so on a machine of mixed
    models an index names an unknown GPU: ``unknown_reason`` then says so.
    """
    if spec is None:
        return Visible(_enumerated(devices), list(devices))
    tokens = parse_cuda(spec)
    if not tokens:
        return Visible([], [])
    if isinstance(tokens[0], int):
        picked = [devices[i] if i < len(devices) else None for i in tokens if isinstance(i, int)]
        gpus = _pick(devices, picked)
        reason = None
        mixed = len({d.name for d in devices}) > 1
        if gpus and mixed and (order or "").strip() != PCI_BUS_ORDER and len(gpus) < len(devices):
            shown = spec if len(spec) <= 40 else f"{spec[:37]}..."
            reason = (
                f"CUDA_VISIBLE_DEVICES={shown} names GPUs by index, but CUDA_DEVICE_ORDER is not "
                "PCI_BUS_ID and the models differ, so which GPUs those are is not known"
            )
        return Visible(_enumerated(gpus), gpus, reason)
    names = [t for t in tokens if isinstance(t, str)]
    if names[0].startswith("MIG-"):
        instances = _pick(devices, [_mig_instance(devices, t) for t in names])
        return Visible(instances[:1], [])
    gpus = _pick(devices, [_by_prefix(devices, t) for t in names])
    return Visible(_enumerated(gpus), gpus)


def _rocm_tokens(devices: Sequence[Device], spec: str) -> list[Device]:
    picked: list[Device | None] = []
    for raw in spec.split(","):
        entry = raw.strip()
        if entry[:4].upper() == "GPU-":
            picked.append(_by_prefix(devices, entry))
            continue
        index = strtoul(entry)
        picked.append(devices[index] if 0 <= index < len(devices) else None)
    return _pick(devices, picked)


def hip(devices: Sequence[Device], spec: str) -> list[Device]:
    """The devices HIP keeps under ``HIP_VISIBLE_DEVICES=spec`` (clr's grammar, see the module)."""
    if not spec:
        return list(devices)
    chosen: list[Device] = []
    for entry in spec.split(","):
        token = entry
        if "GPU-" in token:
            token = next((str(i) for i, d in enumerate(devices) if d.uuid and token in d.uuid), token)
        plain = token.isascii() and token.isdigit() and str(int(token)) == token
        if not plain or int(token) >= len(devices):
            break
        device = devices[int(token)]
        if device not in chosen:
            chosen.append(device)
    return chosen


def rocm(
    devices: Sequence[Device], rocr: str | None, hip_spec: str | None, cuda_spec: str | None = None
) -> list[Device]:
    """The AMD devices a ROCm process sees: ROCR's variable, then HIP's (else CUDA's)."""
    pool = list(devices)
    if rocr is not None:
        pool = _rocm_tokens(pool, rocr)
    return hip(pool, hip_spec or cuda_spec or "")
