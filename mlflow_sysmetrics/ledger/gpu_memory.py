"""The most GPU memory the run held: PyTorch's allocator, else the driver's per-process accounting.

PyTorch's ``max_memory_reserved`` when PyTorch is imported and CUDA initialised in this
process (never importing or initialising either): what its caching allocator reserved,
which leaves out the CUDA context and NCCL's buffers. Else the vendor's ``process_accounting``
(NVML accounting's ``maxMemoryUsage``: the "maximum total memory ... ever allocated by the
process"), as the GPU meter read it (:class:`.gpu.GpuMeter` reads the process's account once
a reading, for this figure and its busy share). Both count from before the run: they are
read at both ends, and only a rise is the run's. A program run by ``mlflow-sysmetrics run``
is born in the run, so its accounting counts from zero.
"""

from __future__ import annotations

import sys

from .. import tags as T
from .._value import gb
from ._meter import Book, Meter, Uncountable

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from typing import Any

    from ..collectors.accelerators.counters import ProcessAccounting
    from .gpu import GpuMeter


class GpuMemoryMeter(Meter):
    """The run's GPU memory peak (see the module)."""

    name = "gpu memory peak"

    def __init__(self, counts: GpuMeter) -> None:
        self.counts = counts
        self.born_in_run = False
        self.sources = [(key, gpu) for key, gpu in counts.gpus.items() if gpu.process is not None]

    def follow_program(self, pid: int) -> None:
        """The run is program ``pid``, whose account (the GPU meter reads it) counts from zero."""
        self.born_in_run = True

    def read(self) -> tuple[int | None, list[ProcessAccounting]]:
        """PyTorch's peak (``None`` unless initialised here), and each device's view of the process."""
        torch = None if self.born_in_run else torch_peak()
        if torch is not None:
            return torch, []
        processes = self.counts.processes  # read by the GPU meter just now, in the same reading
        if any(key not in processes for key, _ in self.sources):
            raise Uncountable("the GPU meter did not read the process's account")
        return None, [processes[key] for key, _ in self.sources]

    def figures(
        self,
        first: tuple[int | None, list[ProcessAccounting]],
        last: tuple[int | None, list[ProcessAccounting]],
        seconds: float,
        book: Book,
    ) -> None:
        """``sys.gpu_memory_peak_gb``."""
        if last[0] is not None:
            if first[0] is not None and last[0] <= first[0]:
                raise Uncountable(
                    "PyTorch's peak was reached before the run began, so the run's own is not known"
                )
            book.add(T.GPU_MEMORY_PEAK_GB, round(last[0] / 1e9, 3))
            return
        if not self.sources:
            raise Uncountable("no PyTorch allocator with CUDA initialised, and no per-process accounting")
        peaks: list[int] = []
        befores: list[ProcessAccounting | None] = list(first[1]) if first[1] else [None] * len(last[1])
        for (_, gpu), before, after in zip(self.sources, befores, last[1], strict=True):
            if after.peak_bytes is None:
                held = f"; this process held {gb(after.held_bytes)} GB at the end" if after.held_bytes else ""
                raise Uncountable(f"{gpu.name}: {after.why or 'not counted'}{held}")
            start = 0 if self.born_in_run or before is None else before.peak_bytes or 0
            if after.peak_bytes > start:
                peaks.append(after.peak_bytes)
        if not peaks:
            raise Uncountable(
                "the process's peak was reached before the run began, so the run's own is not known"
            )
        book.add(T.GPU_MEMORY_PEAK_GB, round(max(peaks) / 1e9, 3))


def torch_peak() -> int | None:
    """PyTorch's allocator peak over its devices, only when PyTorch is imported and CUDA initialised."""
    torch = sys.modules.get("torch")
    cuda: Any = getattr(torch, "cuda", None)
    try:
        if cuda is None or not cuda.is_initialized():
            return None
        return max(int(cuda.max_memory_reserved(i)) for i in range(cuda.device_count()))
    except Exception:  # a half-imported or broken torch: not a peak we can tell
        return None
