"""Facts read on worker machines, and how they are laid out on the run they replace a driver's facts on."""

from __future__ import annotations

import sys
import types

import pytest

from mlflow_sysmetrics import _remote, collect
from mlflow_sysmetrics import tags as T


def test_worker_facts_leave_out_what_the_reading_process_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    """An engine's probe process imported what it imported: sys.frameworks and kin say nothing of the work."""
    fake = types.ModuleType("sklearn")
    fake.__version__ = "1.9.1"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sklearn", fake)
    assert "sklearn 1.9.1" in collect()["sys.frameworks"]
    facts = _remote.worker_facts()
    assert not set(facts) & set(T.keys_of("frameworks"))
    assert facts["sys.cpu"] == collect()["sys.cpu"]


def test_machine_tags_lay_out_each_machine_once() -> None:
    """Machine 0 plain, machine k sys.node<k>.*, per-process facts nowhere, the machine count and the path once."""
    machines = [
        {"sys.cpu": "A", "sys.gpu": "None", "sys.dist.rank": "3", "sysmetrics.error": "gpu: boom"},
        {"sys.cpu": "B", "sys.gpu": "NVIDIA H100 80GB HBM3", "sys.slurm.job_id": "81723"},
    ]
    assert _remote.machine_tags(machines, _remote.SPARK_EXECUTORS) == {
        "sys.cpu": "A",
        "sys.gpu": "None",
        "sys.dist.nodes": "2",
        "sysmetrics.error": "gpu: boom",
        "sys.node1.cpu": "B",
        "sys.node1.gpu": "NVIDIA H100 80GB HBM3",
        "sysmetrics.collected_on": "spark executors",
    }
