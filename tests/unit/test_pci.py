"""The PCI bus: a GPU's link, as both ends of the slot's link say it (sysfs-bus-pci)."""

from __future__ import annotations

import shutil
from pathlib import Path

from mlflow_sysmetrics import collect
from mlflow_sysmetrics._files import Root
from mlflow_sysmetrics.collectors.accelerators import pci
from tests.conftest import FIXTURES, Replay, expected


def test_a_gen5_gpu_in_a_gen4_slot(replay: Replay) -> None:
    """An H100 PCIe (max_link_speed 32 GT/s) under a 16 GT/s root port: the link is Gen4.

    max_link_speed is what one end supports (pcie_get_speed_cap); the link runs at the
    lower end, which is what nvidia-smi's pcie.link.gen.max ("possible with this GPU and
    system") says too.
    """
    root = replay("h100-pcie-gen4-server")
    assert collect()["sys.gpu_link"] == expected("h100-pcie-gen4-server")["sys.gpu_link"]
    assert pci.link(Root(str(root)), "0000:17:00.0") == (4, 16)


def test_an_amd_gpu_behind_its_own_switch_in_an_x8_slot(replay: Replay) -> None:
    """A W7900 (x16 to AMD's internal switch 1478/1479) in a slot wired x8: PCIe Gen4 x8.

    The slot's link is above the switch (amdgpu_device_partner_bandwidth skips 1002 bridges);
    idle, amdgpu has narrowed it to x1 (pp_dpm_pcie level 0), which must not shrink the tag.
    """
    root = replay("amd-w7900-x8-slot", commands=False)
    assert collect()["sys.gpu_link"] == expected("amd-w7900-x8-slot")["sys.gpu_link"]
    assert pci.link(Root(str(root)), "0000:03:00.0") == (4, 16)  # the GPU's own link, to the switch


def test_an_amd_link_trained_narrower_at_full_speed(replay: Replay) -> None:
    """A W7900's slot link at 16.0 GT/s (the most both ends allow) but x8 where both ends support x16.

    amdgpu's power levels lower the speed with the width; at full speed the link is in none,
    so x8 is the width it runs at (fixture README: sysfs-bus-pci's current_link_speed and
    current_link_width, amdgpu_device_partner_bandwidth for the slot's link).
    """
    root = replay("amd-w7900-x8-full-speed", commands=False)
    assert collect()["sys.gpu_link"] == expected("amd-w7900-x8-full-speed")["sys.gpu_link"]
    link = pci.link(
        Root(str(root)), "0000:03:00.0", internal_bridge_vendor=0x1002, width_drops_when_idle=True
    )
    assert link == (4, 8)


def test_an_amd_link_narrowed_by_a_power_state_is_told_at_its_width(tmp_path: Path) -> None:
    """The same machine idle (2.5 GT/s x1 at both ends of the slot's link): x16, what both ends support."""
    root = tmp_path / "idle"
    shutil.copytree(FIXTURES / "amd-w7900-x8-full-speed", root, symlinks=True)
    slot = root / "sys/devices/pci0000:00/0000:00:01.1"
    for end in (slot, slot / "0000:01:00.0"):
        (end / "current_link_speed").write_text("2.5 GT/s PCIe\n")
        (end / "current_link_width").write_text("1\n")
    link = pci.link(
        Root(str(root)), "0000:03:00.0", internal_bridge_vendor=0x1002, width_drops_when_idle=True
    )
    assert link == (4, 16)
