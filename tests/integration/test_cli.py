"""The mlflow-sysmetrics command, through click's runner and as the installed script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import mlflow
import pytest
from click.testing import CliRunner

from mlflow_sysmetrics import _engine, log_sysmetrics, sysmetrics_run
from mlflow_sysmetrics.cli import main
from tests.conftest import fixture_root
from tests.integration.conftest import REPO, Proxy, free_port, script_path


@pytest.fixture(params=["local", "server"])
def store(request: pytest.FixtureRequest) -> str:
    """Each command runs against a SQLite store and against the real server."""
    value = request.getfixturevalue("local_store" if request.param == "local" else "tracking")
    return value if isinstance(value, str) else value.url


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


def test_show_here_table_and_json(store: str) -> None:
    """show: grouped table and JSON of what would be tagged here."""
    table = invoke("show")
    assert table.exit_code == 0
    for heading in ("CPU", "Memory", "Disk", "OS", "GPU"):
        assert f"\n{heading}\n" in f"\n{table.output}"
    assert "sys.cpu_cores" in table.output
    data = json.loads(invoke("show", "--json").output)
    assert data["sys.cpu_cores"] == str(os.cpu_count())


def test_show_log_and_diff_runs(store: str) -> None:
    """Log tags a client-made run; show reads it back; diff of a run with itself is 'same hardware'."""
    client = mlflow.MlflowClient()
    run = client.create_run(client.get_experiment_by_name("Default").experiment_id)
    logged = invoke("log", run.info.run_id, "--json")
    assert logged.exit_code == 0, logged.output
    written = json.loads(logged.output)
    shown = json.loads(invoke("show", run.info.run_id, "--json").output)
    assert shown == {k: written[k] for k in shown}
    same = invoke("diff", run.info.run_id, run.info.run_id)
    assert same.exit_code == 0
    assert same.output.startswith("Same hardware")


def test_diff_lists_only_what_differs(local_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two runs from two replayed machines: only the differing tags, side by side."""
    ids = []
    for machine in ("h100-vm", "cgroup-v2-nested"):
        monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(fixture_root(machine)))
        _engine.clear_cache()
        with sysmetrics_run(run_name=machine) as run:
            ids.append(run.info.run_id)
    result = invoke("diff", *ids)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert any(
        line.startswith("sys.cpu ") and "Intel(R) Xeon(R) Processor" in line and "AMD EPYC 7R13" in line
        for line in lines
    )
    assert not any(line.startswith(("sys.python", "sys.disk_free_gb")) for line in lines)
    data = json.loads(invoke("diff", *ids, "--json").output)
    assert data["same_hardware"] is False
    assert data["differences"]["sys.memory_limit_gb"] == {"a": None, "b": "8.59"}


def test_show_a_multi_node_run(local_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run shared by two nodes: show prints the per-node table and says the nodes differ."""
    from mlflow.entities import RunTag

    from mlflow_sysmetrics import collect
    from mlflow_sysmetrics.collectors.distributed import DistInfo
    from mlflow_sysmetrics.runs import shared_run_tags

    client = mlflow.MlflowClient()
    run = client.create_run(client.get_experiment_by_name("Default").experiment_id)
    for node, machine in enumerate(("h100-vm", "cgroup-v2-nested")):
        monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(fixture_root(machine)))
        _engine.clear_cache()
        info = DistInfo(rank=2 * node, local_rank=0, world_size=4, node_rank=node, nodes=2)
        written = shared_run_tags(collect(), info)
        assert written is not None
        client.log_batch(run.info.run_id, tags=[RunTag(k, v) for k, v in written.items()])
    result = invoke("show", run.info.run_id)
    assert result.exit_code == 0
    table = result.output.split("\nNodes\n", 1)[1].splitlines()
    assert table[0].split()[:3] == ["node", "cpu", "cores"]
    assert table[1].startswith("0     Intel(R) Xeon(R) Processor  16")
    assert table[2].split()[:5] == ["1", "AMD", "EPYC", "7R13", "Processor"]
    assert "8.59" in table[2]  # node 1's memory limit, not its machine's memory
    assert table[3] == "(2 nodes: nodes differ)"
    data = json.loads(invoke("show", run.info.run_id, "--json").output)
    assert data["nodes"]["1"]["cpu_available"] == "2.5"


def test_summary_of_two_machines(local_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """summary: one row per machine kind with run counts and median durations."""
    mlflow.set_experiment("two-machines")
    for machine, count in (("h100-vm", 3), ("cgroup-v2-nested", 2)):
        monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(fixture_root(machine)))
        _engine.clear_cache()
        for _ in range(count):
            with sysmetrics_run():
                time.sleep(0.05)
    data = json.loads(invoke("summary", "--experiment", "two-machines", "--json").output)
    rows = {(r["cpu"], r["gpu"]): r for r in data["kinds"]}
    assert rows[("Intel(R) Xeon(R) Processor", "NVIDIA H100 80GB HBM3")]["runs"] == 3
    assert rows[("AMD EPYC 7R13 Processor", "None")]["runs"] == 2
    assert all(r["median_duration_s"] >= 0.05 for r in data["kinds"])
    table = invoke("summary", "--experiment", "two-machines").output
    assert table.splitlines()[0].split() == [
        "cpu",
        "cores",
        "memory",
        "GB",
        "gpu",
        "gpus",
        "runs",
        "median",
        "duration",
    ]
    assert len(table.splitlines()) == 3


def test_bad_input_gives_one_line_and_non_zero(store: str) -> None:
    """Unknown run, unknown experiment, bad flags: a one-line error, never a traceback."""
    missing = invoke("show", "0" * 32)
    assert missing.exit_code == 1
    assert missing.output.strip().splitlines()[-1].startswith(f"Error: no run {'0' * 32} in ")
    assert "Traceback" not in missing.output
    nothing = invoke("summary", "--experiment", "no such experiment")
    assert nothing.exit_code == 1
    assert "no experiment named 'no such experiment'" in nothing.output
    diff = invoke("diff", "0" * 32, "1" * 32)
    assert diff.exit_code == 1
    assert invoke("show", "--bogus").exit_code == 2


def test_unreachable_server_fails_fast() -> None:
    """A tracking URI nobody answers: a clear error within seconds."""
    started = time.monotonic()
    result = invoke("--tracking-uri", f"http://127.0.0.1:{free_port()}", "show", "0" * 32)
    assert time.monotonic() - started < 30
    assert result.exit_code == 1
    assert "could not read run" in result.output


def test_help_has_examples() -> None:
    """--help on every subcommand, each with an example."""
    for command in ("show", "log", "diff", "summary", "demo"):
        result = invoke(command, "--help")
        assert result.exit_code == 0
        assert "Example" in result.output
        assert f"mlflow-sysmetrics {command}" in result.output


def test_installed_script_and_module(tracking: Proxy, tmp_path: Any) -> None:
    """The console script and python -m are the same command, and respect MLFLOW_TRACKING_URI."""
    env = dict(os.environ, MLFLOW_TRACKING_URI=tracking.url)
    client = mlflow.MlflowClient()
    run = client.create_run(client.get_experiment_by_name("Default").experiment_id)
    log_sysmetrics(run.info.run_id)
    for command in ([script_path("mlflow-sysmetrics")], [sys.executable, "-m", "mlflow_sysmetrics"]):
        out = subprocess.run(
            [*command, "show", run.info.run_id, "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["sys.cpu_cores"] == str(os.cpu_count())
    other = client.create_run(client.get_experiment_by_name("Default").experiment_id)
    script = script_path("mlflow-sysmetrics")
    logged = subprocess.run(
        [script, "log", other.info.run_id, "--snapshot", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert logged.returncode == 0, logged.stderr
    assert "sys.cpu" in json.loads(logged.stdout)
    artifacts = [a.path for a in client.list_artifacts(other.info.run_id, "sysmetrics")]
    assert artifacts == ["sysmetrics/system.json"]
    same = subprocess.run(
        [script, "diff", run.info.run_id, other.info.run_id],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert (same.returncode, same.stdout.split(":")[0]) == (0, "Same hardware")
    summary = subprocess.run(
        [script, "summary", "--experiment", "Default", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert summary.returncode == 0, summary.stderr
    assert sum(kind["runs"] for kind in json.loads(summary.stdout)["kinds"]) >= 2
    bad = subprocess.run(
        [script_path("mlflow-sysmetrics"), "show", "f" * 32],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [f"Error: no run {'f' * 32} in {tracking.url}"]


def test_demo_in_a_fresh_folder(tmp_path: Any) -> None:
    """demo: a SQLite store in the current folder, its tags printed, the UI command given."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    out = subprocess.run(
        [script_path("mlflow-sysmetrics"), "demo"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "sys.cpu" in out.stdout
    assert "mlflow ui --backend-store-uri sqlite:///mlflow.db" in out.stdout
    assert (tmp_path / "mlflow.db").exists()
    assert str(REPO) not in out.stdout
