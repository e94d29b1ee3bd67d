"""The GPUs' counters and memory peak, read through the stand-in NVML.

Its counters move from one read to the next as the machine's description says
(``tests/fakes/fake_nvml.c``; the descriptions follow nvml.h).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES
from tests.fresh import fresh_python

SPAN = """
import json, time
from mlflow_sysmetrics import ledger, collect
collect()
span = ledger.start()
time.sleep(0.5)
ledger = span.finish()
print(json.dumps([ledger.metrics, ledger.text]))
"""
H100 = "gpu 85520809984 9 0 0 00000000:{bus}:00.0 GPU-{uuid} NVIDIA H100 80GB HBM3\n"
T4 = "gpu 16106127360 7 5 -1 00000000:{bus}:00.0 GPU-{uuid} Tesla T4\n"


def _gpus(*models: str) -> str:
    return "driver 580.159.04\ncuda 13000\n" + "".join(
        model.format(bus=f"{0x18 + 0x10 * i:02X}", uuid=f"{i:08x}-1111-2222-3333-444444444444")
        for i, model in enumerate(models)
    )


def _span(fake_nvml: Path, tmp_path: Path, spec: str, **env: str) -> tuple[dict[str, float], str]:
    """A 0.5 s span in a fresh process whose NVML is the stand-in describing ``spec``."""
    (tmp_path / "spec.txt").write_text(spec)
    value: Any = fresh_python(
        SPAN, env={"LD_LIBRARY_PATH": str(fake_nvml), "FAKE_NVML_SPEC": str(tmp_path / "spec.txt"), **env}
    ).value
    return value[0], value[1]


def test_gpu_counters_become_the_runs_figures(fake_nvml: Path, tmp_path: Path) -> None:
    """Two H100s: energy, mean power, the power cap's share of the time, ECC errors, replays, GPU hours."""
    spec = _gpus(H100, H100) + (
        "counter 0 energy 1000000 1360000\ncounter 1 energy 5000000 5360000\n"
        "counter 0 power_violation 0 0\ncounter 1 power_violation 7 250000007\n"
        "counter 0 thermal_violation 5 5\ncounter 1 thermal_violation 0 0\n"
        "counter 0 ecc_uncorrected 3 3\ncounter 1 ecc_uncorrected 0 1\n"
        "counter 0 pcie_replays 10 12\ncounter 1 pcie_replays 0 0\n"
    )
    metrics, text = _span(fake_nvml, tmp_path, spec)
    seconds = metrics["sys.gpu_hours"] * 3600 / 2
    assert 0.5 <= seconds < 5
    assert metrics["sys.gpu_energy_wh"] == pytest.approx(0.2)  # 2 x 360,000 mJ = 720 J
    assert metrics["sys.gpu_power_avg_w"] == pytest.approx(720 / seconds / 2, rel=1e-2)
    assert metrics["sys.gpu_throttle_power_pct"] == pytest.approx(
        0.25 / seconds * 100, rel=1e-3
    )  # the worst GPU
    assert metrics["sys.gpu_throttle_thermal_pct"] == 0
    assert (metrics["sys.gpu_ecc_errors"], metrics["sys.gpu_pcie_replays"]) == (1, 2)
    assert "gpu energy" not in text


def test_a_counter_that_goes_back_or_is_missing_is_named_never_zero(fake_nvml: Path, tmp_path: Path) -> None:
    """A GPU reset mid-run (energy went back) and a T4 that keeps no violation counters."""
    spec = _gpus(H100, T4) + (
        "counter 0 energy 900000 120\ncounter 1 energy 10 20\n"
        "counter 0 power_violation 0 5\ncounter 0 thermal_violation 0 5\n"
    )
    metrics, text = _span(fake_nvml, tmp_path, spec)
    assert "sys.gpu_energy_wh" not in metrics
    assert "sys.gpu_power_avg_w" not in metrics
    assert "sys.gpu_throttle_power_pct" not in metrics
    assert (
        "gpu energy: NVIDIA H100 80GB HBM3's counter went backwards (a GPU reset or a driver reload)" in text
    )
    assert "gpu throttling by the power cap: Tesla T4 keeps no such counter" in text
    assert metrics["sys.gpu_hours"] > 0


def test_only_the_gpus_the_run_may_use_are_counted(fake_nvml: Path, tmp_path: Path) -> None:
    """CUDA_VISIBLE_DEVICES=1: the second GPU's energy alone, and one GPU's hours."""
    spec = _gpus(H100, H100) + "counter 0 energy 0 3600000\ncounter 1 energy 0 7200000\n"
    metrics, _ = _span(fake_nvml, tmp_path, spec, CUDA_VISIBLE_DEVICES="1")
    assert metrics["sys.gpu_energy_wh"] == pytest.approx(2.0)
    two, _ = _span(fake_nvml, tmp_path, spec)
    assert two["sys.gpu_hours"] > metrics["sys.gpu_hours"] * 1.5  # two GPUs count twice the hours


def test_a_mig_instance_counts_its_whole_gpu(fake_nvml: Path, tmp_path: Path) -> None:
    """A MIG instance has no energy counter of its own: its GPU's, and the ledger says so."""
    spec = (FIXTURES / "nvml" / "a100-mig.txt").read_text() + "counter 0 energy 0 360000\n"
    metrics, text = _span(fake_nvml, tmp_path, spec)
    assert metrics["sys.gpu_energy_wh"] == pytest.approx(0.1)
    assert "energy and counters of a MIG instance or partition are its whole device's" in text


def test_gpu_memory_peak_from_nvml_accounting(fake_nvml: Path, tmp_path: Path) -> None:
    """No PyTorch: NVML accounting's maxMemoryUsage; with accounting off, what the process held."""
    on, _ = _span(fake_nvml, tmp_path, _gpus(H100) + "accounting 0 1 34359738368\n")
    assert on["sys.gpu_memory_peak_gb"] == pytest.approx(34.36, abs=0.01)
    off, text = _span(fake_nvml, tmp_path, _gpus(H100) + "accounting 0 0 0\nprocess 0 2147483648\n")
    assert "sys.gpu_memory_peak_gb" not in off
    assert "gpu memory peak: neither PyTorch's allocator" in text
    assert "this process held 2.15 GB at the end" in text


def test_co2_from_the_users_grid_figure(fake_nvml: Path, tmp_path: Path) -> None:
    """400 g/kWh x 0.2 Wh of GPU energy (no CPU counter here) = 0.08 g, and the ledger says from what."""
    spec = _gpus(H100) + "counter 0 energy 0 720000\n"
    metrics, text = _span(fake_nvml, tmp_path, spec, MLFLOW_SYSMETRICS_GRID_GCO2_KWH="400")
    assert metrics["sys.co2_g"] == pytest.approx(0.08)
    assert "co2: from GPU energy only" in text
