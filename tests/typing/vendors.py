"""Each vendor module is a ``VendorModule`` to a type checker (checked by ``mypy --strict``, never run).

A module whose ``inventory`` or ``visible`` stopped matching the Protocol (a parameter
missing or of another type, another return type) fails the check. mypy does not compare
the names of positional parameters: ``tests/unit/test_vendor_contract.py`` does, at run time.
"""

from __future__ import annotations

from mlflow_sysmetrics.collectors.accelerators import amd, apple, nvidia, windows
from mlflow_sysmetrics.collectors.accelerators.contract import AccountingVendor, CountingVendor, VendorModule

NVIDIA: VendorModule = nvidia
AMD: VendorModule = amd
APPLE: VendorModule = apple
WINDOWS: VendorModule = windows
EVERY: tuple[VendorModule, ...] = (nvidia, amd, apple, windows)
# The optional parts (the ledger's): who offers them.
NVIDIA_ACCOUNTS: AccountingVendor = nvidia
AMD_COUNTS: CountingVendor = amd
