"""The run's ledger: counters read at a span's start and end, differences and peaks, what was not counted.

GPUs are the stand-in NVML (its counters move from one read to the next as the machine's
description says), the CPU's energy a replayed powercap tree whose counters the test moves,
memory a real child process that touches what it claims.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from mlflow_sysmetrics import _format, _ledger
from mlflow_sysmetrics import tags as T
from tests.conftest import FIXTURES
from tests.fresh import fresh_python

SPAN = """
import json, time
from mlflow_sysmetrics import _ledger, collect
collect()
span = _ledger.start()
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


def _powercap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "machine"
    shutil.copytree(FIXTURES / "powercap-rapl", root, symlinks=True)
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(root))
    return root / "sys/class/powercap"


def _add(zone: Path, microjoules: int, wrap_at: int | None = None) -> None:
    value = int((zone / "energy_uj").read_text()) + microjoules
    (zone / "energy_uj").write_text(f"{value % wrap_at if wrap_at else value}\n")


def test_cpu_energy_of_packages_and_dram(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """1 Wh on each package and DRAM counter is 4 Wh; core (inside a package) and MMIO add nothing."""
    zones = _powercap(tmp_path, monkeypatch)
    span = _ledger.Span()
    for name in ("intel-rapl:0", "intel-rapl:0:1", "intel-rapl:1", "intel-rapl:1:1"):
        _add(zones / name, 3_600_000_000)
    for name in ("intel-rapl:0:0", "intel-rapl-mmio:0"):
        _add(zones / name, 99 * 3_600_000_000)
    metrics = span.finish().metrics
    assert metrics["sys.cpu_energy_wh"] == pytest.approx(4.0)


def test_a_wrapped_counter_is_undone_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """package-1's counter passes max_energy_range_uj and starts again from 0: still 1 Wh."""
    zones = _powercap(tmp_path, monkeypatch)
    (zones / "intel-rapl:1/energy_uj").write_text("262143000000\n")
    span = _ledger.Span()
    _add(zones / "intel-rapl:1", 3_600_000_000, wrap_at=262143328850)
    assert int((zones / "intel-rapl:1/energy_uj").read_text()) < 262143000000
    assert span.finish().metrics["sys.cpu_energy_wh"] == pytest.approx(1.0)


def test_a_span_long_enough_to_wrap_twice_is_not_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A zone that wraps every few microseconds at its power limit: two reads cannot tell how often."""
    zones = _powercap(tmp_path, monkeypatch)
    (zones / "intel-rapl:0/max_energy_range_uj").write_text("1000\n")
    span = _ledger.Span()
    ledger = span.finish()
    assert "sys.cpu_energy_wh" not in ledger.metrics
    assert "cpu energy: intel-rapl:0 may have wrapped more than once" in ledger.text


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="powercap is Linux's")
def test_root_only_energy_counters_are_named(tmp_path: Path) -> None:
    """energy_uj readable by root only (the kernel's mode 0400): absent, and why.

    The process must be refused the read. The test's files are its own, so they are made
    unreadable to their owner too (mode 000); as root, the process also loses root's right
    to read any file (setpriv drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH), as a job
    that is not root has it.
    """
    root = tmp_path / "machine"
    shutil.copytree(FIXTURES / "powercap-rapl", root, symlinks=True)
    for counter in root.glob("sys/class/powercap/*/energy_uj"):
        counter.chmod(0)
    python = sys.executable
    if os.getuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv, "util-linux's setpriv is needed to run a process without root's read-anything right"
        wrapper = tmp_path / "python-without-dac"
        drop = "-dac_override,-dac_read_search"
        wrapper.write_text(
            f'#!/bin/sh\nexec "{setpriv}" --bounding-set={drop} --inh-caps={drop} "{python}" "$@"\n'
        )
        wrapper.chmod(0o755)
        python = str(wrapper)
    ran = fresh_python(SPAN, python=python, env={"MLFLOW_SYSMETRICS_ROOT": str(root)})
    metrics, text = ran.value
    assert "sys.cpu_energy_wh" not in metrics
    assert "cpu energy: powercap energy_uj is readable by root only" in text


CHILD = """
import json, subprocess, sys
from mlflow_sysmetrics import _ledger
span = _ledger.Span()
subprocess.run([sys.executable, "-c", "b = bytearray(600_000_000); b[::4096] = b'x' * len(b[::4096])"], check=True)
print(json.dumps(span.finish().metrics))
"""


def test_a_childs_memory_peak() -> None:
    """A real child that touches 600 MB: the span's memory peak is at least 0.6 GB.

    In a fresh process: getrusage's peak of children is the largest child ever, so a child
    counts only above the children the process had before the span.
    """
    assert fresh_python(CHILD).value["sys.memory_peak_gb"] >= 0.6


def test_a_peak_reached_before_the_span_is_not_the_spans() -> None:
    """No process or child grew past its earlier peak during the span: named, not written."""
    span = _ledger.Span()
    ledger = span.finish()
    if "sys.memory_peak_gb" in ledger.metrics:  # this process grew while the span ran
        pytest.skip("the test process's own peak moved during the span")
    assert "memory peak: not above the process's peak before the run began" in ledger.text


def test_the_ledger_can_be_switched_off(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """MLFLOW_SYSMETRICS_LEDGER=0: no span; a value that is no switch warns and leaves it on."""
    monkeypatch.setenv("MLFLOW_SYSMETRICS_LEDGER", "0")
    assert _ledger.start() is None
    monkeypatch.setenv("MLFLOW_SYSMETRICS_LEDGER", "maybe")
    assert _ledger.start() is not None
    assert "MLFLOW_SYSMETRICS_LEDGER" in caplog.text


def test_a_multi_node_runs_ledger_adds_its_nodes_up() -> None:
    """Energy and GPU hours summed, peaks and throttling their most, power per GPU from the sums."""
    metrics = {
        "sys.gpu_energy_wh": 10.0,
        "sys.node1.gpu_energy_wh": 30.0,
        "sys.gpu_hours": 0.1,
        "sys.node1.gpu_hours": 0.1,
        "sys.gpu_power_avg_w": 100.0,
        "sys.node1.gpu_power_avg_w": 300.0,
        "sys.gpu_memory_peak_gb": 12.0,
        "sys.node1.gpu_memory_peak_gb": 40.5,
        "sys.gpu_throttle_power_pct": 2.0,
        "sys.node1.gpu_throttle_power_pct": 9.5,
        "loss": 0.3,
    }
    assert _format.ledger_of(metrics) == {
        "sys.gpu_energy_wh": 40.0,
        "sys.gpu_power_avg_w": 200.0,
        "sys.gpu_throttle_power_pct": 9.5,
        "sys.gpu_memory_peak_gb": 40.5,
        "sys.gpu_hours": 0.2,
    }
    assert set(_format.ledger_of(metrics)) <= set(T.METRIC_KEYS)
