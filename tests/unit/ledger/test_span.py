"""The span: its switch, one meter failing alone, and how a multi-node run's ledger adds up."""

from __future__ import annotations

import pytest

from mlflow_sysmetrics import _format, ledger
from mlflow_sysmetrics import tags as T


def test_the_ledger_can_be_switched_off(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """MLFLOW_SYSMETRICS_LEDGER=0: no span; a value that is no switch warns and leaves it on."""
    monkeypatch.setenv("MLFLOW_SYSMETRICS_LEDGER", "0")
    assert ledger.start() is None
    monkeypatch.setenv("MLFLOW_SYSMETRICS_LEDGER", "maybe")
    assert ledger.start() is not None
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


def test_a_nodes_power_counts_only_the_hours_of_nodes_that_counted_energy() -> None:
    """Node 0: 10 Wh over 0.1 GPU hours; node 1: 0.1 GPU hours and no energy counter: 100 W, not 50."""
    metrics = {
        "sys.gpu_energy_wh": 10.0,
        "sys.gpu_hours": 0.1,
        "sys.gpu_power_avg_w": 100.0,
        "sys.node1.gpu_hours": 0.1,
    }
    combined = _format.ledger_of(metrics)
    assert combined["sys.gpu_power_avg_w"] == 100.0
    assert combined["sys.gpu_hours"] == pytest.approx(0.2)


def test_the_gpus_shares_of_two_nodes_weigh_by_their_gpu_hours() -> None:
    """8 GPUs busy 90 % and 1 GPU busy 0 % for an hour: 80 % of the run's GPU time, not the nodes' mean 45.

    The clocks lowered for lack of work: 10 % of 8 GPU hours and 100 % of 1, 20 %. The cores'
    use stays the nodes' plain mean (their usable cores are tags, not metrics).
    """
    metrics = {
        "sys.gpu_hours": 8.0,
        "sys.gpu_busy_pct": 90.0,
        "sys.gpu_low_util_pct": 10.0,
        "sys.cpu_util_pct": 60.0,
        "sys.node1.gpu_hours": 1.0,
        "sys.node1.gpu_busy_pct": 0.0,
        "sys.node1.gpu_low_util_pct": 100.0,
        "sys.node1.cpu_util_pct": 20.0,
    }
    combined = _format.ledger_of(metrics)
    assert combined["sys.gpu_busy_pct"] == 80.0
    assert combined["sys.gpu_low_util_pct"] == 20.0
    assert combined["sys.cpu_util_pct"] == 40.0


def test_a_node_without_gpu_hours_leaves_the_gpus_shares_unweighted() -> None:
    """Node 1 logged no GPU hours (an older writer): no weight can be told for it, the nodes' plain mean."""
    metrics = {
        "sys.gpu_hours": 8.0,
        "sys.gpu_busy_pct": 90.0,
        "sys.node1.gpu_busy_pct": 0.0,
    }
    assert _format.ledger_of(metrics)["sys.gpu_busy_pct"] == 45.0
