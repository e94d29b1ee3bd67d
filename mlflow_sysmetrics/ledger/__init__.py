"""The run's ledger: what a run consumed and what held it back, counted by the hardware and the kernel.

:func:`start` reads, at a run's start, the cumulative counters the hardware and the kernel
already keep; :meth:`Span.finish` reads them again at its end and returns the differences
and peaks as MLflow metrics, with ``sys.ledger`` saying what could not be counted and why.
Two reads per run and nothing in between, except where a counter can wrap within a run
(RAPL, AMD's 32-bit accumulators): a guard thread then reads those at half their shortest
wrap period.

Each source is a meter behind one protocol (:class:`~._meter.Meter`: read now; figures
from two readings and the seconds between), one module each:

- :mod:`.gpu`: the GPUs the run may use (the rules of ``sys.gpu_count``; a MIG instance
  or a compute partition counts its whole device), through each vendor's ``counters``;
- :mod:`.gpu_memory`: the GPU memory the run held at its peak;
- :mod:`.rapl`: the CPU packages' energy;
- :mod:`.memory`: the peak resident memory;
- :mod:`.cpu_time`: how busy the cores the run could use were (its process tree's CPU time);
- :mod:`.throttling`: how often the cgroup's CPU quota held the run back;
- :mod:`.pressure`: the share of the run some task was stalled on CPU, I/O or memory (PSI).
- :mod:`.io`: the storage bytes the run's processes read and wrote;
- :mod:`.network`: the bytes over the network namespace's interfaces;
- :mod:`.rdma`: the bytes over the RDMA ports ``sys.network`` counts.

A figure that cannot be counted (no counter, a counter that went backwards, permission, a
value the source marks "not available") is absent and named in ``sys.ledger``, never 0,
never negative, never a guess. A meter that fails costs its own figures and one clause.
Figures made from other figures (GPU hours, CO2) come after the meters.
"""

from __future__ import annotations

from ._meter import ProgramExit
from ._span import Ledger, Span, start

__all__ = ["Ledger", "ProgramExit", "Span", "start"]
