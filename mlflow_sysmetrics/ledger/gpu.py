"""The GPUs' counters: energy, clocks held down, ECC errors, PCIe replays, NVLink bytes, activity.

The GPUs are the ones the run may use (the rules of ``sys.gpu_count``); a MIG instance or a
compute partition counts its whole device, whose counters it shares. Each device's
counters come from its vendor module's ``counters`` (the accelerator contract's optional
part, :mod:`..collectors.accelerators.counters`), so a vendor's counters are one function
in its module. A figure over several GPUs needs every GPU's counter: a GPU that lacks it
leaves the figure out, named with the reason.

The run's process's account on each GPU (the vendor's ``process_accounting``: NVIDIA's
accounting) is read here too, once a reading, for two figures: how long a kernel ran
(``sys.gpu_busy_pct``) on a GPU that keeps no count of its own (AMD's accumulated activity
and NVIDIA's GPM count the device), which then counts that process's kernels only, and
``sys.ledger`` says so; and the GPU memory peak (:mod:`.gpu_memory`, which takes it from here).
"""

from __future__ import annotations

import os
import time

from .. import tags as T
from .._value import Record
from ._meter import Book, Meter, Uncountable, Unwrapped

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Callable

    from .._context import Context
    from ..collectors.accelerators.counters import Counters, ProcessAccounting
    from ..collectors.accelerators.device import Device


class Gpu(Record):
    """One device the run may use, whole (a MIG instance's GPU), and its vendor's optional parts if any."""

    vendor: str
    name: str
    device: Device
    counters: Callable[[Device], Counters] | None = None
    process: Callable[[Device, int], ProcessAccounting] | None = None


#: Why no GPU is counted where their inventory was not read in time (a driver that does not answer).
NOT_READ = "the GPUs were not read within the collection's deadline (MLFLOW_SYSMETRICS_TIMEOUT)"
#: Why the GPUs' meter has no first reading where their library's session did not open in time.
NO_SESSION = "the GPU driver did not answer within the collection's deadline (MLFLOW_SYSMETRICS_TIMEOUT)"


def counted_gpus(ctx: Context, book: Book) -> list[Gpu]:
    """The devices the run may use (``sys.gpu_count``'s rules), each whole device once.

    From the inventories the collection read (the ``gpu`` collector's), so that a span never
    waits on a GPU driver: where that read has not ended (a driver that does not answer,
    past the collection's deadline), :class:`Uncountable`. Where none was asked for (the GPU
    tags left out, a span with no collection before it), they are read now, within ``ctx``'s
    deadline.
    """
    from ..collectors import accelerators

    if not accelerators.has_sources(ctx.root):
        return []
    inventories = accelerators.cached_inventories(ctx.root)
    if inventories is None:
        if accelerators.inventories_under_way(ctx.root):
            raise Uncountable(NOT_READ)
        try:
            inventories = ctx.within_deadline(lambda: accelerators.read_inventories(ctx), "gpu inventory")
        except TimeoutError:
            raise Uncountable(NOT_READ) from None
    selection = accelerators.visible_devices(inventories)
    parents = {
        id(instance): device
        for inv in inventories
        for device in inv.devices
        for instance in device.mig_devices
    }
    rows = {vendor.name: vendor for vendor in accelerators.VENDORS}
    found: dict[str, Gpu] = {}
    shared = False
    for device in selection.devices:
        whole: Device = parents.get(id(device), device)
        shared = shared or whole is not device
        key = whole.uuid or whole.bus_id or f"{whole.vendor}:{whole.index}"
        shared = shared or (key in found and whole.vendor == "amd")  # compute partitions of one device
        row = rows.get(whole.vendor)
        module = row.module() if row is not None and ctx.root.is_live else None  # not a replayed machine's
        counters = getattr(module, "counters", None)
        process = getattr(module, "process_accounting", None)
        found.setdefault(key, Gpu(whole.vendor, whole.name, whole, counters, process))
    if shared:
        book.note("energy and counters of a MIG instance or partition are its whole device's")
    return list(found.values())


#: The counters summed over the GPUs: (field, metric, what ``sys.ledger`` calls it, scale).
SUMS = (
    ("ecc_uncorrected", T.GPU_ECC_ERRORS, "gpu uncorrected ECC errors", 1.0),
    ("pcie_replays", T.GPU_PCIE_REPLAYS, "gpu PCIe replays", 1.0),
    ("nvlink_rx_kib", T.NVLINK_RX_GB, "nvlink traffic", 1024 / 1e9),
    ("nvlink_tx_kib", T.NVLINK_TX_GB, "nvlink traffic", 1024 / 1e9),
)
#: Times the clocks were held down, as a share of the run: (fields, metric, what, combine over GPUs).
SHARES = (
    (("power_cap_ns",), T.GPU_THROTTLE_POWER_PCT, "gpu throttling by the power cap", max),
    (("thermal_ns",), T.GPU_THROTTLE_THERMAL_PCT, "gpu throttling by temperature", max),
    (("hw_thermal_ns", "hw_power_brake_ns"), T.GPU_THROTTLE_HW_PCT, "gpu hardware slowdown", max),
    (("low_util_ns",), T.GPU_LOW_UTIL_PCT, "gpu clocks lowered for lack of work", None),
)


#: Why a GPU whose accounting has no record of the run's process gives no busy share.
OTHERS = "accounting counts this process alone, and other processes of the run may have used the GPU"


class Reading(Record):
    """The GPUs' counters at one moment, with each one's energy since the first reading (wraps undone).

    ``processes``: the run's process's account on each GPU whose vendor keeps one.
    """

    counters: dict[str, Counters | None]
    energy: dict[str, tuple[int, str | None]]
    problems: dict[str, str]
    processes: dict[str, ProcessAccounting]


def lacking(gpu: Gpu, why: str | None) -> str:
    """``sys.ledger``'s words for a counter ``gpu`` does not give: ``why``, or that it keeps none."""
    return f"{gpu.name}: {why}" if why else f"{gpu.name} keeps no such counter"


class GpuMeter(Meter):
    """The counters of the GPUs the run may use (see the module).

    ``context``: the span's, whose deadline bounds the first reading, which opens the
    vendors' libraries (NVML's ``nvmlInit``, amdsmi's session): a driver that does not
    answer costs the GPUs' figures and at most the deadline, never the run's start. Later
    readings use the session that one opened. Without one the first reading waits as long
    as the libraries do.
    """

    name = "gpu counters"

    def __init__(self, gpus: list[Gpu], context: Context | None = None) -> None:
        self.gpus = {
            gpu.device.uuid or gpu.device.bus_id or f"{gpu.vendor}:{gpu.device.index}": gpu for gpu in gpus
        }
        self._context = context
        self._energy: dict[str, Unwrapped] = {}
        self.pid = os.getpid()
        self.born_in_run = False
        #: The run's process's account on each GPU at the last reading (:mod:`.gpu_memory` reads it).
        self.processes: dict[str, ProcessAccounting] = {}

    def follow_program(self, pid: int) -> None:
        """The run is program ``pid``: its accounting counts from its start, within the run."""
        self.pid = pid
        self.born_in_run = True

    def read(self, at: float | None = None) -> Reading:
        """Each GPU's counters now (a GPU whose vendor cannot count gives ``None``).

        ``at``: the moment of the reading on the monotonic clock (by default, now), which
        tells how far the counters that wrap can have moved since the last.
        """
        context, self._context = self._context, None
        if context is None:
            return self._read(at)
        try:  # the first reading: the libraries' sessions open here
            return context.within_deadline(lambda: self._read(at), "gpu counters")
        except TimeoutError:
            raise Uncountable(NO_SESSION) from None

    def _read(self, at: float | None) -> Reading:
        now = time.monotonic() if at is None else at
        reading = Reading({}, {}, {}, {})
        self.processes = reading.processes
        for key, gpu in self.gpus.items():
            self._process(reading, key, gpu)
            if gpu.counters is None:
                reading.counters[key] = None
                continue
            try:
                counters = gpu.counters(gpu.device)
            except Exception as exc:  # this GPU's figures are lost, the run's others are not
                reading.counters[key] = None
                reading.problems[key] = f"{type(exc).__name__}: {exc}"
                continue
            reading.counters[key] = counters
            energy = counters.energy_mj
            if energy is not None and counters.energy_modulus_mj:
                unwrapped = self._energy.get(key)
                if unwrapped is None:
                    # Only the energy counter sets how often the guard reads: AMD's 32-bit
                    # activity count (busy_modulus) grows by at most 100 a firmware cycle,
                    # but no document gives how many cycles a second, so no period follows
                    # it (a run long enough for it to wrap twice loses the busy share, named).
                    watts = counters.max_power_w or 2000.0
                    most = watts * 1000  # the counter's mJ a second
                    unwrapped = self._energy[key] = Unwrapped(energy, counters.energy_modulus_mj, most, now)
                    self.wrap_seconds = min(
                        self.wrap_seconds or float("inf"), counters.energy_modulus_mj / watts / 1000
                    )
                reading.energy[key] = (unwrapped.observe(energy, now), unwrapped.lost)
            elif energy is not None:
                reading.energy[key] = (energy, None)
        return reading

    def _process(self, reading: Reading, key: str, gpu: Gpu) -> None:
        """The run's process's account on ``gpu``, where its vendor keeps one."""
        if gpu.process is None:
            return
        try:
            reading.processes[key] = gpu.process(gpu.device, self.pid)
        except Exception as exc:  # this GPU's share and peak are lost, nothing else
            from ..collectors.accelerators.counters import ProcessAccounting

            problem = f"{type(exc).__name__}: {exc}"
            reading.processes[key] = ProcessAccounting(why=problem, busy_why=problem)

    def _deltas(
        self, first: Reading, last: Reading, field: str, what: str, book: Book, modulus: str | None = None
    ) -> list[int] | None:
        """Each GPU's increase of ``field``, or ``None`` (and why, in the book) if one is not known.

        ``modulus``: the field of the last reading that says where ``field`` wraps; a counter
        that has one is taken to have wrapped once where it is lower at the end (the caller
        tells whether it can have wrapped more often).
        """
        deltas = []
        for key, gpu in self.gpus.items():
            a, b = first.counters.get(key), last.counters.get(key)
            if a is None or b is None:
                book.lacks(what, lacking(gpu, last.problems.get(key) or first.problems.get(key)))
                return None
            before, after = getattr(a, field), getattr(b, field)
            if before is None or after is None:
                book.lacks(what, lacking(gpu, dict(b.why).get(field) or dict(a.why).get(field)))
                return None
            wraps_at = getattr(b, modulus) if modulus is not None else None
            if after < before and not wraps_at:
                book.lacks(what, f"{gpu.name}'s counter went backwards (a GPU reset or a driver reload)")
                return None
            deltas.append((after - before) % wraps_at if wraps_at else after - before)
        return deltas

    def figures(self, first: Reading, last: Reading, seconds: float, book: Book) -> None:
        """The GPUs' energy and mean power, throttling shares, errors and replays, NVLink bytes."""
        self._energy_figures(first, last, seconds, book)
        for fields, key, what, combine in SHARES:
            per_gpu: list[float] | None = [0.0] * len(self.gpus)
            for field in fields:
                held = self._deltas(first, last, field, what, book)
                if held is None or per_gpu is None:
                    per_gpu = None
                    break
                per_gpu = [p + h for p, h in zip(per_gpu, held, strict=True)]
            if per_gpu:
                shares = [min(held / (seconds * 1e9) * 100, 100.0) for held in per_gpu]
                value = combine(shares) if combine is not None else sum(shares) / len(shares)
                book.add(key, round(value, 3))
        self._busy(first, last, seconds, book)
        links = any(gpu.device.nvlink_links for gpu in self.gpus.values())
        for field, key, what, scale in SUMS:
            if field.startswith("nvlink") and not links:
                continue  # GPUs without NVLink: nothing to count, nothing to say
            counts = self._deltas(first, last, field, what, book)
            if counts is not None:
                book.add(key, round(sum(counts) * scale, 6) if scale != 1.0 else float(sum(counts)))

    def _busy(self, first: Reading, last: Reading, seconds: float, book: Book) -> None:
        """``sys.gpu_busy_pct``: the mean over the GPUs of the share of the run a kernel ran.

        Each GPU's own count where it keeps one, else the run's process's accounting. A GPU
        whose accounting has no record of the process tells nothing: accounting covers that
        process alone, and the run's other processes (DDP ranks, spawned workers) may have
        kept it busy, so the share is absent, named.
        """
        what = "gpu busy"
        shares: list[float] = []
        by_accounting = 0
        for key, gpu in self.gpus.items():
            share, why = self._device_busy(key, gpu, first, last)
            if share is None:
                process = last.processes.get(key)
                if process is None:
                    book.lacks(what, why)
                    return
                if process.found is False:
                    book.lacks(what, f"{why}, and {process.busy_why}: {OTHERS}")
                    return
                share, process_why = self._process_busy(first.processes.get(key), process, seconds)
                if share is None:
                    book.lacks(what, f"{why}, and {process_why}")
                    return
                by_accounting += 1
            shares.append(share)
        if by_accounting:
            book.note("gpu busy: the kernels of the run's own process only (NVML accounting)")
        book.add(T.GPU_BUSY_PCT, round(sum(shares) / len(shares), 3))

    @staticmethod
    def _device_busy(key: str, gpu: Gpu, first: Reading, last: Reading) -> tuple[float | None, str]:
        """The share of the run a kernel ran on ``gpu`` by its own count, or why it cannot be told."""
        a, b = first.counters.get(key), last.counters.get(key)
        if a is None or b is None:
            return None, lacking(gpu, last.problems.get(key) or first.problems.get(key))
        if a.busy is None or b.busy is None or a.busy_of is None or b.busy_of is None:
            field = "busy" if a.busy is None or b.busy is None else "busy_of"
            return None, lacking(gpu, dict(b.why).get(field) or dict(a.why).get(field))
        busy, of, wraps_at = b.busy - a.busy, b.busy_of - a.busy_of, b.busy_modulus
        if of < 0 or (busy < 0 and not wraps_at):
            return None, f"{gpu.name}'s activity counter went backwards (a GPU reset or a driver reload)"
        if of == 0:
            return None, f"{gpu.name}'s activity counter did not move during the run"
        if wraps_at:
            if of >= wraps_at:  # busy grows by at most busy_of's growth
                return None, f"{gpu.name}'s activity counter wraps, and may have wrapped more than once"
            busy %= wraps_at
        return min(busy / of * 100, 100.0), ""

    def _process_busy(
        self, before: ProcessAccounting | None, after: ProcessAccounting, seconds: float
    ) -> tuple[float | None, str]:
        """The share of the run a kernel of the run's process ran on one GPU, or why it cannot be told.

        A process whose life there began within the run (a program run by ``mlflow-sysmetrics
        run``, or one whose accounting had no record of it at the start) counts from its
        start: its share over its life there, times that life over the run's. Else the
        change of its sums between the two readings.
        """
        if after.busy is None or after.busy_of is None:
            return None, after.busy_why or "not counted"
        if self.born_in_run or before is None or not before.found:
            if not after.busy_of:
                return None, f"no utilization sample of process {self.pid} yet"
            share = after.busy / after.busy_of * 100
            if after.life_ms is not None:
                share *= min(after.life_ms / (seconds * 1000), 1.0)
            return min(share, 100.0), ""
        if after.whole_life:
            return None, (
                "NVML accounting gives a share of the process's whole life, rounded to a percent: "
                "the run's only for a program run by mlflow-sysmetrics run (drivers 610 and newer "
                "give any span's)"
            )
        if before.busy is None or before.busy_of is None:
            return None, before.busy_why or "not counted at the start"
        busy, of = after.busy - before.busy, after.busy_of - before.busy_of
        if of <= 0 or busy < 0:
            return None, f"no utilization sample of process {self.pid} during the run"
        return min(busy / of * 100, 100.0), ""

    @staticmethod
    def _power(first: Reading, last: Reading, key: str) -> float | None:
        """The most power the GPU ``key`` was said to draw at the two readings, if its vendor says."""
        said = [c.power_w for c in (first.counters.get(key), last.counters.get(key)) if c and c.power_w]
        return max(said) if said else None

    def _energy_figures(self, first: Reading, last: Reading, seconds: float, book: Book) -> None:
        """Energy and mean power, absent where one GPU's counter cannot be believed.

        A counter that went back, one that stood still while its GPU drew power (a firmware
        or library that does not update it: never 0 Wh), and one that counted more than the
        board may draw (it restarted, and climbed back above its start).
        """
        what = "gpu energy"
        joules = 0.0
        for key, gpu in self.gpus.items():
            a, b = first.energy.get(key), last.energy.get(key)
            if a is None or b is None:
                counters = last.counters.get(key) or first.counters.get(key)
                why = dict(counters.why).get("energy_mj") if counters is not None else None
                book.lacks(what, lacking(gpu, why or last.problems.get(key) or first.problems.get(key)))
                return
            if b[1] is not None:
                book.lacks(what, f"{gpu.name}: {b[1]}")
                return
            if b[0] < a[0]:
                book.lacks(what, f"{gpu.name}'s counter went backwards (a GPU reset or a driver reload)")
                return
            drew = self._power(first, last, key)
            if b[0] == a[0] and drew:
                book.lacks(
                    what,
                    f"{gpu.name}'s energy counter did not move during the run while it drew {drew:g} W "
                    "(a counter its firmware or library does not update)",
                )
                return
            gpu_joules = (b[0] - a[0]) / 1000
            counters = last.counters.get(key) or first.counters.get(key)
            ceiling = counters.max_power_w if counters is not None else None
            if ceiling is not None and gpu_joules / seconds > ceiling * 1.05:
                book.lacks(
                    what,
                    f"{gpu.name} counted {gpu_joules / seconds:.0f} W on average, above its {ceiling:g} W "
                    "maximum limit: a counter that restarted (a driver reload) is not the run's energy",
                )
                return
            joules += gpu_joules
        book.add(T.GPU_ENERGY_WH, round(joules / 3600, 6))
        book.add(T.GPU_POWER_AVG_W, round(joules / seconds / len(self.gpus), 3))
