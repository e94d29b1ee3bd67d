"""A run's span: every meter read at its start and at its end, and the figures they make.

The meters every machine has are imported with this module (with the package, when a door
that counts is first imported), so that a run's first span pays for reading, not for
loading code; the GPU memory meter where there are GPUs, the RDMA meter where there is a
fabric.
"""

from __future__ import annotations

import threading
import time

from .. import _log
from .. import settings as _settings
from .. import tags as T
from .._context import Context
from .._files import Root
from .._value import MAX_VALUE_LENGTH, Record, clip
from . import cpu_time, gpu, io, memory, network, pressure, rapl, throttling
from ._meter import Book, Guard, Meter, ProgramExit, Uncountable

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class Ledger(Record):
    """What a span consumed: metrics by key, and ``sys.ledger``'s text."""

    metrics: dict[str, float]
    text: str


class Setup(Record):
    """What the meters are built from: where to read, until when, and the GPUs the run may use."""

    root: Root
    context: Context
    gpus: list[gpu.Gpu] | None = None
    #: The GPUs' meter, which the GPU memory meter reads the process's account from.
    gpu_meter: gpu.GpuMeter | None = None


def _gpu_meter(setup: Setup) -> Meter | None:
    return setup.gpu_meter


def _gpu_memory_meter(setup: Setup) -> Meter | None:
    if setup.gpu_meter is None:
        return None  # and its module is not imported
    from .gpu_memory import GpuMemoryMeter

    return GpuMemoryMeter(setup.gpu_meter)


def _rdma_meter(setup: Setup) -> Meter | None:
    from ..collectors.network import BASE

    if not setup.root.listdir(BASE):
        return None  # no RDMA device: nothing to count, and no module to load
    from .rdma import meter

    return meter(setup.root)


#: Every meter, in the order ``sys.ledger`` names what they could not count: what ``sys.ledger``
#: calls it if it cannot be built, and how to build it (``None``: nothing of it here to count).
METERS: tuple[tuple[str, Callable[[Setup], Meter | None]], ...] = (
    ("gpu counters", _gpu_meter),
    ("gpu memory peak", _gpu_memory_meter),
    ("cpu energy", lambda setup: rapl.RaplMeter(setup.root)),
    ("memory peak", lambda setup: memory.MemoryMeter(setup.root)),
    ("cpu use", lambda setup: cpu_time.CpuTimeMeter(setup.root)),
    ("cpu throttling", lambda setup: throttling.ThrottlingMeter(setup.root)),
    ("stalls", lambda setup: pressure.PressureMeter(setup.root)),
    ("storage io", lambda setup: io.IoMeter(setup.root)),
    ("network", lambda setup: network.NetworkMeter(setup.root)),
    ("rdma", _rdma_meter),
)


def _problem(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, Uncountable) else f"{type(exc).__name__}: {exc}"


class Span:
    """A run's span: the meters read at its start; :meth:`finish` reads them again."""

    def __init__(self) -> None:
        settings = _settings.current()
        root = Root(settings.root)
        self.book = Book()
        setup = Setup(root, Context(root, time.monotonic() + settings.timeout))
        try:
            gpus = gpu.counted_gpus(setup.context, self.book)
            setup = setup._replace(gpus=gpus, gpu_meter=gpu.GpuMeter(gpus, setup.context) if gpus else None)
        except Exception as exc:  # the GPUs' figures are lost, the others' are not
            self.book.lacks("gpu counters", _problem(exc))
        self.gpu_count = None if setup.gpus is None else len(setup.gpus)
        self.meters: list[Meter] = []
        for name, build in METERS:
            try:
                meter = build(setup)
            except Exception as exc:
                self.book.lacks(name, _problem(exc))
                continue
            if meter is not None:
                self.meters.append(meter)
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.first = self._read()
        self._guard = Guard(self.meters, self._lock)
        self._guard.start()

    def _read(self) -> dict[Meter, Any]:
        """Every meter's reading now; a meter that fails is named and read no more."""
        readings: dict[Meter, Any] = {}
        with self._lock:
            for meter in list(self.meters):
                try:
                    readings[meter] = meter.read()
                except Exception as exc:
                    self.book.lacks(meter.name, _problem(exc))
                    self.meters.remove(meter)
        return readings

    def follow_program(self, pid: int) -> None:
        """The run is program ``pid``, started now as a child (``mlflow-sysmetrics run``)."""
        self._tell(lambda meter: meter.follow_program(pid))

    def program_exited(self, ended: ProgramExit) -> None:
        """The program the span follows has ended, as its parent saw it (its peak, ...)."""
        self._tell(lambda meter: meter.program_exited(ended))

    def _tell(self, hook: Callable[[Meter], None]) -> None:
        """Each meter told of the program; one that fails is named and read no more (the program runs on)."""
        with self._lock:
            for meter in list(self.meters):
                try:
                    hook(meter)
                except Exception as exc:
                    self.book.lacks(meter.name, _problem(exc))
                    self.meters.remove(meter)

    def finish(self) -> Ledger:
        """Read the meters again: what the span consumed, and what could not be counted."""
        self._guard.stop()
        last = self._read()
        seconds = max(time.monotonic() - self.started, 1e-9)
        book = self.book
        for meter in self.meters:
            if meter not in self.first or meter not in last:
                continue
            try:
                meter.figures(self.first[meter], last[meter], seconds, book)
            except Exception as exc:
                book.lacks(meter.name, _problem(exc))
        if self.gpu_count is not None:
            book.add(T.GPU_HOURS, round(self.gpu_count * seconds / 3600, 9))
        _co2(book)
        return Ledger(book.metrics, clip(book.text(), MAX_VALUE_LENGTH))


def _co2(book: Book) -> None:
    grams_per_kwh = _settings.grid_intensity()
    if grams_per_kwh is None:
        return
    counted = [book.metrics[key] for key in (T.GPU_ENERGY_WH, T.CPU_ENERGY_WH) if key in book.metrics]
    if not counted:
        book.lacks("co2", "no energy was counted")
        return
    if len(counted) == 1:
        book.note(f"co2: from {'GPU' if T.GPU_ENERGY_WH in book.metrics else 'CPU'} energy only")
    book.add(T.CO2_G, round(sum(counted) / 1000 * grams_per_kwh, 6))


def start() -> Span | None:
    """A span starting now, or ``None`` when the ledger is off or cannot start (never raises)."""
    if not _settings.ledger_enabled():
        return None
    try:
        return Span()
    except Exception:  # a ledger that cannot start never stops a run
        _log.logger().warning("the run's ledger could not start", exc_info=True)
        return None
