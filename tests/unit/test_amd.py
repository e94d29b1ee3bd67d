"""AMD GPUs: PCI ids and amdgpu's sysfs files, rocm-smi only to fill gaps."""

from __future__ import annotations

import pytest

from mlflow_sysmetrics import collect
from mlflow_sysmetrics.collectors import amd
from tests.conftest import FakeCommands, Replay


def test_instinct_cards_from_sysfs_alone(replay: Replay) -> None:
    """Two MI250 dies: named from the PCI id, sized from mem_info_vram_total; the BMC's VGA is not counted."""
    replay("amd-mi250")
    tags = collect()
    assert tags["sys.gpu"] == "AMD Instinct MI250X/MI250"
    assert tags["sys.gpu_count"] == "2"
    assert tags["sys.gpu_memory_gb"] == "68.7"
    assert tags["sys.gpu_driver"] == "6.7.0"
    assert "sysmetrics.error" not in tags


def test_unknown_part_named_by_rocm_smi(replay: Replay) -> None:
    """A part the table does not know: rocm-smi names it and adds its gfx target."""
    replay("amd-w7900")
    tags = collect()
    assert tags["sys.gpu"] == "AMD Radeon PRO W7900"
    assert tags["sys.gpu_memory_gb"] == "51.53"
    assert tags["sys.gpu_compute_capability"] == "gfx1100"
    assert tags["sys.gpu_driver"] == "6.7.0"


def test_unknown_part_without_tools_is_still_counted(replay: Replay) -> None:
    """No ROCm tools: the GPU is counted and sized, its PCI id stands in for the name."""
    replay("amd-w7900", commands=False)
    tags = collect()
    assert tags["sys.gpu"] == "AMD GPU [1002:7448]"
    assert tags["sys.gpu_count"] == "1"
    assert tags["sys.gpu_memory_gb"] == "51.53"
    assert "sysmetrics.error" not in tags


def test_rocm_smi_hang_keeps_sysfs_facts(
    replay: Replay, fake_commands: FakeCommands, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rocm-smi is known to take seconds: under the deadline, sysfs facts stay."""
    replay("amd-w7900", commands=False)
    fake_commands(scripts={"rocm-smi": "sleep 30"})
    monkeypatch.setenv("MLFLOW_SYSMETRICS_TIMEOUT", "0.4")
    tags = collect()
    assert "gpu: TimeoutError" in tags["sysmetrics.error"]
    assert tags["sys.cpu"] == "AMD EPYC 7A53 64-Core Processor"


def test_hip_visible_devices(replay: Replay, monkeypatch: pytest.MonkeyPatch) -> None:
    """ROCm's visibility variable narrows the AMD GPUs like CUDA's does NVIDIA's."""
    replay("amd-mi250")
    monkeypatch.setenv("HIP_VISIBLE_DEVICES", "1")
    assert collect()["sys.gpu_count"] == "1"


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
    with pytest.raises(ValueError, match="not an object"):
        amd.parse_rocm_smi("[1, 2]")


def test_amdsmi_library_when_installed(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The amdsmi library (shipped with ROCm) answers as it does on an MI300X node."""
    (tmp_path / "amdsmi.py").write_text(
        "calls = []\n"
        "def amdsmi_init(): calls.append('init')\n"
        "def amdsmi_shut_down(): calls.append('shut_down')\n"
        "def amdsmi_get_processor_handles(): return ['h0', 'h1']\n"
        "def amdsmi_get_gpu_asic_info(h): return {'market_name': 'AMD Instinct MI300X', 'target_graphics_version': 'gfx942'}\n"
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
    assert amdsmi.calls == ["init", "shut_down"]
