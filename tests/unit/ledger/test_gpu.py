"""The GPUs' counters, memory peak and busy share, read through the stand-in NVML.

Its counters move from one read to the next as the machine's description says
(``tests/fakes/fake_nvml.c``; the descriptions follow nvml.h).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from mlflow_sysmetrics.collectors.accelerators.nvidia.counting import (
    clock_event_fields,
    in_child_pid_namespace,
)
from tests.conftest import FIXTURES, build_fake_nvml
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
#: NVML knows processes by the ids of the initial pid namespace: the stand-in answers this
#: process's accounting by its id, which is NVML's only there (not inside a container).
accounting = pytest.mark.skipif(
    not sys.platform.startswith("linux") or in_child_pid_namespace(os.readlink("/proc/self/ns/pid")),
    reason="inside a container the ledger asks NVML accounting nothing (it knows the host's process ids)",
)
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


@accounting
def test_gpu_memory_peak_from_nvml_accounting(fake_nvml: Path, tmp_path: Path) -> None:
    """No PyTorch: NVML accounting's maxMemoryUsage; with accounting off, what the process held."""
    on, _ = _span(fake_nvml, tmp_path, _gpus(H100) + "accounting 0 1 0 34359738368\n")
    assert on["sys.gpu_memory_peak_gb"] == pytest.approx(34.36, abs=0.01)
    off, text = _span(fake_nvml, tmp_path, _gpus(H100) + "accounting 0 0 0\nprocess 0 2147483648\n")
    assert "sys.gpu_memory_peak_gb" not in off
    assert "gpu memory peak: NVIDIA H100 80GB HBM3: NVML accounting is off" in text
    assert "this process held 2.15 GB at the end" in text


def test_co2_from_the_users_grid_figure(fake_nvml: Path, tmp_path: Path) -> None:
    """400 g/kWh x 0.2 Wh of GPU energy (no CPU counter here) = 0.08 g, and the ledger says from what."""
    spec = _gpus(H100) + "counter 0 energy 0 720000\n"
    metrics, text = _span(fake_nvml, tmp_path, spec, MLFLOW_SYSMETRICS_GRID_GCO2_KWH="400")
    assert metrics["sys.co2_g"] == pytest.approx(0.08)
    assert "co2: from GPU energy only" in text


@accounting
def test_an_accounting_peak_from_before_the_run_is_not_the_runs(fake_nvml: Path, tmp_path: Path) -> None:
    """NVML accounting's maxMemoryUsage is the most "ever allocated by the process" (nvml.h): only a rise counts."""
    same, text = _span(fake_nvml, tmp_path, _gpus(H100) + "accounting 0 1 34359738368 34359738368\n")
    assert "sys.gpu_memory_peak_gb" not in same
    assert "gpu memory peak: the process's peak was reached before the run began" in text
    rose, _ = _span(fake_nvml, tmp_path, _gpus(H100) + "accounting 0 1 1073741824 34359738368\n")
    assert rose["sys.gpu_memory_peak_gb"] == pytest.approx(34.36, abs=0.01)


@accounting
@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (
            "accounting 0 1 18446744073709551615\n",
            "NVML marks the process's peak not available (as under Windows WDDM)",
        ),
        ("accounting 0 1 0\naccounting_unknown 0\n", "NVML accounting has no record of process"),
    ],
    ids=["NVML_VALUE_NOT_AVAILABLE", "a pid NVML does not know"],
)
def test_a_gpu_memory_peak_nvml_cannot_tell_is_absent_with_the_reason(
    fake_nvml: Path, tmp_path: Path, spec: str, reason: str
) -> None:
    """ULL -1 is "not available", never 18446744073.71 GB; a process NVML has no record of is no peak."""
    metrics, text = _span(fake_nvml, tmp_path, _gpus(H100) + spec)
    assert "sys.gpu_memory_peak_gb" not in metrics
    assert reason in text
    assert "held 0 GB" not in text


#: nvml.h (driver 580.82 and newer): the clocks event reason counters, in ns.
EVENTS = "field 0 74 {power}\nfield 0 269 {sw_thermal}\nfield 0 270 {hw_thermal}\nfield 0 271 {brake}\n"


def test_hardware_slowdown_is_counted_from_the_clocks_event_reason_counters(
    fake_nvml: Path, tmp_path: Path
) -> None:
    """HW thermal and HW power brake held the clocks down: sys.gpu_throttle_hw_pct; the fields win over the old call.

    The violation counters say something else (they must not be read where the fields are there).
    """
    spec = (
        _gpus(H100)
        + EVENTS.format(power="0 100000000", sw_thermal="0 0", hw_thermal="0 200000000", brake="5 50000005")
        + "counter 0 power_violation 0 400000000\n"
    )
    metrics, text = _span(fake_nvml, tmp_path, spec)
    seconds = metrics["sys.gpu_hours"] * 3600
    assert metrics["sys.gpu_throttle_hw_pct"] == pytest.approx(0.25 / seconds * 100, rel=1e-3)
    assert metrics["sys.gpu_throttle_power_pct"] == pytest.approx(0.1 / seconds * 100, rel=1e-3)
    assert metrics["sys.gpu_throttle_thermal_pct"] == 0
    assert "gpu hardware slowdown" not in text


def test_an_nvml_without_the_deprecated_call_counts_from_the_fields(tmp_path: Path) -> None:
    """CUDA 14's NVML has no nvmlDeviceGetViolationStatus: the throttle shares come from the fields."""
    (tmp_path / "cuda14").mkdir()
    library = build_fake_nvml(tmp_path / "cuda14", "nvmlDeviceGetViolationStatus")
    spec = _gpus(H100) + EVENTS.format(
        power="0 50000000", sw_thermal="0 50000000", hw_thermal="0 0", brake="0 0"
    )
    metrics, _ = _span(library, tmp_path, spec)
    seconds = metrics["sys.gpu_hours"] * 3600
    assert metrics["sys.gpu_throttle_power_pct"] == pytest.approx(0.05 / seconds * 100, rel=1e-3)
    assert metrics["sys.gpu_throttle_thermal_pct"] == pytest.approx(0.05 / seconds * 100, rel=1e-3)
    assert metrics["sys.gpu_throttle_hw_pct"] == 0


@accounting
def test_an_nvml_lacking_one_call_costs_that_figure_alone(tmp_path: Path) -> None:
    """No nvmlDeviceGetTotalEccErrors in the library: every other figure is there, and sys.ledger names the one."""
    (tmp_path / "lacking").mkdir()
    library = build_fake_nvml(tmp_path / "lacking", "nvmlDeviceGetTotalEccErrors")
    spec = (
        _gpus(H100) + "counter 0 energy 0 360000\ncounter 0 pcie_replays 1 1\naccounting 0 1 0 1073741824\n"
    )
    metrics, text = _span(library, tmp_path, spec)
    assert "sys.gpu_ecc_errors" not in metrics
    assert (
        "gpu uncorrected ECC errors: NVIDIA H100 80GB HBM3: this NVML has no nvmlDeviceGetTotalEccErrors"
        in text
    )
    assert metrics["sys.gpu_energy_wh"] == pytest.approx(0.1)
    assert metrics["sys.gpu_pcie_replays"] == 0
    assert metrics["sys.gpu_memory_peak_gb"] == pytest.approx(1.07, abs=0.01)
    assert "sys.gpu_hours" in metrics


@pytest.mark.parametrize(
    ("driver", "fields"),
    [
        ("580.159.04", (269, 270, 271)),
        ("580.82.07", (269, 270, 271)),
        ("590.44.01", (269, 270, 271)),
        ("575.51.03", (251, 252, 253)),
        ("580.65.06", (251, 252, 253)),
    ],
)
def test_the_drivers_version_picks_how_it_numbers_the_slowdown_counters(
    driver: str, fields: tuple[int, ...]
) -> None:
    """NVIDIA numbered them 251-253 (drivers 575 to 580.65) and then 269-271 (580.82 on), as nvml.h of each says."""
    assert fields == clock_event_fields(driver)


@pytest.mark.parametrize(
    ("driver", "reason"),
    [
        ("570.86.10", "driver 570.86.10 keeps no hardware slowdown counters (they came with driver 575)"),
        ("580.76.05", "driver 580.76.05 numbers its hardware slowdown counters in a way not known here"),
    ],
)
def test_a_driver_without_known_slowdown_counters_gets_no_guess(
    fake_nvml: Path, tmp_path: Path, driver: str, reason: str
) -> None:
    """Where the numbering is not known, the hardware share is absent with the reason; the old counters still count."""
    spec = _gpus(H100).replace("580.159.04", driver) + "field 0 74 0 0\nfield 0 75 0 100000000\n"
    metrics, text = _span(fake_nvml, tmp_path, spec)
    assert "sys.gpu_throttle_hw_pct" not in metrics
    assert f"gpu hardware slowdown: NVIDIA H100 80GB HBM3: {reason}" in text
    assert metrics["sys.gpu_throttle_thermal_pct"] > 0  # field 75, the software thermal counter's old id


def test_an_energy_above_what_the_board_may_draw_is_not_the_runs(fake_nvml: Path, tmp_path: Path) -> None:
    """A counter that restarted and climbed back above its start: 100 kJ in half a second is no 700 W board's."""
    spec = _gpus(H100) + "power_max 0 700000\ncounter 0 energy 1000 100001000\n"
    metrics, text = _span(fake_nvml, tmp_path, spec)
    assert "sys.gpu_energy_wh" not in metrics
    assert "above its 700 W maximum limit: a counter that restarted (a driver reload)" in text


def test_nvlink_bytes_and_the_time_the_clocks_waited_for_work(fake_nvml: Path, tmp_path: Path) -> None:
    """Two NVLink GPUs: their KiB over all links summed; field 78's share of the run, the mean of the GPUs."""
    spec = _gpus(H100, H100) + (
        "nvlink 0 18 18\nnvlink 1 18 18\n"
        "field 0 138 0 976562500\nfield 0 139 0 1953125000\nfield 1 138 0 0\nfield 1 139 0 0\n"
        "field 0 78 0 100000000\nfield 1 78 0 300000000\n"
    )
    metrics, _ = _span(fake_nvml, tmp_path, spec)
    seconds = metrics["sys.gpu_hours"] * 3600 / 2
    assert (metrics["sys.nvlink_tx_gb"], metrics["sys.nvlink_rx_gb"]) == (1000.0, 2000.0)
    assert metrics["sys.gpu_low_util_pct"] == pytest.approx(0.2 / seconds * 100, rel=1e-3)


def test_a_gpu_without_nvlink_says_nothing_of_it(fake_nvml: Path, tmp_path: Path) -> None:
    """A PCIe H100 has no NVLink: no NVLink figure, and nothing about it in sys.ledger."""
    metrics, text = _span(fake_nvml, tmp_path, _gpus(H100) + "counter 0 energy 0 1\n")
    assert "sys.nvlink_rx_gb" not in metrics
    assert "nvlink" not in text


A100 = "gpu 42949672960 8 0 0 00000000:{bus}:00.0 GPU-{uuid} NVIDIA A100-SXM4-40GB\n"
#: A span that follows a program, as ``mlflow-sysmetrics run`` does: a real child, started
#: after the span's first reading and ended before its last (its accounting is the stand-in's).
FOLLOWED = """
import ctypes, json, subprocess, sys, time
from mlflow_sysmetrics import ledger, collect
collect()
span = ledger.start()
program = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
span.follow_program(program.pid)
program.wait()
ledger = span.finish()
print(json.dumps([ledger.metrics, ledger.text]))
"""
#: A span, and how many GPM samples the stand-in has allocated and not freed after it.
SAMPLES = SPAN.replace(
    "print(json.dumps([ledger.metrics, ledger.text]))",
    "import ctypes\n"
    "alive = ctypes.CDLL('libnvidia-ml.so.1').fake_nvml_gpm_samples()\n"
    "print(json.dumps([ledger.metrics, ledger.text, alive]))",
)


def _run(script: str, library: Path, tmp_path: Path, spec: str) -> list[Any]:
    """``script`` in a fresh process whose NVML is ``library`` describing ``spec``: what it printed."""
    (tmp_path / "spec.txt").write_text(spec)
    env = {"LD_LIBRARY_PATH": str(library), "FAKE_NVML_SPEC": str(tmp_path / "spec.txt")}
    value: list[Any] = fresh_python(script, env=env).value
    return value


def _seconds(metrics: dict[str, float], gpus: int = 1) -> float:
    """The span's length, as its GPU hours say."""
    return metrics["sys.gpu_hours"] * 3600 / gpus


#: A span, then the GPM samples left allocated after ``clear_cache()``, and in a forked child
#: that clears its own: (parent's count, child's count).
CLEARED = """
import ctypes, json, os
from mlflow_sysmetrics import _state, ledger, collect
collect()
ledger.start().finish()
library = ctypes.CDLL("libnvidia-ml.so.1")
read, write = os.pipe()
child = os.fork()
if child == 0:
    _state.clear()
    os.write(write, str(library.fake_nvml_gpm_samples()).encode())
    os._exit(0)
os.waitpid(child, 0)
in_child = int(os.read(read, 16))
_state.clear()
print(json.dumps([library.fake_nvml_gpm_samples(), in_child]))
"""


def test_clearing_the_cache_frees_the_gpm_samples_and_a_child_never_frees_its_parents(
    fake_nvml: Path, tmp_path: Path
) -> None:
    """clear_cache() frees the two H100s' kept samples; a forked child forgets them unfreed (they are the parent's)."""
    parent, child = _run(CLEARED, fake_nvml, tmp_path, _gpus(H100, H100) + "gpm 0 80\ngpm 1 20\n")
    assert parent == 0
    assert child == 2  # the stand-in's count, as the child's copy of the library's memory has it


def test_gpm_gives_the_busy_share_and_keeps_one_sample_a_gpu(fake_nvml: Path, tmp_path: Path) -> None:
    """Two H100s whose GPM says 80 % and 20 % between the span's samples: their mean; no accounting is asked.

    GPM gives a share between two samples (nvml.h); the samples a reading no longer needs are freed.
    """
    spec = _gpus(H100, H100) + "gpm 0 80\ngpm 1 20\n"
    metrics, text, alive = _run(SAMPLES, fake_nvml, tmp_path, spec)
    assert metrics["sys.gpu_busy_pct"] == 50.0
    assert "gpu busy" not in text
    assert alive == 2  # the last sample of each GPU, for the next reading


def test_gpm_comes_before_accounting(fake_nvml: Path, tmp_path: Path) -> None:
    """An H100 with GPM (37.5 %) and accounting on (30 % by its sums): GPM's, the device's own count."""
    spec = _gpus(H100) + "gpm 0 37.5\naccounting 0 1 0 0\naccounting_sums 0 10:50000 30:110000\n"
    metrics, text = _span(fake_nvml, tmp_path, spec)
    assert metrics["sys.gpu_busy_pct"] == 37.5
    assert "NVML accounting" not in text


@accounting
def test_accounting_sums_give_the_busy_share_between_two_readings(fake_nvml: Path, tmp_path: Path) -> None:
    """An A100 (no GPM), accounting on: 20 samples summing 60000 (pct x 100) during the span is 30 %.

    nvml.h: sumGpuUtil is "the sum of process's GR engine utilization in unit of pct * 100";
    the share is the run's process's alone, and sys.ledger says so.
    """
    spec = _gpus(A100) + "accounting 0 1 0 0\naccounting_sums 0 10:50000 30:110000\n"
    metrics, text = _span(fake_nvml, tmp_path, spec)
    assert metrics["sys.gpu_busy_pct"] == 30.0
    assert "gpu busy: the kernels of the run's own process only (NVML accounting)" in text


@accounting
def test_accounting_sums_of_a_program_count_from_its_start(fake_nvml: Path, tmp_path: Path) -> None:
    """A program under run with 40 samples at 50 % over the 250 ms its context lived: 50 % of 250 ms of the run.

    nvml.h: an ended process's ``time`` is the "amount of time in ms during which the compute
    context was active"; the process's share over its life times that life over the run's.
    """
    spec = _gpus(A100) + ("accounting 0 1 0 0\naccounting_sums 0 0:0 40:200000\naccounting_ended 0 250\n")
    metrics, _ = _run(FOLLOWED, fake_nvml, tmp_path, spec)
    assert metrics["sys.gpu_busy_pct"] == pytest.approx(50 * 0.25 / _seconds(metrics), rel=1e-2)


@accounting
def test_accounting_v1_is_the_programs_share_of_its_life(tmp_path: Path) -> None:
    """A driver before 610 (no accounting sums): gpuUtilization 80 % of a program's 400 ms context, over the run."""
    (tmp_path / "v1").mkdir()
    library = build_fake_nvml(tmp_path / "v1", "nvmlDeviceGetAccountingStats_v2")
    spec = _gpus(A100) + "accounting 0 1 0 0\naccounting_util 0 0 80\naccounting_ended 0 400\n"
    metrics, text = _run(FOLLOWED, library, tmp_path, spec)
    assert metrics["sys.gpu_busy_pct"] == pytest.approx(80 * 0.4 / _seconds(metrics), rel=1e-2)
    assert "NVML accounting" in text


@accounting
def test_accounting_v1_tells_no_share_of_a_span_within_a_long_life(tmp_path: Path) -> None:
    """Accounting v1's share is of the process's whole life, rounded: a process older than the span gets none."""
    (tmp_path / "v1").mkdir()
    library = build_fake_nvml(tmp_path / "v1", "nvmlDeviceGetAccountingStats_v2")
    spec = _gpus(A100) + "accounting 0 1 0 0\naccounting_util 0 40 41\n"
    metrics, text = _span(library, tmp_path, spec)
    assert "sys.gpu_busy_pct" not in metrics
    assert (
        "gpu busy: NVIDIA A100-SXM4-40GB: no GPM (Hopper and newer), and NVML accounting gives a share "
        "of the process's whole life, rounded to a percent" in text
    )


@accounting
def test_no_source_leaves_the_busy_share_out_with_both_reasons(tmp_path: Path) -> None:
    """An NVML before GPM, on a GPU with accounting off: absent, and sys.ledger names both sources."""
    (tmp_path / "old").mkdir()
    library = build_fake_nvml(tmp_path / "old", "nvmlGpmQueryDeviceSupport")
    metrics, text = _span(library, tmp_path, _gpus(A100) + "accounting 0 0 0\n")
    assert "sys.gpu_busy_pct" not in metrics
    assert (
        "gpu busy: NVIDIA A100-SXM4-40GB: no GPM (Hopper and newer): this NVML has no "
        "nvmlGpmQueryDeviceSupport, and NVML accounting is off (nvidia-smi --accounting-mode=1, as root)"
    ) in text


@accounting
def test_a_gpu_without_gpm_answers_why(fake_nvml: Path, tmp_path: Path) -> None:
    """An A100 (isSupportedDevice 0), accounting off: absent with the reasons, never 0."""
    metrics, text = _span(fake_nvml, tmp_path, _gpus(A100))
    assert "sys.gpu_busy_pct" not in metrics
    assert "gpu busy: NVIDIA A100-SXM4-40GB: no GPM (Hopper and newer), and NVML accounting is off" in text


@accounting
def test_a_gpu_the_process_never_used_tells_no_share_by_accounting(fake_nvml: Path, tmp_path: Path) -> None:
    """Two A100s: 30 % on the first, no record of the process on the second: absent, never a mean with 0 %.

    Accounting covers the run's own process: the run's other processes (DDP ranks, spawned
    workers) may have kept the second GPU busy.
    """
    spec = _gpus(A100, A100) + (
        "accounting 0 1 0 0\naccounting_sums 0 10:50000 30:110000\naccounting 1 1 0\naccounting_unknown 1\n"
    )
    metrics, text = _span(fake_nvml, tmp_path, spec)
    assert "sys.gpu_busy_pct" not in metrics
    assert (
        "gpu busy: NVIDIA A100-SXM4-40GB: no GPM (Hopper and newer), and NVML accounting has no record of "
        "process"
    ) in text
    assert (
        "accounting counts this process alone, and other processes of the run may have used the GPU" in text
    )


@accounting
def test_another_process_on_the_gpu_leaves_this_one_holding_nothing(fake_nvml: Path, tmp_path: Path) -> None:
    """Accounting off, NVML listing another process on the GPU and not this one: it holds 0 there.

    Outside a container NVML's process ids are this process's own: no reason about containers.
    """
    metrics, text = _span(fake_nvml, tmp_path, _gpus(H100) + "accounting 0 0 0\nprocess 0 2147483648 other\n")
    assert "sys.gpu_memory_peak_gb" not in metrics
    assert "gpu memory peak: NVIDIA H100 80GB HBM3: NVML accounting is off" in text
    assert "container" not in text
    assert "held" not in text


@pytest.mark.parametrize(
    ("link", "child"),
    [("pid:[4026531836]", False), ("pid:[4026532198]", True), ("pid:[4026531836]\n", False)],
    ids=["the initial namespace", "a container's", "as read with its end of line"],
)
def test_a_child_pid_namespace_is_told_by_its_inode(link: str, child: bool) -> None:
    """``/proc/self/ns/pid`` names the namespace's inode; the initial one's is PROC_PID_INIT_INO, 0xEFFFFFFC.

    namespaces(7) shows the initial namespace's link (``pid -> pid:[4026531836]``); any
    other inode is a namespace made since, as a container's.
    """
    assert child == in_child_pid_namespace(link)


#: A span whose start and finish are timed: what it counted, and how long they took.
TIMED = """
import json, time
from mlflow_sysmetrics import ledger, collect
collect()
began = time.monotonic()
counted = ledger.start().finish()
print(json.dumps([counted.metrics, counted.text, time.monotonic() - began]))
"""


@pytest.mark.parametrize(
    ("hangs", "reason", "gpus_known"),
    [
        (
            "init_sleep_ms 5000 2\n",
            "gpu counters: the GPU driver did not answer within the collection's deadline",
            True,
        ),
        (
            "init_sleep_ms 5000\n",
            "gpu counters: the GPUs were not read within the collection's deadline",
            False,
        ),
    ],
    ids=["the ledger's session hangs", "the collection's pass hangs too"],
)
def test_a_wedged_gpu_driver_costs_the_deadline_not_the_run(
    fake_nvml: Path, tmp_path: Path, hangs: str, reason: str, gpus_known: bool
) -> None:
    """nvmlInit_v2 hangs 5 s, with a 0.5 s deadline: the span starts and ends (well under 3 s: not hung).

    Where the collection's pass got through, the GPUs are known (their hours are counted) and
    the ledger's own session hangs; where the pass hung too, no GPU is counted. Either way
    the GPUs' figures are absent, named, and the other meters count.
    """
    (tmp_path / "spec.txt").write_text(_gpus(A100) + "counter 0 energy 0 360000\n" + hangs)
    env = {
        "LD_LIBRARY_PATH": str(fake_nvml),
        "FAKE_NVML_SPEC": str(tmp_path / "spec.txt"),
        "MLFLOW_SYSMETRICS_TIMEOUT": "0.5",
    }
    metrics, text, seconds = fresh_python(TIMED, env=env).value
    assert seconds < 3
    assert reason in text
    assert "sys.gpu_energy_wh" not in metrics
    assert gpus_known == ("sys.gpu_hours" in metrics)
    assert any(not key.startswith("sys.gpu") for key in metrics)  # the other meters' figures


@accounting
def test_a_process_no_gpu_knows_gets_no_share(fake_nvml: Path, tmp_path: Path) -> None:
    """No record of the process on any GPU (as inside a container, where NVML knows host pids): absent."""
    spec = _gpus(A100) + "accounting 0 1 0\naccounting_unknown 0\n"
    metrics, text = _span(fake_nvml, tmp_path, spec)
    assert "sys.gpu_busy_pct" not in metrics
    assert (
        "gpu busy: NVIDIA A100-SXM4-40GB: no GPM (Hopper and newer), and NVML accounting has no record"
        in text
    )


@accounting
def test_a_utilization_nvml_marks_not_available_is_no_share(fake_nvml: Path, tmp_path: Path) -> None:
    """A gpuUtilization of NVML_VALUE_NOT_AVAILABLE (nvml.h: not supported): absent, not 42949672.95 %."""
    spec = _gpus(A100) + "accounting 0 1 0 0\naccounting_util 0 4294967295\naccounting_sums 0 1:100 2:200\n"
    metrics, text = _span(fake_nvml, tmp_path, spec)
    assert "sys.gpu_busy_pct" not in metrics
    assert "NVML marks the process's utilization not available" in text
