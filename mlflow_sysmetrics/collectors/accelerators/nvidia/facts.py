"""What NVIDIA tells of each GPU beyond its name, memory and identity: one row per fact.

The table both NVIDIA sources read: NVML's pass (:mod:`.nvml_pass`) calls each row's
function, the ``nvidia-smi`` fallback (:mod:`.fallback`) asks for each row's field. A leaf:
it imports none of the other NVIDIA modules.
"""

from __future__ import annotations

from ...._value import Record

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Callable


class Fact(Record):
    """One fact of a GPU as both NVIDIA sources tell it, declared once (see :data:`FACTS`).

    ``nvml``: the NVML function that answers it, ``f(device, unsigned int *out, ...)`` with
    ``outputs`` outputs, the first of which is the value (``nvml_value`` turns it into the
    record's); ``smi``: the ``nvidia-smi --query-gpu`` field (``smi_value`` reads its text).
    The answer goes in the :class:`..device.Device` field ``field``; a MIG instance shares its
    GPU's.
    """

    field: str
    nvml: str
    smi: str
    nvml_value: Callable[[int], object]
    smi_value: Callable[[str | None], object]
    outputs: int = 1


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value or value.startswith("[") or value in ("N/A", "[N/A]", "Not Supported"):
        return None
    return value


def _watts(value: str | None) -> float | None:
    import re

    match = re.match(r"\s*(\d+(?:\.\d+)?)\s*W?\s*$", _clean(value) or "")
    return float(match.group(1)) if match else None


def _whole(value: str | None) -> int | None:
    text = _clean(value)
    return int(text) if text and text.isascii() and text.isdigit() and int(text) > 0 else None


def _enabled(value: str | None) -> bool | None:
    text = (_clean(value) or "").lower()
    return True if text == "enabled" else False if text == "disabled" else None


def _milliwatts(value: int) -> float | None:
    return value / 1000 if value else None


def _positive(value: int) -> int | None:
    return value or None


#: What NVIDIA tells of each GPU beyond its name, memory and identity, one row per fact.
#: ``enforced.power.limit`` is "the minimum of various power limiters" (a BMC's cap
#: included), as NVML's enforced limit is; ``power.limit`` is only the limit software set.
#: ``pcie.link.gen.max`` is "the maximum PCI-E link generation possible with this GPU and
#: system configuration" (both ends); the width is the negotiated one.
FACTS: tuple[Fact, ...] = (
    Fact("power_limit_w", "nvmlDeviceGetEnforcedPowerLimit", "enforced.power.limit", _milliwatts, _watts),
    Fact("pcie_generation", "nvmlDeviceGetMaxPcieLinkGeneration", "pcie.link.gen.max", _positive, _whole),
    Fact("pcie_width", "nvmlDeviceGetCurrPcieLinkWidth", "pcie.link.width.current", _positive, _whole),
    # nvml.h: nvmlDeviceGetEccMode(device, &current, &pending), NVML_FEATURE_ENABLED = 1
    Fact("ecc_mode", "nvmlDeviceGetEccMode", "ecc.mode.current", bool, _enabled, outputs=2),
)

#: Fields every driver knows; the others are left out of the query when a driver refuses
#: them (``compute_cap`` came with R510, ``mig.mode.current`` with R450).
REQUIRED_FIELDS = ("index", "name", "uuid", "memory.total", "driver_version", "pci.bus_id")
#: The one ``nvidia-smi`` query for everything at once.
QUERY_FIELDS = ",".join((*REQUIRED_FIELDS, "compute_cap", "mig.mode.current", *(f.smi for f in FACTS)))
