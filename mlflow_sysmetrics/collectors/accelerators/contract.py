"""The vendor contract: what each row of :data:`.VENDORS` names a module for.

A vendor module (``nvidia``, ``amd``, ``apple``, ``windows``, beside this one) offers the two
functions of :class:`VendorModule`; ``tests/unit/test_vendor_contract.py`` checks that
each row's module does (names and parameters), and ``tests/typing/vendors.py`` that a type
checker accepts each as one.

Optional parts, which a vendor offers where its hardware keeps them (:class:`CountingVendor`):

- ``counters(device)``: the device's cumulative counters now (energy, the time its clocks
  were held down, errors, link traffic, activity), which the run's ledger reads at a run's
  start and end (:mod:`mlflow_sysmetrics.ledger.gpu`); NVIDIA's and AMD's offer it;
- ``process_accounting(device, pid)``: one process's use of the device as its driver
  accounts for it: the GPU memory it holds and the most it ever held, and how long its
  kernels ran (NVIDIA's accounting).

The ledger asks a vendor module for each with ``getattr``: a vendor without one counts none
of it, and ``sys.ledger`` says so.

This module imports ``typing``: the package imports it only for the type checker.
"""

from __future__ import annotations

from typing import Protocol

TYPE_CHECKING = False  # the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ..._context import Context
    from .counters import Counters, ProcessAccounting
    from .device import Device, Inventory
    from .visibility import Visible


class VendorModule(Protocol):
    """One accelerator vendor's module: its inventory, and what a process may use of it."""

    def inventory(self, ctx: Context) -> Inventory | None:
        """The vendor's devices on this machine (read once per process and root), or ``None``."""
        ...

    def visible(self, devices: Sequence[Device], env: Mapping[str, str]) -> Visible:
        """Which of ``devices`` a process may use under ``env`` (its runtime's variables)."""
        ...


class CountingVendor(VendorModule, Protocol):
    """A vendor module with the contract's optional parts for the run's ledger (see the module)."""

    def counters(self, device: Device) -> Counters:
        """The device's cumulative counters now; a call that fails costs its field (``Counters.why``)."""
        ...


class AccountingVendor(CountingVendor, Protocol):
    """A counting vendor that can also tell one process's use of a device (NVIDIA's accounting)."""

    def process_accounting(self, device: Device, pid: int) -> ProcessAccounting:
        """Process ``pid``'s use of ``device``: its GPU memory now and at most, how long its kernels ran."""
        ...
