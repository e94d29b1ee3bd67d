"""The README's "With your framework" recipes, proven against the real server.

Each recipe trains a tiny model for one step on CPU in a fresh interpreter
(``scripts/recipes.py``), as a user's script would, and the test reads back every run of a
new experiment: the run that holds the metrics must carry the system tags. Lightning and
Transformers need PyTorch (kept on the build machines for Python 3.11 only).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.integration.conftest import REPO, Server

RECIPES = Path(__file__).parent / "scripts" / "recipes.py"


def _recipe(server: Server, framework: str, way: str) -> list[dict[str, object]]:
    """Run one recipe in a fresh interpreter; every run of its new experiment."""
    if framework != "sklearn":
        try:
            __import__(framework)
        except ImportError:
            if os.environ.get("CI"):
                pytest.fail(f"{framework} is needed in CI: pip install -r requirements-torch.txt")
            pytest.skip(f"{framework} is not installed: pip install -r requirements-torch.txt")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    environ.update(
        MLFLOW_TRACKING_URI=server.url,
        MLFLOW_EXPERIMENT_NAME=f"{framework}-{way}-{uuid.uuid4().hex[:8]}",
        HF_HUB_OFFLINE="1",  # nothing is downloaded; make sure of it
        TOKENIZERS_PARALLELISM="false",
    )
    if way == "implicit":
        environ["MLFLOW_RUN_CONTEXT_PROVIDER"] = "sysmetrics"
    out = subprocess.run(
        [sys.executable, str(RECIPES), framework, way],
        capture_output=True,
        text=True,
        env=environ,
        cwd=REPO,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    runs: list[dict[str, object]] = json.loads(out.stdout.strip().splitlines()[-1])
    return runs


def _with_metrics(runs: list[dict[str, object]]) -> list[dict[str, object]]:
    return [run for run in runs if run["metrics"]]


@pytest.mark.parametrize("way", ["implicit", "explicit"])
def test_sklearn_autologging(mlflow_server: Server, way: str) -> None:
    """mlflow.sklearn.autolog(): the variable tags the run autologging starts; or fit inside sysmetrics_run()."""
    runs = _recipe(mlflow_server, "sklearn", way)
    assert len(runs) == 1
    assert "training_score" in runs[0]["metrics"]  # type: ignore[operator]
    assert runs[0]["tagged"] is True


@pytest.mark.needs_torch
@pytest.mark.parametrize("way", ["implicit", "explicit"])
def test_lightning_mlflow_logger(mlflow_server: Server, way: str) -> None:
    """MLFlowLogger makes its run through MLflow's resolve_tags (the variable covers it), or takes run_id."""
    runs = _recipe(mlflow_server, "lightning", way)
    assert len(runs) == 1
    assert "train_loss" in runs[0]["metrics"]  # type: ignore[operator]
    assert runs[0]["tagged"] is True


@pytest.mark.needs_torch
def test_lightning_trap_two_runs(mlflow_server: Server) -> None:
    """The trap: sysmetrics_run() around fit with a plain MLFlowLogger makes two runs, the metrics untagged."""
    runs = _recipe(mlflow_server, "lightning", "trap")
    assert len(runs) == 2
    (metrics_run,) = _with_metrics(runs)
    assert metrics_run["tagged"] is False
    assert [run["tagged"] for run in runs if not run["metrics"]] == [True]


@pytest.mark.needs_torch
@pytest.mark.parametrize("way", ["implicit", "explicit"])
def test_transformers_trainer(mlflow_server: Server, way: str) -> None:
    """Trainer(report_to="mlflow") starts its run with mlflow.start_run, or logs into the active one."""
    runs = _recipe(mlflow_server, "transformers", way)
    assert len(runs) == 1
    assert "loss" in runs[0]["metrics"] or "train_loss" in runs[0]["metrics"]  # type: ignore[operator]
    assert runs[0]["tagged"] is True
