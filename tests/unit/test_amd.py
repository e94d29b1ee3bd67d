"""AMD GPUs: PCI ids and amdgpu's sysfs files, rocm-smi only to fill gaps."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlflow_sysmetrics import collect, snapshot
from mlflow_sysmetrics.collectors.accelerators import amd
from tests.conftest import FakeCommands, Replay, documented, expected, fixture_root


def test_instinct_cards_from_sysfs_alone(replay: Replay) -> None:
    """Two MI250 dies: named from the PCI id, sized from mem_info_vram_total; the BMC's VGA is not counted."""
    replay("amd-mi250")
    tags = collect()
    assert (tags["sys.gpu"], tags["sys.gpu_count"], tags["sys.gpu_memory_gb"]) == documented(
        "amd-mi250", "sys.gpu", "sys.gpu_count", "sys.gpu_memory_gb"
    )
    assert tags["sys.gpu_driver"] == "6.7.0"
    assert "sysmetrics.error" not in tags


def test_processing_accelerators_are_gpus(replay: Replay) -> None:
    """MI300X announces itself as PCI class 0x12 (processing accelerator), not 0x03: still counted."""
    replay("amd-mi300x", commands=False)
    tags = collect()
    assert (tags["sys.gpu"], tags["sys.gpu_count"], tags["sys.gpu_memory_gb"]) == documented(
        "amd-mi300x", "sys.gpu", "sys.gpu_count", "sys.gpu_memory_gb"
    )
    assert tags["sys.gpu_driver"] == "6.10.5"
    assert [g["uuid"] for g in snapshot()["gpus"]] == ["GPU-d75e3bf1a4b1d8f7", "GPU-3b1c6a92e0f4d215"]


def test_rocr_visible_devices_takes_uuids(replay: Replay, monkeypatch: pytest.MonkeyPatch) -> None:
    """ROCR_VISIBLE_DEVICES takes indexes or GPU- UUIDs (ROCm's GPU isolation page)."""
    replay("amd-mi300x")
    monkeypatch.setenv("ROCR_VISIBLE_DEVICES", "GPU-3b1c6a92e0f4d215")
    assert collect()["sys.gpu_count"] == "1"
    assert snapshot()["gpus"][0]["bus_id"] == "0000:2f:00.0"


def test_hip_selects_among_what_rocr_left(replay: Replay, monkeypatch: pytest.MonkeyPatch) -> None:
    """ROCR is applied first; HIP's index 1 names nothing among the one GPU ROCR left."""
    replay("amd-mi300x")
    monkeypatch.setenv("ROCR_VISIBLE_DEVICES", "1")
    monkeypatch.setenv("HIP_VISIBLE_DEVICES", "0,1")
    assert collect()["sys.gpu_count"] == "1"
    assert snapshot()["gpus"][0]["bus_id"] == "0000:2f:00.0"


def test_hip_reads_cuda_visible_devices_without_its_own(
    replay: Replay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two MI300X, CUDA_VISIBLE_DEVICES=0 and no HIP or ROCR variable: HIP sees one.

    clr's ``Device::init`` reads HIP_VISIBLE_DEVICES, else CUDA_VISIBLE_DEVICES (every HIP on
    ROCm since 2016, today's rocm-systems included); PyTorch's ROCm build likewise.
    """
    replay("amd-mi300x")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert collect()["sys.gpu_count"] == "1"
    assert snapshot()["gpus"][0]["bus_id"] == "0000:11:00.0"
    monkeypatch.setenv("HIP_VISIBLE_DEVICES", "1")  # HIP's own wins
    assert snapshot()["gpus"][0]["bus_id"] == "0000:2f:00.0"
    monkeypatch.setenv("HIP_VISIBLE_DEVICES", "")  # empty is unset to HIP: CUDA's again
    assert snapshot()["gpus"][0]["bus_id"] == "0000:11:00.0"


@pytest.mark.parametrize(
    ("spec", "chosen"),
    [
        ("1,0", ["0000:2f:00.0", "0000:11:00.0"]),
        ("0,0", ["0000:11:00.0"]),  # a repeated device is skipped, not an empty list (CUDA's rule)
        ("1gpu2", []),  # HIP takes an entry only as a plain number (CUDA reads it as strtoul does)
        ("01", []),
        ("0,7,1", ["0000:11:00.0"]),  # the list ends at the first entry that names no device
        ("GPU-3b1c6a92", ["0000:2f:00.0"]),  # a part of a UUID names the device that holds it
        ("", ["0000:11:00.0", "0000:2f:00.0"]),  # an empty list selects every device
    ],
)
def test_hip_grammar(replay: Replay, monkeypatch: pytest.MonkeyPatch, spec: str, chosen: list[str]) -> None:
    """HIP_VISIBLE_DEVICES read as clr's Device::init reads it."""
    replay("amd-mi300x")
    monkeypatch.setenv("HIP_VISIBLE_DEVICES", spec)
    assert chosen == [g["bus_id"] for g in snapshot()["gpus"]]


def test_cuda_visible_devices_never_makes_an_igpu_count(
    replay: Replay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An H100 and a Ryzen's own graphics: CUDA_VISIBLE_DEVICES=0 still counts one GPU, the H100.

    The variable reaches HIP too, whose device 0 is the integrated GPU: still no training
    accelerator.
    """
    replay("workstation-h100-apu")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    tags = collect()
    assert (tags["sys.gpu"], tags["sys.gpu_count"]) == documented(
        "workstation-h100-apu", "sys.gpu", "sys.gpu_count"
    )


def test_compute_partitions_are_the_devices_hip_enumerates(
    replay: Replay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One MI300X in CPX mode with NPS4 memory: eight logical GPUs, each with 48 GiB.

    AMD's partitioning guide: "CPX mode creates eight independent compute partitions per
    GPU", "NPS4 mode ... creates four memory partitions of 48GB each"; the KFD topology
    lists the eight agents HIP enumerates.
    """
    replay("amd-mi300x-cpx", commands=False)
    tags = collect()
    assert (
        tags["sys.gpu"],
        tags["sys.gpu_count"],
        tags["sys.gpu_memory_gb"],
    ) == documented("amd-mi300x-cpx", "sys.gpu", "sys.gpu_count", "sys.gpu_memory_gb")
    notes = snapshot()["gpu_sources"][0]["notes"]
    assert notes == ["0000:11:00.0: compute partition mode CPX, memory partition mode NPS4: 8 devices"]
    monkeypatch.setenv("HIP_VISIBLE_DEVICES", "0,1")  # indexes count partitions, as HIP's do
    assert collect()["sys.gpu_count"] == "2"


def test_hip_visible_devices(replay: Replay, monkeypatch: pytest.MonkeyPatch) -> None:
    """ROCm's visibility variable narrows the AMD GPUs like CUDA's does NVIDIA's."""
    replay("amd-mi250")
    monkeypatch.setenv("HIP_VISIBLE_DEVICES", "1")
    assert collect()["sys.gpu_count"] == "1"


def test_a_shared_pci_id_is_named_by_its_revision(replay: Replay) -> None:
    """1002:66a1 is a Radeon Pro VII or an Instinct MI50; amdgpu.ids tells them apart by revision."""
    replay("amd-radeon-pro-vii", commands=False)
    assert collect()["sys.gpu"] == expected("amd-radeon-pro-vii")["sys.gpu"]


def _with_revision(tmp_path: Path, revision: str) -> Path:
    root = tmp_path / "machine"
    shutil.copytree(fixture_root("amd-radeon-pro-vii"), root, symlinks=True)
    (root / "sys/bus/pci/devices/0000:44:00.0/revision").write_text(revision)
    return root


def test_a_shared_pci_id_asks_the_tool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_commands: FakeCommands
) -> None:
    """A revision the table does not know: the id names two products, so rocm-smi is asked."""
    root = _with_revision(tmp_path, "0x01\n")
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(root))
    fake_commands(recordings=root / "commands")
    tags = collect()
    assert (tags["sys.gpu"], tags["sys.gpu_compute_capability"]) == ("AMD Radeon Pro VII", "gfx906")


def test_a_shared_pci_id_without_tools_names_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No tool and no known revision: pci.ids' own name, which says it is one of two."""
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(_with_revision(tmp_path, "0x01\n")))
    assert collect()["sys.gpu"] == "AMD Radeon Pro VII/Radeon Instinct MI50 32GB"


def test_a_gpu_held_for_a_virtual_machine_is_not_counted(replay: Replay) -> None:
    """Two MI210s, one bound to vfio-pci: the host can use one; the other is named in the snapshot."""
    replay("amd-vfio-host")
    tags = collect()
    assert (tags["sys.gpu"], tags["sys.gpu_count"]) == documented("amd-vfio-host", "sys.gpu", "sys.gpu_count")
    assert snapshot()["gpu_sources"][0]["notes"] == [
        "0000:83:00.0 is bound to vfio-pci (held for a virtual machine)"
    ]


def test_integrated_graphics_beside_an_h100(replay: Replay, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ryzen's own graphics (1002:164e) is no training accelerator: one GPU, the H100."""
    replay("workstation-h100-apu")
    tags = collect()
    assert (tags["sys.gpu"], tags["sys.gpu_count"]) == documented(
        "workstation-h100-apu", "sys.gpu", "sys.gpu_count"
    )
    assert tags["sys.gpu_driver"] == "580.95.05"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert collect()["sys.gpu_count"] == "1"
    amd_source = next(s for s in snapshot()["gpu_sources"] if s["vendor"] == "amd")
    assert amd_source["devices"] == 1  # listed there, left out of the tags


def test_rocm_smi_json_variants() -> None:
    """Cards in index order, names given the AMD prefix, non-card keys skipped."""
    text = (
        '{"card1": {"Card series": "Instinct MI210", "VRAM Total Memory (B)": "68702699520"},'
        ' "card0": {"Card series": "AMD Instinct MI210", "VRAM Total Memory (B)": "68702699520"},'
        ' "system": {"Driver version": "6.2.4"}}'
    )
    devices, driver = amd.parse_rocm_smi(text)
    assert [(d.index, d.name) for d in devices] == [(0, "AMD Instinct MI210"), (1, "AMD Instinct MI210")]
    assert driver == "6.2.4"
    sku_only = amd.parse_rocm_smi('{"card0": {"Card SKU": "D70701", "Card Model": "0x7448"}}')[0]
    assert sku_only[0].name == ""  # a part number is no name
    with pytest.raises(ValueError, match="not an object"):
        amd.parse_rocm_smi("[1, 2]")


def test_amdsmi_library_when_installed(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The amdsmi library (shipped with ROCm) answers as it does on an MI300X node."""
    (tmp_path / "amdsmi.py").write_text(
        "calls = []\n"
        "def amdsmi_init(): calls.append('init')\n"
        "def amdsmi_shut_down(): calls.append('shut_down')\n"
        "def amdsmi_get_processor_handles(): return ['h0', 'h1']\n"
        "def amdsmi_get_gpu_asic_info(h): return {'market_name': 'AMD Instinct MI300X', 'target_graphics_version': 'gfx942', 'asic_serial': '0xD75E3BF1A4B1D8F7'}\n"
        "def amdsmi_get_gpu_vram_info(h): return {'vram_type': 'HBM3', 'vram_size': 196592}\n"
        "def amdsmi_get_gpu_driver_info(h): return {'driver_name': 'amdgpu', 'driver_version': '6.8.5'}\n"
        "def amdsmi_get_gpu_device_uuid(h): return 'uuid-' + h\n"
        "def amdsmi_get_gpu_device_bdf(h): return '0000:0' + h[-1] + ':00.0'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    inventory = amd.from_amdsmi()
    import amdsmi  # type: ignore[import-not-found]

    assert inventory is not None
    assert [(d.name, d.memory_bytes, d.compute_capability) for d in inventory.devices] == [
        ("AMD Instinct MI300X", 196592 * 1024 * 1024, "gfx942")
    ] * 2
    assert inventory.driver == "6.8.5"
    assert inventory.devices[0].uuid == "GPU-d75e3bf1a4b1d8f7"
    assert amdsmi.calls == ["init", "shut_down"]


def test_amd_power_cap_and_link_from_sysfs(replay: Replay) -> None:
    """The hwmon power1_cap of amdgpu (microwatts) and the PCI link attributes."""
    replay("amd-mi300x", commands=False)
    tags = collect()
    assert (tags["sys.gpu_power_limit_w"], tags["sys.gpu_link"]) == documented(
        "amd-mi300x", "sys.gpu_power_limit_w", "sys.gpu_link"
    )
