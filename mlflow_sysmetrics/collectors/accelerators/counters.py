"""What a vendor's optional parts give the run's ledger: one GPU's counters now, one process's use of it.

The contract's optional parts (see :mod:`.contract`): a vendor module that can count offers

- ``counters(device: Device) -> Counters``: the device's cumulative counters now, each
  field ``None`` where the device or the library does not keep it, with the reason in
  :attr:`Counters.why` when it is more than "not kept" (a function missing from this
  library, a driver whose numbering of a counter is not known); and, where its driver
  keeps an account of each process (NVIDIA's accounting),
- ``process_accounting(device: Device, pid: int) -> ProcessAccounting``: the GPU memory
  one process holds and the most it ever held, and how long its kernels ran.

Each field fails alone: a vendor module catches what one call raises and names it in
``why``, so that a library without one function costs that field only.
"""

from __future__ import annotations

from ..._value import Record


class Counters(Record):
    """One GPU's cumulative counters at one moment (``None``: not kept; :attr:`why` may say why).

    - ``energy_mj``: millijoules since the driver loaded; ``energy_modulus_mj``: where that
      counter wraps (``None``: it does not within any run, as NVML's 64-bit counter);
    - ``power_cap_ns``, ``thermal_ns``: time the clocks were held down by the software power
      cap and by software thermal slowdown; ``hw_thermal_ns``, ``hw_power_brake_ns``: by
      hardware slowdown (HW thermal, HW power brake: clocks cut by half or more);
    - ``low_util_ns``: time the clocks were lowered because the GPU had too little work;
    - ``ecc_uncorrected``: uncorrected ECC errors (volatile); ``pcie_replays``: PCIe replays;
    - ``nvlink_rx_kib``, ``nvlink_tx_kib``: data over all its NVLink links;
    - ``busy``, ``busy_of``: a kernel (any process's) ran for ``busy`` of ``busy_of``, two
      cumulative counts in one unit, so that the share of a run is the ratio of their
      growths (AMD: ``gfx_activity_acc`` and 100 x ``accumulation_counter``; NVIDIA: GPM's
      graphics activity between this reading and the last, times the microseconds between
      them, summed from the process's first reading, and 100 x those microseconds);
      ``busy_modulus``: where ``busy`` wraps (AMD's 32-bit ``gfx_activity_acc``), ``None``
      where it does not within a run;
    - ``max_power_w``: the most power the board may be set to draw (its maximum limit), which
      a mean power over a run cannot exceed;
    - ``power_w``: the power the device draws now, as its driver reports it, which tells an
      energy counter that does not move (a firmware or library that does not update it)
      from a device that drew nothing.
    """

    energy_mj: int | None = None
    energy_modulus_mj: int | None = None
    power_cap_ns: int | None = None
    thermal_ns: int | None = None
    hw_thermal_ns: int | None = None
    hw_power_brake_ns: int | None = None
    low_util_ns: int | None = None
    ecc_uncorrected: int | None = None
    pcie_replays: int | None = None
    nvlink_rx_kib: int | None = None
    nvlink_tx_kib: int | None = None
    busy: int | None = None
    busy_of: int | None = None
    busy_modulus: int | None = None
    max_power_w: float | None = None
    power_w: float | None = None
    #: Why a field is ``None``, where there is more to say than "not kept": (field, reason) pairs.
    why: tuple[tuple[str, str], ...] = ()


class ProcessAccounting(Record):
    """One process's use of a device, as the driver accounts for it (``None``: cannot be told).

    - ``peak_bytes``, ``held_bytes``: the most GPU memory the process ever held there, and what
      it holds now; :attr:`why` says why the peak cannot be told (accounting off, a value the
      library marks "not available", a process id the driver does not know);
    - ``found``: whether the driver's account has a record of the process on the device (it
      has used it), ``None`` where there is no account to ask (accounting off);
    - ``busy``, ``busy_of``: a kernel of the process ran for ``busy`` of ``busy_of``, two
      counts in one unit since the process began to use the device (NVIDIA's accounting
      sums: ``sumGpuUtil`` and 10000 x ``sampleCount``, the driver's utilization samples);
    - ``whole_life``: ``busy`` of ``busy_of`` is a share of the process's whole life there,
      rounded to a percent (NVIDIA's ``gpuUtilization``), whose change between two readings
      tells no span's share: it is a span's only where the process began within it;
    - ``life_ms``: how long the process has used the device (its compute context's life);
    - ``busy_why``: why ``busy`` cannot be told.
    """

    peak_bytes: int | None = None
    held_bytes: int | None = None
    why: str | None = None
    found: bool | None = None
    busy: int | None = None
    busy_of: int | None = None
    whole_life: bool = False
    life_ms: int | None = None
    busy_why: str | None = None
