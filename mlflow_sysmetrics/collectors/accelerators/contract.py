"""The vendor contract: what each row of :data:`.VENDORS` names a module for.

A vendor module (``nvidia``, ``amd``, ``apple``, ``windows``, beside this one) offers the two
functions of :class:`VendorModule`; ``tests/unit/test_vendor_contract.py`` checks that
each row's module does (names and parameters), and ``tests/typing/vendors.py`` that a type
checker accepts each as one.

Optional parts, which a vendor offers where its hardware keeps them:

- ``counters``: the cumulative counters the run's ledger reads at a run's start and end
  (energy, time held down by power and temperature, ...). Today NVIDIA's
  (:mod:`.nvidia.counters`) and AMD's energy (in ``mlflow_sysmetrics._ledger``); its shape
  in this contract is defined with the ledger's next form.

This module imports ``typing``: the package imports it only for the type checker.
"""

from __future__ import annotations

from typing import Protocol

TYPE_CHECKING = False  # the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ..._context import Context
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
