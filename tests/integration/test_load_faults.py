"""Load from several processes and threads against the real server, and runs on broken machines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from mlflow_sysmetrics import collect
from tests.conftest import FakeCommands, expected, fixture_root
from tests.integration.conftest import REPO, Proxy

WORKER = r"""
import json, sys, threading, mlflow
from mlflow_sysmetrics import log_sysmetrics, sysmetrics_run
threads, runs_each = int(sys.argv[1]), int(sys.argv[2])
client = mlflow.MlflowClient()
experiment = mlflow.set_experiment("load").experiment_id
ids, errors = [], []
def work(n):
    for i in range(runs_each):
        try:
            mode = (n + i) % 3
            if mode == 0:    # implicit tagging by the provider
                with mlflow.start_run() as run:
                    mlflow.log_metric("i", i)
                ids.append(run.info.run_id)
            elif mode == 1:  # the with block
                with sysmetrics_run() as run:
                    mlflow.log_metric("i", i)
                ids.append(run.info.run_id)
            else:            # a client-made run, tagged explicitly
                made = client.create_run(experiment)
                log_sysmetrics(made.info.run_id)
                client.set_terminated(made.info.run_id)
                ids.append(made.info.run_id)
        except Exception as exc:
            errors.append(repr(exc))
pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
[t.start() for t in pool]; [t.join() for t in pool]
print(json.dumps({"ids": ids, "errors": errors}))
"""


def test_processes_and_threads_under_load(tracking: Proxy) -> None:
    """3 processes x 4 threads x 6 runs, three doors mixed: 72 runs, every tag on every run, no error."""
    env = dict(os.environ, MLFLOW_TRACKING_URI=tracking.url, MLFLOW_RUN_CONTEXT_PROVIDER="sysmetrics")
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, "4", "6"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=REPO,
            text=True,
        )
        for _ in range(3)
    ]
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    ids = [run_id for r in results for run_id in r["ids"]]
    assert [e for r in results for e in r["errors"]] == []
    assert len(set(ids)) == 72
    # What this process would write, less what depends on the frameworks it has imported.
    expected = set(collect()) - {"sys.frameworks", "sys.cuda_runtime", "sys.cudnn", "sys.nccl"}
    client = mlflow.MlflowClient()
    for run_id in ids:
        tags = client.get_run(run_id).data.tags
        assert expected <= set(tags), expected - set(tags)
        assert "sysmetrics.error" not in tags


def test_a_run_starts_on_a_machine_whose_gpu_tool_hangs(
    tracking: Proxy, monkeypatch: pytest.MonkeyPatch, fake_commands: FakeCommands
) -> None:
    """A wedged nvidia-smi: mlflow.start_run() returns near the deadline, tagged, the failure named."""
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(fixture_root("h100-vm")))
    monkeypatch.setenv("MLFLOW_SYSMETRICS_TIMEOUT", "0.5")
    monkeypatch.setenv("MLFLOW_RUN_CONTEXT_PROVIDER", "sysmetrics")
    fake_commands(scripts={"nvidia-smi": "sleep 60"})
    started = time.monotonic()
    with mlflow.start_run() as run:
        elapsed = time.monotonic() - started
    tags = mlflow.MlflowClient().get_run(run.info.run_id).data.tags
    assert elapsed < 30  # the deadline plus the server round trips, not the 60 s of the hang
    assert tags["sys.cpu"] == expected("h100-vm")["sys.cpu"]
    assert "gpu: TimeoutError" in tags["sysmetrics.error"]
    assert len(tags["sysmetrics.error"]) <= 500


def test_a_run_starts_when_every_file_is_unreadable(
    tracking: Proxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replay root holding nothing readable: the run starts with what the process itself knows."""
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cpuinfo").mkdir()  # a folder where a file should be
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(tmp_path))
    monkeypatch.setenv("MLFLOW_RUN_CONTEXT_PROVIDER", "sysmetrics")
    with mlflow.start_run() as run:
        pass
    tags = mlflow.MlflowClient().get_run(run.info.run_id).data.tags
    assert {"sys.python", "sys.platform", "sys.disk_free_gb"} <= set(tags)
    assert all(len(v) <= 8000 for v in tags.values())
