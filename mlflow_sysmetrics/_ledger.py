"""The run's ledger: what a run consumed, counted by the hardware, with no sampling thread.

:func:`start` reads, at a run's start, the cumulative counters the hardware already keeps;
:meth:`Span.finish` reads them again at its end and returns the differences and peaks as
MLflow metrics, with ``sys.ledger`` saying what could not be counted and why. Two reads per
run, nothing in between:

- GPUs (the ones the run may use, by the rules of ``sys.gpu_count``; a MIG instance or a
  compute partition counts its whole device, whose energy is shared): NVML's energy counter
  (millijoules since the driver loaded, Volta and newer), the time the clocks were held
  down by the power cap and by temperature (``nvmlDeviceGetViolationStatus``), uncorrected
  ECC errors and PCIe replays; AMD's energy counter through ``amdsmi``.
- The CPU: the kernel's powercap RAPL zones (``energy_uj`` of each package and of its DRAM
  where that is a domain of its own), which wrap at ``max_energy_range_uj``: one wrap is
  undone; a span long enough for two at the zone's highest power limit is not counted.
- Memory: the peak resident set of the process and of its largest finished child
  (``getrusage``), or the container's ``memory.peak`` (cgroup v2) where the run's process
  is alone in its cgroup; GPU memory from PyTorch's allocator when PyTorch is imported and
  CUDA initialised (never importing or initialising either), else NVML accounting.

A figure that cannot be counted (no counter, a counter that went backwards, permission) is
absent and named in ``sys.ledger``, never 0 and never negative. A peak that was reached
before the span began is not the span's: it is named, not written.
"""

from __future__ import annotations

import os
import sys
import time

from . import _log, _platform
from . import settings as _settings
from . import tags as T
from ._context import Context
from ._files import Root, positive_int

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from typing import Any

    from .collectors.accelerators.device import Device
    from .collectors.accelerators.nvidia.counters import Counters

# The GPU sources (ctypes for NVML, amdsmi) and resource are imported where used: a run on a
# machine without them never loads them.

GPU_ENERGY_WH = T.GPU_ENERGY_WH
GPU_POWER_AVG_W = T.GPU_POWER_AVG_W
CPU_ENERGY_WH = T.CPU_ENERGY_WH
GPU_THROTTLE_POWER_PCT = T.GPU_THROTTLE_POWER_PCT
GPU_THROTTLE_THERMAL_PCT = T.GPU_THROTTLE_THERMAL_PCT
GPU_MEMORY_PEAK_GB = T.GPU_MEMORY_PEAK_GB
MEMORY_PEAK_GB = T.MEMORY_PEAK_GB
GPU_ECC_ERRORS = T.GPU_ECC_ERRORS
GPU_PCIE_REPLAYS = T.GPU_PCIE_REPLAYS
GPU_HOURS = T.GPU_HOURS
CO2_G = T.CO2_G

POWERCAP = "/sys/class/powercap"
#: Highest power a zone is assumed to draw when it names no limit (to bound how often it wraps).
FALLBACK_ZONE_WATTS = 500.0


class _Gpu:
    """One device the run may use, as the ledger reads it: by NVML's UUID or AMD's bus id."""

    __slots__ = ("key", "name", "vendor")

    def __init__(self, vendor: str, key: str, name: str) -> None:
        self.vendor = vendor
        self.key = key
        self.name = name


class _Reading:
    """The counters at one moment."""

    __slots__ = ("at", "children_kib", "gpus", "self_kib", "torch_peak", "zones")

    def __init__(self) -> None:
        self.at = time.monotonic()
        self.gpus: dict[str, Counters | None] = {}
        self.zones: dict[str, int] = {}
        self.self_kib: int | None = None
        self.children_kib: int | None = None
        self.torch_peak: int | None = None


class Ledger:
    """What a span consumed: metrics by key, and ``sys.ledger``'s text."""

    __slots__ = ("metrics", "text")

    def __init__(self, metrics: dict[str, float], text: str) -> None:
        self.metrics = metrics
        self.text = text


class Span:
    """A run's span: the counters read at its start; :meth:`finish` reads them again."""

    def __init__(self, pid: int | None = None) -> None:
        self.pid = os.getpid() if pid is None else pid
        self.notes: list[str] = []
        self.missing: dict[str, str] = {}
        settings = _settings.current()
        self.root = Root(settings.root)
        self.gpus = _counted_gpus(Context(self.root, time.monotonic() + settings.timeout), self.notes)
        self.zones, zone_problem = _rapl_zones(self.root)
        if zone_problem:
            self.missing["cpu energy"] = zone_problem
        self.owned_cgroup = _owned_cgroup(self.root, self.pid)
        self.begin = self._read()

    def _read(self) -> _Reading:
        reading = _Reading()
        for gpu in self.gpus:
            reading.gpus[gpu.key] = _gpu_counters(gpu, self.missing)
        for zone in list(self.zones):
            value, problem = _read_energy(self.root, zone)
            if value is None:
                self.missing["cpu energy"] = problem or "a RAPL zone could not be read"
                del self.zones[zone]
            else:
                reading.zones[zone] = value
        reading.self_kib, reading.children_kib = _rusage_kib()
        reading.torch_peak = _torch_peak()
        return reading

    def finish(self) -> Ledger:
        """Read the counters again: what the span consumed, and what could not be counted."""
        end = self._read()
        seconds = max(end.at - self.begin.at, 1e-9)
        metrics: dict[str, float] = {GPU_HOURS: round(len(self.gpus) * seconds / 3600, 9)}
        self._gpu_metrics(end, seconds, metrics)
        self._cpu_energy(end, seconds, metrics)
        self._memory(end, metrics)
        self._co2(metrics)
        parts = [f"{what}: {why}" for what, why in self.missing.items()]
        text = "; ".join([*parts, *self.notes]) or "everything counted"
        return Ledger(metrics, T.clip(text, T.MAX_VALUE_LENGTH))

    def _deltas(self, end: _Reading, field: str, what: str) -> list[int] | None:
        """Each GPU's increase of ``field``, or ``None`` (and why, in ``missing``) if one is not known."""
        deltas = []
        for gpu in self.gpus:
            first, last = self.begin.gpus.get(gpu.key), end.gpus.get(gpu.key)
            a = getattr(first, field, None)
            b = getattr(last, field, None)
            if a is None or b is None:
                self.missing.setdefault(what, f"{gpu.name} keeps no such counter")
                return None
            if b < a:
                self.missing.setdefault(
                    what, f"{gpu.name}'s counter went backwards (a GPU reset or a driver reload)"
                )
                return None
            deltas.append(b - a)
        return deltas

    def _gpu_metrics(self, end: _Reading, seconds: float, metrics: dict[str, float]) -> None:
        if not self.gpus:
            return
        energy = self._deltas(end, "energy_mj", "gpu energy")
        if energy is not None:
            joules = sum(energy) / 1000
            metrics[GPU_ENERGY_WH] = round(joules / 3600, 6)
            metrics[GPU_POWER_AVG_W] = round(joules / seconds / len(self.gpus), 3)
        for field, key, what in (
            ("power_ns", GPU_THROTTLE_POWER_PCT, "gpu throttling by the power cap"),
            ("thermal_ns", GPU_THROTTLE_THERMAL_PCT, "gpu throttling by temperature"),
        ):
            held = self._deltas(end, field, what)
            if held is not None:
                metrics[key] = round(min(max(held) / (seconds * 1e9) * 100, 100.0), 3)
        for field, key, what in (
            ("ecc_uncorrected", GPU_ECC_ERRORS, "gpu uncorrected ECC errors"),
            ("pcie_replays", GPU_PCIE_REPLAYS, "gpu PCIe replays"),
        ):
            counts = self._deltas(end, field, what)
            if counts is not None:
                metrics[key] = float(sum(counts))
        peak = self._gpu_memory_peak(end)
        if peak is not None:
            metrics[GPU_MEMORY_PEAK_GB] = round(peak / 1e9, 3)

    def _gpu_memory_peak(self, end: _Reading) -> int | None:
        if end.torch_peak is not None:
            if self.begin.torch_peak is not None and end.torch_peak <= self.begin.torch_peak:
                self.missing["gpu memory peak"] = (
                    "PyTorch's peak was reached before the run began, so the run's own is not known"
                )
                return None
            return end.torch_peak
        nvidia = [gpu for gpu in self.gpus if gpu.vendor == "nvidia"]
        if not nvidia:
            self.missing["gpu memory peak"] = "no PyTorch allocator with CUDA initialised, no NVML accounting"
            return None
        from .collectors.accelerators.nvidia import counters as _nvml

        try:
            peaks = [_nvml.memory_peak(gpu.key, self.pid) for gpu in nvidia]
            if all(p is not None for p in peaks):
                return max(p for p in peaks if p is not None)
            held = [_nvml.memory_held(gpu.key, self.pid) for gpu in nvidia]
        except (OSError, _nvml.NVMLError) as exc:
            self.missing["gpu memory peak"] = f"NVML: {exc}"
            return None
        known = [h for h in held if h is not None]
        at_end = f"; this process held {T.gb(max(known))} GB at the end" if known else ""
        self.missing["gpu memory peak"] = (
            f"neither PyTorch's allocator (CUDA initialised) nor NVML accounting (off) counts it{at_end}"
        )
        return None

    def _cpu_energy(self, end: _Reading, seconds: float, metrics: dict[str, float]) -> None:
        if not self.zones or "cpu energy" in self.missing:
            return
        total = 0
        for zone, (span_range, watts) in self.zones.items():
            first, last = self.begin.zones.get(zone), end.zones.get(zone)
            if first is None or last is None:
                return
            if seconds * watts * 1e6 >= span_range:
                minutes = span_range / (watts * 1e6) / 60
                self.missing["cpu energy"] = (
                    f"{zone.rsplit('/', 1)[-1]} may have wrapped more than once in {seconds / 60:.1f} min "
                    f"(its counter wraps every {minutes:.1f} min at {watts:g} W)"
                )
                return
            total += last - first if last >= first else last + span_range - first
        metrics[CPU_ENERGY_WH] = round(total / 3.6e9, 6)

    def _memory(self, end: _Reading, metrics: dict[str, float]) -> None:
        grown = [
            value
            for value, before in (
                (end.self_kib, self.begin.self_kib),
                (end.children_kib, self.begin.children_kib),
            )
            if value is not None and before is not None and value > before
        ]
        peak = max(grown) * 1024 if grown else None
        if self.owned_cgroup is not None:
            container = positive_int(self.root.read_line(f"{self.owned_cgroup}/memory.peak"))
            if container is not None and (peak is None or container > peak):
                peak = container
                self.notes.append("memory peak: the container's (cgroup memory.peak, cache included)")
        if peak is None:
            if end.self_kib is None:
                self.missing["memory peak"] = "getrusage is not available here"
            else:
                self.missing["memory peak"] = (
                    "not above the process's peak before the run began, so the run's own is not known"
                )
            return
        metrics[MEMORY_PEAK_GB] = round(peak / 1e9, 3)

    def _co2(self, metrics: dict[str, float]) -> None:
        grams_per_kwh = _settings.grid_intensity()
        if grams_per_kwh is None:
            return
        counted = [metrics[key] for key in (GPU_ENERGY_WH, CPU_ENERGY_WH) if key in metrics]
        if not counted:
            self.missing["co2"] = "no energy was counted"
            return
        if len(counted) == 1:
            self.notes.append(f"co2: from {'GPU' if GPU_ENERGY_WH in metrics else 'CPU'} energy only")
        metrics[CO2_G] = round(sum(counted) / 1000 * grams_per_kwh, 6)


def start(pid: int | None = None) -> Span | None:
    """A span starting now, or ``None`` when the ledger is off or cannot start (never raises).

    ``pid``: the process whose GPU memory counts (the run's; this one by default).
    """
    if not _settings.ledger_enabled():
        return None
    try:
        return Span(pid)
    except Exception:  # a ledger that cannot start never stops a run
        _log.logger().warning("the run's ledger could not start", exc_info=True)
        return None


def _counted_gpus(ctx: Context, notes: list[str]) -> list[_Gpu]:
    """The devices the run may use (``sys.gpu_count``'s rules), each whole device once."""
    from .collectors import accelerators

    if not accelerators.has_sources(ctx.root):
        return []
    inventories = accelerators.read_inventories(ctx)
    selection = accelerators.visible_devices(inventories)
    parents = {
        id(instance): device
        for inv in inventories
        for device in inv.devices
        for instance in device.mig_devices
    }
    found: dict[str, _Gpu] = {}
    shared = False
    for device in selection.devices:
        whole: Device = parents.get(id(device), device)
        shared = shared or whole is not device
        if whole.vendor == "nvidia" and whole.uuid and ctx.root.is_live:
            found.setdefault(whole.uuid, _Gpu("nvidia", whole.uuid, whole.name))
        elif whole.vendor == "amd" and whole.bus_id and ctx.root.is_live:
            shared = shared or whole.bus_id in found
            found.setdefault(whole.bus_id, _Gpu("amd", whole.bus_id, whole.name))
        else:
            found.setdefault(f"{whole.vendor}:{whole.index}", _Gpu(whole.vendor, "", whole.name))
    if shared:
        notes.append("energy and counters of a MIG instance or partition are its whole device's")
    return list(found.values())


def _gpu_counters(gpu: _Gpu, missing: dict[str, str]) -> Counters | None:
    from .collectors.accelerators.nvidia import counters as _nvml

    if not gpu.key:
        return None  # a device no counter source serves (Apple, a replayed machine)
    try:
        if gpu.vendor == "nvidia":
            return _nvml.counters(gpu.key)
        return _amd_counters(gpu)
    except Exception as exc:
        missing.setdefault("gpu counters", f"{type(exc).__name__}: {exc}")
        return None


def _amd_counters(gpu: _Gpu) -> Counters | None:
    """AMD's energy counter (amdsmi: the counter times its resolution, in microjoules)."""
    from .collectors.accelerators.nvidia.counters import Counters

    try:
        import amdsmi
    except ImportError:
        return None
    amdsmi.amdsmi_init()
    try:
        for handle in amdsmi.amdsmi_get_processor_handles():
            if str(amdsmi.amdsmi_get_gpu_device_bdf(handle)).lower() != gpu.key.lower():
                continue
            energy = amdsmi.amdsmi_get_energy_count(handle)
            counter = energy.get("energy_accumulator", energy.get("power"))
            resolution = energy.get("counter_resolution")
            if not isinstance(counter, (int, float)) or not isinstance(resolution, (int, float)):
                return Counters(gpu.name)
            return Counters(gpu.name, energy_mj=int(counter * resolution / 1000))
        return Counters(gpu.name)
    finally:
        amdsmi.amdsmi_shut_down()


def _rapl_zones(root: Root) -> tuple[dict[str, tuple[int, float]], str | None]:
    """The RAPL zones that add up to the CPU's energy, and why there are none if so.

    Each package, and its DRAM where that is a domain of its own (``core`` and ``uncore`` are
    parts of a package; ``psys``, the platform, holds the packages). By zone folder:
    (``max_energy_range_uj``, the highest power it may draw).
    """
    if not _platform.LINUX:
        return {}, "no RAPL counters on this platform"
    zones: dict[str, tuple[int, float]] = {}
    for name in root.listdir(POWERCAP):
        if not name.startswith("intel-rapl:"):
            continue
        folder = f"{POWERCAP}/{name}"
        kind = (root.read_line(f"{folder}/name") or "").lower()
        depth = name.count(":")
        if (depth == 1 and kind.startswith("package")) or (depth == 2 and kind == "dram"):
            span_range = positive_int(root.read_line(f"{folder}/max_energy_range_uj"))
            if span_range is None:
                return {}, f"{name} gives no max_energy_range_uj"
            zones[folder] = (span_range, _highest_watts(root, folder))
    if not zones:
        return {}, "no RAPL package zone in /sys/class/powercap"
    return zones, None


def _highest_watts(root: Root, folder: str) -> float:
    """The highest power limit a zone names (its constraints), in watts."""
    limits = []
    for entry in root.listdir(folder):
        if entry.startswith("constraint_") and entry.endswith(("_max_power_uw", "_power_limit_uw")):
            microwatts = positive_int(root.read_line(f"{folder}/{entry}"))
            if microwatts is not None:
                limits.append(microwatts / 1e6)
    return max(limits) if limits else FALLBACK_ZONE_WATTS


def _read_energy(root: Root, folder: str) -> tuple[int | None, str | None]:
    """A zone's ``energy_uj``, or why it cannot be read.

    Root only, since the kernel's fix of CVE-2020-8694 (Linux 5.10, backported).
    """
    try:
        with open(root.join(f"{folder}/energy_uj"), "rb") as handle:
            return positive_int(handle.read(64).decode("ascii", "replace")), None
    except PermissionError:
        return None, "powercap energy_uj is readable by root only"
    except OSError as exc:
        return None, f"{folder}/energy_uj: {exc.strerror or exc}"


def _rusage_kib() -> tuple[int | None, int | None]:
    """Peak resident set of this process and of its largest waited-for child, in KiB."""
    try:
        import resource
    except ImportError:  # Windows
        return None, None
    scale = 1024 if _platform.MACOS else 1  # macOS says bytes, Linux kibibytes
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // scale
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // scale
    return int(own), int(children)


def _torch_peak() -> int | None:
    """PyTorch's allocator peak over its devices, only when PyTorch is imported and CUDA initialised."""
    torch = sys.modules.get("torch")
    cuda: Any = getattr(torch, "cuda", None)
    try:
        if cuda is None or not cuda.is_initialized():
            return None
        return max(int(cuda.max_memory_reserved(i)) for i in range(cuda.device_count()))
    except Exception:  # a half-imported or broken torch: not a peak we can tell
        return None


def _owned_cgroup(root: Root, pid: int) -> str | None:
    """The cgroup v2 folder holding ``memory.peak`` when ``pid`` is alone in it, else ``None``."""
    if not _platform.LINUX:
        return None
    from .collectors import _cgroup

    version, folders = _cgroup.controller_dirs(root, "memory")
    if version != 2 or not folders:
        return None
    folder = folders[0]
    members = (root.read(f"{folder}/cgroup.procs") or "").split()
    if members != [str(pid)] or not root.exists(f"{folder}/memory.peak"):
        return None
    return folder
