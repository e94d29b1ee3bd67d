"""The vendor contract: every row of VENDORS names a module that offers it (as psutil checks its platforms)."""

from __future__ import annotations

import inspect

import pytest

from mlflow_sysmetrics.collectors.accelerators import VENDORS
from mlflow_sysmetrics.collectors.accelerators.contract import AccountingVendor, CountingVendor, VendorModule


def _members(protocol: type) -> dict[str, list[str]]:
    """The members a Protocol declares itself and their parameters (less ``self``)."""
    return {
        name: list(inspect.signature(member).parameters)[1:]
        for name, member in vars(protocol).items()
        if inspect.isfunction(member) and not name.startswith("_")
    }


#: The contract's members and their parameters, as the Protocol declares them.
MEMBERS = _members(VendorModule)
#: The optional parts: a vendor that offers one offers it with these parameters.
OPTIONAL = {**_members(CountingVendor), **_members(AccountingVendor)}


def test_the_contract_names_inventory_and_visible() -> None:
    """The Protocol declares what the gpu collector calls, with the parameters it passes."""
    assert MEMBERS == {"inventory": ["ctx"], "visible": ["devices", "env"]}


def test_every_vendor_is_a_row() -> None:
    """The vendors the package knows are rows, so the contract test below checks each."""
    assert {"nvidia", "amd", "apple", "windows"} <= {vendor.name for vendor in VENDORS}


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda vendor: vendor.name)
def test_every_vendor_offers_the_contract(vendor: object) -> None:
    """Each member is a function whose parameters begin with the contract's; any others have defaults."""
    module = vendor.module()  # type: ignore[attr-defined]
    for name, expected in MEMBERS.items():
        function = getattr(module, name, None)
        assert callable(function), f"{vendor.name} offers no {name}"  # type: ignore[attr-defined]
        parameters = list(inspect.signature(function).parameters.values())
        assert expected == [p.name for p in parameters[: len(expected)]], (vendor, name)
        extra = [p.name for p in parameters[len(expected) :] if p.default is inspect.Parameter.empty]
        assert extra == [], f"{name} needs more than the contract gives: {extra}"


def test_the_optional_parts_are_the_ledgers() -> None:
    """The optional parts are what the ledger's GPU meters ask a vendor module for."""
    assert OPTIONAL == {"counters": ["device"], "process_accounting": ["device", "pid"]}


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda vendor: vendor.name)
def test_an_optional_part_a_vendor_offers_has_the_contracts_parameters(vendor: object) -> None:
    """NVIDIA offers both optional parts, AMD the counters; each with the parameters the ledger passes."""
    module = vendor.module()  # type: ignore[attr-defined]
    offered = {name for name in OPTIONAL if callable(getattr(module, name, None))}
    expected = {"nvidia": {"counters", "process_accounting"}, "amd": {"counters"}}
    assert expected.get(vendor.name, set()) == offered  # type: ignore[attr-defined]
    for name in offered:
        parameters = list(inspect.signature(getattr(module, name)).parameters)
        assert OPTIONAL[name] == parameters, (vendor, name)
