"""The run's ledger through the doors, against the real server: one write, also for a failed run.

``sysmetrics_run``, ``@with_sysmetrics`` and ``mlflow-sysmetrics run -- CMD`` count what the
block or the program used (here: a real child process that touches memory) and write it as
metrics MLflow can search on, in one request.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from mlflow_sysmetrics import sysmetrics_run
from tests.fresh import fresh_python
from tests.integration.conftest import Proxy, script_path

TOUCH = "b = bytearray(600_000_000); b[::4096] = b'x' * len(b[::4096])"


def _ledger_writes(tracking: Proxy) -> list[dict[str, object]]:
    return [
        json.loads(body)
        for method, path, body in tracking.bodies
        if path.endswith("/runs/log-batch") and b'"sys.ledger"' in body
    ]


def _fresh(code: str, tracking: Proxy) -> str:
    """``code`` in a fresh interpreter tracking to the server; it prints the run id it made.

    Fresh, because a process's peak of its children (getrusage) is its largest child ever:
    a child of this test process's own would only count above the children of earlier tests.
    """
    return str(fresh_python(code, env={"MLFLOW_TRACKING_URI": tracking.url}).value)


def test_a_failed_block_still_writes_its_ledger_in_one_request(tracking: Proxy) -> None:
    """The block raises: the run is FAILED and carries what it used, written in one request."""
    run_id = _fresh(
        f"""
import json, subprocess, sys
from mlflow_sysmetrics import sysmetrics_run
try:
    with sysmetrics_run(run_name="ledger") as run:
        subprocess.run([sys.executable, "-c", {TOUCH!r}], check=True)
        raise RuntimeError("diverged")
except RuntimeError:
    print(json.dumps(run.info.run_id))
""",
        tracking,
    )
    finished = mlflow.MlflowClient().get_run(run_id)
    assert finished.info.status == "FAILED"
    assert finished.data.metrics.get("sys.memory_peak_gb", 0) >= 0.6, finished.data.tags.get("sys.ledger")
    assert finished.data.metrics["sys.gpu_hours"] == 0  # this machine has no GPU
    assert finished.data.tags["sys.ledger"]  # what was not counted here (no GPU counters, ...)
    (write,) = _ledger_writes(tracking)
    written = {m["key"] for m in write["metrics"]}  # type: ignore[index]
    assert written == {key for key in finished.data.metrics if key.startswith("sys.")}  # all of it, at once
    assert {"sys.memory_peak_gb", "sys.gpu_hours", "sys.cpu_util_pct"} <= written
    if sys.platform.startswith("linux"):  # /proc/self/io and /proc/net/dev; no RDMA fabric here
        assert {"sys.io_read_gb", "sys.io_write_gb", "sys.net_rx_gb", "sys.net_tx_gb"} <= written


def test_a_ledger_the_server_refuses_leaves_the_run_ending_as_it_should(
    tracking: Proxy, caplog: pytest.LogCaptureFixture
) -> None:
    """The ledger's write is refused: one warning, and the run ends with its own status all the same."""
    tracking.refuse = b'"sys.ledger"'
    with caplog.at_level("WARNING", logger="mlflow_sysmetrics"):
        with sysmetrics_run() as finished:
            pass
        with pytest.raises(ValueError, match="diverged"), sysmetrics_run() as failed:
            raise ValueError("diverged")
    client = mlflow.MlflowClient()
    assert client.get_run(finished.info.run_id).info.status == "FINISHED"
    assert client.get_run(failed.info.run_id).info.status == "FAILED"
    assert "sys.ledger" not in client.get_run(finished.info.run_id).data.tags
    assert "sys.cpu" in client.get_run(finished.info.run_id).data.tags  # the tags were written
    warnings = [r.getMessage() for r in caplog.records if "ledger" in r.getMessage()]
    assert len(warnings) == 2, warnings
    assert "refused by the test proxy" in warnings[0]


def test_the_decorator_counts_each_call_and_the_figures_are_searchable(tracking: Proxy) -> None:
    """A decorated function's run carries its ledger; `metrics.\\`sys.memory_peak_gb\\` > 0.5` finds it."""
    run_id = _fresh(
        f"""
import json, mlflow, subprocess, sys
from mlflow_sysmetrics import with_sysmetrics

@with_sysmetrics(run_name="searchable")
def train():
    subprocess.run([sys.executable, "-c", {TOUCH!r}], check=True)
    return mlflow.active_run().info.run_id

print(json.dumps(train()))
""",
        tracking,
    )
    experiment = mlflow.MlflowClient().get_run(run_id).info.experiment_id
    found = mlflow.search_runs([experiment], "metrics.`sys.memory_peak_gb` > 0.5", output_format="list")
    assert run_id in [r.info.run_id for r in found], mlflow.MlflowClient().get_run(run_id).data


def test_inside_an_active_run_the_block_counts_its_own_span(tracking: Proxy) -> None:
    """sysmetrics_run() in a run the user opened: the block's span is written there, the run stays open."""
    run_id = _fresh(
        f"""
import json, mlflow, subprocess, sys
from mlflow_sysmetrics import sysmetrics_run
with mlflow.start_run() as outer:
    with sysmetrics_run():
        subprocess.run([sys.executable, "-c", {TOUCH!r}], check=True)
    assert mlflow.active_run() is not None
print(json.dumps(outer.info.run_id))
""",
        tracking,
    )
    data = mlflow.MlflowClient().get_run(run_id).data
    assert data.metrics.get("sys.memory_peak_gb", 0) >= 0.6, data.tags.get("sys.ledger")


def test_the_ledger_switched_off_writes_nothing(tracking: Proxy, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLFLOW_SYSMETRICS_LEDGER=0: tags, and no ledger."""
    monkeypatch.setenv("MLFLOW_SYSMETRICS_LEDGER", "0")
    with sysmetrics_run() as run:
        pass
    data = mlflow.MlflowClient().get_run(run.info.run_id).data
    assert "sys.cpu" in data.tags
    assert "sys.ledger" not in data.tags
    assert not any(key.startswith("sys.") for key in data.metrics)


PROGRAM = f"""
import mlflow, sys
with mlflow.start_run() as run:  # MLFLOW_RUN_ID names the run to join
    mlflow.log_param("where", run.info.run_id)
{TOUCH}
sys.exit(3)
"""


def test_run_a_program_you_do_not_edit(tracking: Proxy, tmp_path: Path) -> None:
    """`mlflow-sysmetrics run -- python train.py`: the program logs into the run, which counts it.

    The command exits with the program's code (3), and the run is FAILED, tagged and counted
    (its memory peak, and the CPU time of the program, which imported MLflow: above 0).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_SYSMETRICS")}
    env["MLFLOW_TRACKING_URI"] = tracking.url
    done = subprocess.run(
        [
            script_path("mlflow-sysmetrics"),
            "run",
            "--run-name",
            "program",
            "--",
            sys.executable,
            "-c",
            PROGRAM,
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 3, done.stderr
    run_id = done.stderr.split("run ", 1)[1].split()[0]
    run = mlflow.MlflowClient().get_run(run_id)
    assert (run.info.status, run.info.run_name) == ("FAILED", "program")
    assert run.data.params["where"] == run_id  # the program's own MLflow calls landed in the run
    assert "sys.cpu" in run.data.tags
    assert run.data.metrics["sys.memory_peak_gb"] >= 0.6
    assert 0 < run.data.metrics["sys.cpu_util_pct"] <= 100  # the program's time, not the command's
    assert len(_ledger_writes(tracking)) == 1


def test_run_passes_signals_on(tracking: Proxy, tmp_path: Path) -> None:
    """SIGTERM to the command reaches the program; the command exits 143 and the run is KILLED."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_SYSMETRICS")}
    env["MLFLOW_TRACKING_URI"] = tracking.url
    started = tmp_path / "started"
    program = f"import pathlib, time; pathlib.Path({str(started)!r}).touch(); time.sleep(120)"
    command = subprocess.Popen(
        [script_path("mlflow-sysmetrics"), "run", "--", sys.executable, "-c", program],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not started.exists():
        assert command.poll() is None, "the command ended before its program started"
        assert time.monotonic() < deadline, "the program never started"
        time.sleep(0.1)
    command.send_signal(signal.SIGTERM)
    _, stderr = command.communicate(timeout=120)
    assert command.returncode == 128 + signal.SIGTERM
    run_id = stderr.split("run ", 1)[1].split()[0]
    run = mlflow.MlflowClient().get_run(run_id)
    assert run.info.status == "KILLED"
    assert "sys.gpu_hours" in run.data.metrics
