"""Every Python snippet in the README's Usage section runs as written and does what the text says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import mlflow
import pytest

from mlflow_sysmetrics import collect
from tests.integration.conftest import REPO, copy_store

USAGE = (REPO / "README.md").read_text().split("## Usage", 1)[1].split("\n## ", 1)[0]
SNIPPETS = re.findall(r"```python\n(.*?)```", USAGE, flags=re.S)
SYSTEM_KEYS = {"sys.cpu", "sys.cpu_cores", "sys.memory_gb", "sys.gpu", "sys.os"}


def _runs(uri: str) -> list[mlflow.entities.Run]:
    client = mlflow.MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    return list(client.search_runs(experiments)) if experiments else []


def _implicit(stdout: str, runs: list[mlflow.entities.Run]) -> None:
    assert stdout.strip() == collect()["sys.cpu"]
    assert runs[0].data.params == {"lr": "0.01"}


def _with_block(stdout: str, runs: list[mlflow.entities.Run]) -> None:
    (run,) = runs
    assert (run.info.run_name, run.data.tags["team"], run.data.metrics["accuracy"]) == (
        "baseline",
        "vision",
        0.91,
    )
    assert run.info.status == "FINISHED"


def _decorator(stdout: str, runs: list[mlflow.entities.Run]) -> None:
    (run,) = runs
    assert (run.info.run_name, run.data.metrics["loss"]) == ("train", 0.25)


def _client_run(stdout: str, runs: list[mlflow.entities.Run]) -> None:
    (run,) = runs
    # Created by the client, tagged afterwards, and ended as a user should end it.
    assert run.info.status == "FINISHED"
    assert run.info.end_time is not None


def _facts(stdout: str, runs: list[mlflow.entities.Run]) -> None:
    assert stdout.strip() == collect()["sys.cpu_available"]
    assert runs == []


#: What each snippet must have done, found by a line it holds.
CHECKS: dict[str, Callable[[str, list[mlflow.entities.Run]], None]] = {
    'print(mlflow.get_run(run.info.run_id).data.tags["sys.cpu"])': _implicit,
    'sysmetrics_run(run_name="baseline"': _with_block,
    '@with_sysmetrics(run_name="train")': _decorator,
    "log_sysmetrics(run.info.run_id)": _client_run,
    'print(collect()["sys.cpu_available"])': _facts,
}


def test_usage_has_the_three_doors_and_every_snippet_a_check() -> None:
    """The Usage section shows every door, and each of its snippets has a check below."""
    joined = "\n".join(SNIPPETS)
    for name in ("mlflow.start_run", "sysmetrics_run(", "@with_sysmetrics", "log_sysmetrics(", "collect()"):
        assert name in joined
    for snippet in SNIPPETS:
        assert [m for m in CHECKS if m in snippet], f"no check for this README snippet:\n{snippet}"


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[f"snippet{i}" for i in range(len(SNIPPETS))])
def test_snippet_runs_and_does_what_it_says(
    snippet: str, tmp_path: Path, empty_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run in a fresh interpreter against a SQLite store, implicit tagging on as the README says."""
    uri = copy_store(empty_store, tmp_path)
    monkeypatch.chdir(tmp_path)  # MLflow 2's SQLite store makes ./mlruns where its client is made
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, MLFLOW_RUN_CONTEXT_PROVIDER="sysmetrics")
    out = subprocess.run(
        [sys.executable, "-c", snippet], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    assert out.returncode == 0, f"exit status {out.returncode}: {out.stderr[-3000:]}"
    runs = _runs(uri)
    for run in runs:  # whichever door made it, every run carries the system tags
        assert set(run.data.tags) >= SYSTEM_KEYS, run.data.tags
    for marker, check in CHECKS.items():
        if marker in snippet:
            check(out.stdout, runs)
