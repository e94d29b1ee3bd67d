"""Windows, replayed from recorded registry values and PowerShell output.

The registry is the OS boundary: a recorded registry stands in for winreg.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from mlflow_sysmetrics._context import Context
from mlflow_sysmetrics._files import Root
from mlflow_sysmetrics.collectors import cloud, for_platform, windows_registry
from mlflow_sysmetrics.collectors.accelerators import windows as display_adapters
from mlflow_sysmetrics.collectors.accelerators.device import gpu_tags
from mlflow_sysmetrics.collectors.system import windows_name
from tests.conftest import FakeCommands

DISPLAY = display_adapters.DISPLAY_CLASS_KEY


class RecordedRegistry:
    """Values as the registry editor showed them on a Windows 11 workstation."""

    def __init__(self, keys: dict[str, dict[str, Any]]) -> None:
        self.keys = keys

    def values(self, path: str) -> dict[str, Any]:
        return dict(self.keys.get(path, {}))

    def subkeys(self, path: str) -> list[str]:
        prefix = path + "\\"
        return sorted({k[len(prefix) :].split("\\")[0] for k in self.keys if k.startswith(prefix)})


WORKSTATION = RecordedRegistry(
    {
        windows_registry.CPU_KEY: {
            "ProcessorNameString": "13th Gen Intel(R) Core(TM) i9-13900K   ",
            "~MHz": 2995,
        },
        f"{DISPLAY}\\0000": {
            "DriverDesc": "NVIDIA GeForce RTX 4090",
            "MatchingDeviceId": "pci\\ven_10de&dev_2684",
            "DriverVersion": "32.0.15.6094",
            "HardwareInformation.qwMemorySize": 25757220864,
        },
        f"{DISPLAY}\\0001": {
            "DriverDesc": "Intel(R) UHD Graphics 770",
            "MatchingDeviceId": "pci\\ven_8086&dev_a780",
            "DriverVersion": "31.0.101.4502",
            "HardwareInformation.MemorySize": b"\x00\x00\x00\x80",
        },
        f"{DISPLAY}\\0002": {
            "DriverDesc": "Microsoft Basic Display Adapter",
            "MatchingDeviceId": "root\\basicdisplay",
        },
        f"{DISPLAY}\\Properties": {},
        windows_registry.BIOS_KEY: {
            "SystemManufacturer": "Amazon EC2",
            "SystemProductName": "g5.xlarge",
            "BIOSVendor": "Amazon EC2",
        },
    }
)


def _context() -> Context:
    return Context(Root("/"), time.monotonic() + 5)


def test_cpu_from_registry() -> None:
    """ProcessorNameString, with Windows' padding removed."""
    assert windows_registry.cpu_model(WORKSTATION) == "13th Gen Intel(R) Core(TM) i9-13900K"
    assert (
        windows_registry.collect_cpu(_context(), WORKSTATION)["sys.cpu"]
        == "13th Gen Intel(R) Core(TM) i9-13900K"
    )


def test_display_adapters_from_registry() -> None:
    """PCI adapters only; NVIDIA's driver number recovered from the Windows one."""
    inventory = display_adapters.inventory(_context(), WORKSTATION)
    assert inventory is not None
    tags = gpu_tags(inventory.devices, [inventory])
    assert tags["sys.gpu"] == "1x NVIDIA GeForce RTX 4090, 1x Intel(R) UHD Graphics 770"
    assert tags["sys.gpu_count"] == "2"
    assert tags["sys.gpu_memory_gb"] == "25.76, 2.15"
    assert tags["sys.gpu_driver"] == "560.94, 31.0.101.4502"


@pytest.mark.parametrize(
    ("windows_version", "expected"), [("32.0.15.6094", "560.94"), ("31.0.15.5222", "552.22"), ("1.2", None)]
)
def test_nvidia_driver_number(windows_version: str, expected: str | None) -> None:
    """The last five digits of the Windows version are NVIDIA's release number."""
    assert display_adapters.nvidia_driver_from_windows(windows_version) == expected


def test_powershell_fallback(tmp_path: Path, fake_commands: FakeCommands) -> None:
    """With no adapters in the registry, PowerShell's CIM answer (one object, not a list) is used."""
    fake_commands(
        scripts={
            "powershell": "cat <<'JSON'\n"
            '{"Name": "NVIDIA RTX A6000", "PNPDeviceID": "PCI\\\\VEN_10DE&DEV_2230&SUBSYS_14591028", "DriverVersion": "31.0.15.3770"}\n'
            "JSON"
        }
    )
    inventory = display_adapters.inventory(_context(), RecordedRegistry({}))
    assert inventory is not None
    assert [d.name for d in inventory.devices] == ["NVIDIA RTX A6000"]


def test_windows_11_told_by_build() -> None:
    """Windows 11 reports release 10; builds from 22000 on are 11."""
    assert windows_name("10", "10.0.22631") == "Windows 11"
    assert windows_name("10", "10.0.19045") == "Windows 10"
    assert windows_name("", "") is None


def test_cloud_from_registry_bios_key() -> None:
    """The registry's BIOS key holds the same firmware strings as Linux DMI."""
    assert cloud.classify(windows_registry.dmi(WORKSTATION)) == {
        "sys.cloud": "aws",
        "sys.instance_type": "g5.xlarge",
    }


def test_windows_table_reads_the_registry_not_linux_files() -> None:
    """The Windows table's CPU and cloud collectors are the registry's; no Linux-only tags."""
    table = {c.name: c for c in for_platform("windows")}
    assert table["cloud"].function.__name__ == "collect_windows"
    assert table["cpu"].function is windows_registry.collect_cpu
    keys = {key for c in table.values() for key in c.keys}
    assert "sys.cloud" in keys
    assert "sys.container" not in keys
