"""A real two-node torchrun launch (two agents on this machine) logging into one run."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from tests.conftest import documented, fixture_root, without_free_space
from tests.integration.conftest import REPO, Proxy, free_port

WORKER = Path(__file__).parent / "scripts" / "torchrun_worker.py"


def _torch_or_fail() -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("torch is needed for the torchrun test in CI: pip install -r requirements-torch.txt")
        pytest.skip("torch is not installed: pip install -r requirements-torch.txt to run the torchrun test")


def _wait_for_port(port: int, agent: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and agent.poll() is None:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    pytest.fail("node 0's torchrun agent did not open its rendezvous port")


@pytest.mark.needs_torch
def test_two_nodes_two_processes_each(tracking: Proxy, tmp_path: Path) -> None:
    """Node 0's plain keys tell its machine, node 1's sys.node1.* keys the other; two tag writes."""
    _torch_or_fail()
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or shutil.which("torchrun")
    assert torchrun, "torchrun is not installed beside this Python"
    port = free_port()
    roots = {0: fixture_root("h100-vm"), 1: fixture_root("cgroup-v2-nested")}
    agents = []
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    for node, root in roots.items():
        env = dict(
            os.environ,
            MLFLOW_TRACKING_URI=tracking.url,
            MLFLOW_SYSMETRICS_ROOT=str(root),
            PYTHONPATH=str(REPO),
            OMP_NUM_THREADS="1",
            TMPDIR=str(scratch),  # torchelastic's log folders (torchelastic_*), the workers' temporary files
        )
        env.pop("MLFLOW_RUN_CONTEXT_PROVIDER", None)
        command = [
            torchrun,
            "--nnodes=2",
            "--nproc-per-node=2",
            f"--node-rank={node}",
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint=127.0.0.1:{port}",
            f"--rdzv-id=sysmetrics-{port}",
            str(WORKER),
            str(tmp_path),
        ]
        agents.append(
            subprocess.Popen(
                command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        )
        if node == 0:
            # c10d numbers nodes in the order they join: let node 0's agent open the
            # rendezvous store before node 1's starts.
            _wait_for_port(port, agents[0])
    outputs = [agent.communicate(timeout=600)[0] for agent in agents]
    assert [agent.returncode for agent in agents] == [0, 0], "\n".join(o[-3000:] for o in outputs)

    seen = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(4)]
    assert len({s["run_id"] for s in seen}) == 1
    assert {(s["group_rank"], s["root"]) for s in seen} == {("0", str(roots[0])), ("1", str(roots[1]))}, seen
    assert sorted(s["writes"] for s in seen) == [False, False, True, True]  # one writer per node

    tags = mlflow.MlflowClient().get_run(seen[0]["run_id"]).data.tags
    assert (tags["sys.gpu"], tags["sys.cpu"]) == documented("h100-vm", "sys.gpu", "sys.cpu")
    assert tags["sys.dist.world_size"] == "4"
    assert tags["sys.dist.nodes"] == "2"
    assert (tags["sys.node1.cpu"], tags["sys.node1.cpu_available"]) == documented(
        "cgroup-v2-nested", "sys.cpu", "sys.cpu_available"
    )
    assert tags["sys.node1.gpu"] == "None"
    assert "sys.dist.rank" not in tags  # per-process facts say nothing about a shared run
    assert "sys.node1.dist.world_size" not in tags
    for rank_view in seen:  # every rank returns what its node's writer writes
        node = int(rank_view["group_rank"])
        writer = next(s["tags"] for s in seen if s["group_rank"] == str(node) and s["writes"])
        assert without_free_space(rank_view["tags"]) == without_free_space(writer)

    batches = [
        json.loads(body)
        for method, path, body in tracking.bodies
        if path.endswith("/runs/log-batch") and b'"sys.' in body
    ]
    tag_writes = [b for b in batches if not b.get("metrics")]
    ledger_writes = [b for b in batches if b.get("metrics")]
    assert len(tag_writes) == 2
    keys = [tag["key"] for write in tag_writes for tag in write["tags"]]
    assert len(keys) == len(set(keys))  # no key written by two processes
    # Each node's writer counted its node's span: node 0 plain keys, node 1 sys.node1.*, once each.
    assert len(ledger_writes) == 2
    metrics = mlflow.MlflowClient().get_run(seen[0]["run_id"]).data.metrics
    assert {"sys.gpu_hours", "sys.node1.gpu_hours"} <= set(metrics)
    assert {"sys.ledger", "sys.node1.ledger"} <= set(tags)
    (tmp_path / "shared-run-tags.json").write_text(json.dumps(dict(sorted(tags.items())), indent=1))
