"""Which processes share a machine: a machine's key, and TorchDistributor's tasks agreeing on machines."""

from __future__ import annotations

import logging
import os
import types
from datetime import timedelta

import pytest

from mlflow_sysmetrics import _machines, _shared_run
from mlflow_sysmetrics.collectors import distributed
from tests.conftest import fixture_root
from tests.integration.conftest import free_port


def test_machine_key_tells_replayed_machines_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same process replaying two machines has two keys; the same machine twice one."""
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(fixture_root("h100-vm")))
    h100 = _machines.machine_key()
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(fixture_root("gcp-vm")))
    assert h100 != _machines.machine_key()
    monkeypatch.delenv("MLFLOW_SYSMETRICS_ROOT")
    assert _machines.machine_key() == _machines.machine_key() != h100


@pytest.fixture
def agent_store(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """A real torch TCPStore, as torchrun's agent hosts it, and a TorchDistributor task's variables."""
    try:
        from torch.distributed import TCPStore
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("torch is needed in CI: pip install -r requirements-torch.txt")
        pytest.skip("torch is not installed: pip install -r requirements-torch.txt")
    port = free_port()
    store = TCPStore("127.0.0.1", port, is_master=True, timeout=timedelta(seconds=10), wait_for_workers=False)
    rdzv = f"test-{port}"
    env = {
        "PYSPARK_TORCH_DISTRIBUTOR_RDZV_ID": rdzv,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "WORLD_SIZE": "6",
        "GROUP_WORLD_SIZE": "3",
        "LOCAL_WORLD_SIZE": "2",
    }
    return types.SimpleNamespace(
        store=store, env=env, key=lambda task: f"{_machines.STORE_PREFIX}/{rdzv}/{task}"
    )


def _task(env: dict[str, str], task: int, local: int) -> dict[str, str]:
    return {**env, "GROUP_RANK": str(task), "RANK": str(2 * task + local), "LOCAL_RANK": str(local)}


@pytest.mark.needs_torch
def test_tasks_agree_on_machines_through_the_agents_store(agent_store: types.SimpleNamespace) -> None:
    """Three tasks, two machines: task 0 elsewhere, tasks 1 and 2 here.

    Task 1 writes for this machine as node 1; task 2 (and task 1's second process) write
    nothing; machines are counted, not tasks.
    """
    mine = _machines.machine_key()
    agent_store.store.set(agent_store.key(0), "another-machine")
    agent_store.store.set(agent_store.key(2), mine)  # task 2 published already
    placements = {}
    for task, local in ((1, 0), (1, 1), (2, 0)):
        env = _task(agent_store.env, task, local)
        placements[(task, local)] = _machines.placed_by_machine(distributed.read(env), env)
    assert agent_store.store.get(agent_store.key(1)).decode() == mine  # local rank 0 published
    assert {k: (p.node_rank, p.nodes, p.local_rank) for k, p in placements.items()} == {
        (1, 0): (1, 2, 0),
        (1, 1): (1, 2, 1),
        (2, 0): (1, 2, 2),
    }
    writes = {k: _shared_run.shared_run_tags({"sys.cpu": "X"}, p) for k, p in placements.items()}
    assert writes == {(1, 0): {"sys.node1.cpu": "X"}, (1, 1): None, (2, 0): None}


@pytest.mark.needs_torch
def test_machine_zero_writes_the_job_and_the_machine_count(agent_store: types.SimpleNamespace) -> None:
    """Task 0's machine is machine 0: plain keys, the world size, and sys.dist.nodes = machines (2), not tasks (3)."""
    agent_store.store.set(agent_store.key(1), "another-machine")
    agent_store.store.set(agent_store.key(2), "another-machine")
    env = _task(agent_store.env, 0, 0)
    info = _machines.placed_by_machine(distributed.read(env), env)
    tags = {"sys.cpu": "X", "sys.dist.rank": "0", "sys.dist.world_size": "6"}
    assert _shared_run.shared_run_tags(tags, info) == {
        "sys.cpu": "X",
        "sys.dist.world_size": "6",
        "sys.dist.nodes": "2",
    }


@pytest.mark.needs_torch
def test_tasks_that_cannot_agree_leave_rank_zero_the_only_writer(
    agent_store: types.SimpleNamespace, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A task whose peers never publish waits a bounded time, warns, and stays as its launcher placed it."""
    monkeypatch.setattr(_machines, "AGREEMENT_SECONDS", 0.3)
    env = _task(agent_store.env, 1, 0)
    launched = distributed.read(env)
    with caplog.at_level(logging.WARNING, logger="mlflow_sysmetrics"):
        assert _machines.placed_by_machine(launched, env) == launched
    assert "could not learn which tasks share its machine" in caplog.text
    assert _shared_run.writing_node(launched) is None  # only rank 0 (task 0) writes, as node 0
