"""CPU: the model (never just ``x86_64``), the cores, and the cores this process may use.

Linux reads ``/proc/cpuinfo`` (``model name`` on x86; implementer and part on ARM, named as
``lscpu`` names them; ``cpu`` on POWER; ``uarch`` on RISC-V) under the replay root. macOS and
Windows get the model from :mod:`.macos` (sysctl) and :mod:`.windows_registry`.
"""

from __future__ import annotations

import os

from .. import tags as T
from .._context import Context
from .._files import Root
from .._value import decimal, implausible
from . import _cgroup

# re (s390x's machine line only) and psutil (the live machine's fallback, macOS, Windows)
# are imported by the functions that need them: a Linux collection reads files alone.

# Implementer and part numbers as the kernel prints them, named as util-linux's lscpu names
# them (sys-utils/lscpu-arm.c: its hw_implementer table and the parts tables under it).
ARM_IMPLEMENTERS: dict[int, str] = {
    0x41: "ARM",
    0x42: "Broadcom",
    0x43: "Cavium",
    0x44: "DEC",
    0x46: "FUJITSU",
    0x48: "HiSilicon",
    0x49: "Infineon",
    0x4D: "Motorola/Freescale",
    0x4E: "NVIDIA",
    0x50: "APM",
    0x51: "Qualcomm",
    0x53: "Samsung",
    0x56: "Marvell",
    0x61: "Apple",
    0x66: "Faraday",
    0x69: "Intel",
    0x6D: "Microsoft",
    0x70: "Phytium",
    0xC0: "Ampere",
}
ARM_PARTS: dict[tuple[int, int], str] = {
    (0x41, 0xD01): "Cortex-A32",
    (0x41, 0xD03): "Cortex-A53",
    (0x41, 0xD04): "Cortex-A35",
    (0x41, 0xD05): "Cortex-A55",
    (0x41, 0xD06): "Cortex-A65",
    (0x41, 0xD07): "Cortex-A57",
    (0x41, 0xD08): "Cortex-A72",
    (0x41, 0xD09): "Cortex-A73",
    (0x41, 0xD0A): "Cortex-A75",
    (0x41, 0xD0B): "Cortex-A76",
    (0x41, 0xD0C): "Neoverse-N1",
    (0x41, 0xD0D): "Cortex-A77",
    (0x41, 0xD0E): "Cortex-A76AE",
    (0x41, 0xD40): "Neoverse-V1",
    (0x41, 0xD41): "Cortex-A78",
    (0x41, 0xD42): "Cortex-A78AE",
    (0x41, 0xD43): "Cortex-A65AE",
    (0x41, 0xD44): "Cortex-X1",
    (0x41, 0xD46): "Cortex-A510",
    (0x41, 0xD47): "Cortex-A710",
    (0x41, 0xD48): "Cortex-X2",
    (0x41, 0xD49): "Neoverse-N2",
    (0x41, 0xD4A): "Neoverse-E1",
    (0x41, 0xD4B): "Cortex-A78C",
    (0x41, 0xD4C): "Cortex-X1C",
    (0x41, 0xD4D): "Cortex-A715",
    (0x41, 0xD4E): "Cortex-X3",
    (0x41, 0xD4F): "Neoverse-V2",
    (0x41, 0xD80): "Cortex-A520",
    (0x41, 0xD81): "Cortex-A720",
    (0x41, 0xD82): "Cortex-X4",
    (0x41, 0xD83): "Neoverse-V3AE",
    (0x41, 0xD84): "Neoverse-V3",
    (0x41, 0xD85): "Cortex-X925",
    (0x41, 0xD87): "Cortex-A725",
    (0x41, 0xD8E): "Neoverse-N3",
    (0x42, 0x00F): "Brahma-B15",
    (0x42, 0x100): "Brahma-B53",
    (0x42, 0x516): "ThunderX2",
    (0x43, 0x0A0): "ThunderX",
    (0x43, 0x0A1): "ThunderX-88XX",
    (0x43, 0x0A2): "ThunderX-81XX",
    (0x43, 0x0A3): "ThunderX-83XX",
    (0x43, 0x0AF): "ThunderX2-99xx",
    (0x43, 0x0B0): "OcteonTX2",
    (0x43, 0x0B1): "OcteonTX2-98XX",
    (0x43, 0x0B2): "OcteonTX2-96XX",
    (0x43, 0x0B3): "OcteonTX2-95XX",
    (0x43, 0x0B8): "ThunderX3-T110",
    (0x46, 0x001): "A64FX",
    (0x46, 0x003): "MONAKA",
    (0x48, 0xD01): "TaiShan-v110",
    (0x48, 0xD02): "TaiShan-v120",
    (0x48, 0xD40): "Cortex-A76",
    (0x48, 0xD41): "Cortex-A77",
    (0x4E, 0x000): "Denver",
    (0x4E, 0x003): "Denver 2",
    (0x4E, 0x004): "Carmel",
    (0x4E, 0x010): "Olympus",
    (0x50, 0x000): "X-Gene",
    (0x51, 0x001): "Oryon",
    (0x51, 0x800): "Falkor-V1/Kryo",
    (0x51, 0xC00): "Falkor",
    (0x51, 0xC01): "Saphira",
    (0x6D, 0xD49): "Azure-Cobalt-100",
    (0x70, 0x660): "FTC660",
    (0x70, 0x661): "FTC661",
    (0x70, 0x662): "FTC662",
    (0x70, 0x663): "FTC663",
    (0x70, 0x664): "FTC664",
    (0x70, 0x862): "FTC862",
    (0xC0, 0xAC3): "Ampere-1",
    (0xC0, 0xAC4): "Ampere-1a",
}


def parse_cpuinfo(text: str) -> list[dict[str, str]]:
    """``/proc/cpuinfo`` as one dictionary per block, keys lower-cased."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            current.setdefault(key.strip().lower(), value.strip())
    if current:
        blocks.append(current)
    return blocks


def _number(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value, 0)
    except ValueError:
        return None


def _arm_name(block: dict[str, str]) -> str | None:
    implementer = _number(block.get("cpu implementer"))
    part = _number(block.get("cpu part"))
    if implementer is None or part is None:
        return None
    vendor = ARM_IMPLEMENTERS.get(implementer, f"implementer 0x{implementer:02x}")
    model = ARM_PARTS.get((implementer, part), f"part 0x{part:03x}")
    return f"{vendor} {model}"


def _block_model(block: dict[str, str]) -> str | None:
    name = block.get("model name")
    arm = _arm_name(block)
    # 32-bit ARM kernels print a generic "ARMv7 Processor rev 3 (v7l)"; the part says more.
    if arm and (not name or name.startswith("ARMv")):
        return arm
    if name:
        return name
    if "cpu" in block:  # POWER: "POWER9 (raw), altivec supported"
        return block["cpu"].split(",")[0].split(" (")[0].strip() or None
    if "uarch" in block:  # RISC-V: "sifive,u74-mc"
        return block["uarch"]
    return None


_S390_MACHINE = r"machine\s*=\s*([0-9A-Fa-f]+)"


def _s390_model(blocks: list[dict[str, str]]) -> str | None:
    """``IBM/S390 8561``: vendor and machine type, as lscpu shows them (s390x has no model name)."""
    vendor = next((b["vendor_id"] for b in blocks if b.get("vendor_id", "").startswith("IBM/S390")), None)
    if vendor is None:
        return None
    import re

    for block in blocks:
        for key, value in block.items():
            if key == "machine" or key.startswith("processor "):
                match = re.search(_S390_MACHINE, f"machine = {value}" if key == "machine" else value)
                if match:
                    return f"{vendor} {match.group(1)}"
    return vendor


def model_from_cpuinfo(text: str) -> str | None:
    """The CPU model named in ``/proc/cpuinfo``; several kinds (big.LITTLE) joined by `` + ``."""
    return _model(parse_cpuinfo(text))


def _model(blocks: list[dict[str, str]]) -> str | None:
    s390 = _s390_model(blocks)
    if s390:
        return s390
    names: list[str] = []
    for block in blocks:
        name = _block_model(block)
        if name:
            name = " ".join(name.split())
            if name and name not in names:
                names.append(name)
    if not names:
        return None
    return " + ".join(names)


def logical_from_cpuinfo(text: str) -> int | None:
    """Online CPUs as ``/proc/cpuinfo`` lists them: ``processor`` blocks (s390x: ``cpu number`` ones)."""
    return _logical(parse_cpuinfo(text))


def _logical(blocks: list[dict[str, str]]) -> int | None:
    count = sum(1 for block in blocks if "processor" in block)
    if not count:
        count = sum(1 for block in blocks if "cpu number" in block)
    if not count:
        count = next((_number(b["# processors"]) or 0 for b in blocks if "# processors" in b), 0)
    return count or None


def physical_from_cpuinfo(text: str) -> int | None:
    """Distinct (``physical id``, ``core id``) pairs, as psutil counts them without sysfs."""
    return _physical(parse_cpuinfo(text))


def _physical(blocks: list[dict[str, str]]) -> int | None:
    cores = {
        (block["physical id"], block["core id"])
        for block in blocks
        if "physical id" in block and "core id" in block
    }
    return len(cores) or None


def physical_from_sysfs(root: Root) -> int | None:
    """Distinct cores by their siblings lists in sysfs topology, as psutil counts them."""
    base = "/sys/devices/system/cpu"
    cores = set()
    for name in root.listdir(base):
        if not (name.startswith("cpu") and name[3:].isascii() and name[3:].isdigit()):
            continue
        for leaf in ("core_cpus_list", "thread_siblings_list"):
            siblings = root.read_line(f"{base}/{name}/topology/{leaf}")
            if siblings:
                cores.add(siblings)
                break
    return len(cores) or None


#: More CPUs than any kernel supports (CONFIG_NR_CPUS tops out at 8192): a list naming
#: more is malformed, and is not expanded.
MAX_CPUS = 1 << 16


def parse_cpu_set(text: str) -> set[int] | None:
    """The CPUs of a kernel list such as ``0-3,8,10-11``; ``None`` if malformed."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if not part:
            continue
        low, sep, high = part.partition("-")
        try:
            first = int(low)
            last = int(high) if sep else first
        except ValueError:
            return None
        if last < first or first < 0 or last >= MAX_CPUS:
            return None
        cpus.update(range(first, last + 1))
    return cpus or None


def parse_cpu_list(text: str) -> int | None:
    """Number of CPUs in a kernel list such as ``0-3,8,10-11``; ``None`` if malformed."""
    cpus = parse_cpu_set(text)
    return len(cpus) if cpus else None


def affinity(root: Root) -> int | None:
    """CPUs this process may be scheduled on.

    The kernel prints the raw affinity mask as ``Cpus_allowed_list`` in ``/proc/self/status``;
    ``sched_getaffinity`` is that mask AND the CPUs that are online
    (``/sys/devices/system/cpu/online``), which is what a process can really use when SMT is
    off or slots are empty. The live machine asks ``sched_getaffinity`` itself.
    """
    if root.is_live and hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    allowed: set[int] | None = None
    for line in (root.read("/proc/self/status") or "").splitlines():
        if line.startswith("Cpus_allowed_list:"):
            allowed = parse_cpu_set(line.split(":", 1)[1])
            break
    if allowed is None:
        return None
    online = parse_cpu_set(root.read_line("/sys/devices/system/cpu/online") or "")
    if online is not None:
        allowed &= online
    return len(allowed) or None


def available(root: Root, logical: int | None) -> str | None:
    """``sys.cpu_available``: min(affinity, cgroup CPU quota) as a plain decimal."""
    candidates: list[float] = []
    allowed = affinity(root)
    if allowed:
        candidates.append(allowed)
    elif logical:
        candidates.append(logical)
    quota = _cgroup.cpu_quota(root)
    if quota is not None:
        candidates.append(quota)
    return decimal(min(candidates)) if candidates else None


def physical_cores_psutil() -> int | None:
    """Physical cores as psutil counts them (imported only when asked)."""
    import psutil

    count: int | None = psutil.cpu_count(logical=False)
    return count


def collect_linux(ctx: Context) -> dict[str, str]:
    """CPU tags on Linux, from files under the root (the live machine adds psutil, os)."""
    root = ctx.root
    blocks = parse_cpuinfo(root.read("/proc/cpuinfo") or "")  # parsed once: 1 MiB on 512 cores
    found: dict[str, str] = {}
    model = _model(blocks)
    if model is None and root.is_live:  # a replayed machine's model is never this machine's
        model = os.uname().machine  # what platform.machine() says, without importing it
    reason = implausible(model) if model else None
    if reason:
        ctx.errors.append(f"ValueError: /proc/cpuinfo names a CPU model that cannot be true ({reason})")
    elif model:
        found[T.CPU] = model
    # The same files psutil reads, but under the root, so a captured machine replays whole
    # (and psutil's import, slower than all these reads together, is not paid on Linux).
    logical = os.cpu_count() if root.is_live else _logical(blocks)
    physical = _physical(blocks) or physical_from_sysfs(root)
    if physical is None and root.is_live:
        physical = physical_cores_psutil()
    if logical:
        found[T.CPU_CORES] = str(logical)
    if physical:
        found[T.CPU_PHYSICAL_CORES] = str(physical)
    usable = available(root, logical)
    if usable:
        found[T.CPU_AVAILABLE] = usable
    return found


def collect_counts(ctx: Context) -> dict[str, str]:
    """Core counts where only the standard library and psutil can tell (macOS, Windows).

    The cores available are the process's affinity where the system has one (Windows);
    macOS has none, so there it is every logical core.
    """
    import psutil

    found: dict[str, str] = {}
    logical = os.cpu_count()
    if logical:
        found[T.CPU_CORES] = str(logical)
    process = psutil.Process()
    usable = len(process.cpu_affinity()) if hasattr(process, "cpu_affinity") else logical
    if usable:
        found[T.CPU_AVAILABLE] = str(usable)
    physical = physical_cores_psutil()
    if physical:
        found[T.CPU_PHYSICAL_CORES] = str(physical)
    return found
