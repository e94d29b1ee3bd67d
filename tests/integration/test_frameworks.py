"""The "With your framework" recipes (docs/frameworks.md), proven against the real server.

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


def _training_metrics(run: dict[str, object]) -> list[str]:
    """The run's metrics other than this package's ledger (``sys.*``)."""
    return [key for key in run["metrics"] if not key.startswith("sys.")]  # type: ignore[attr-defined]


def _with_metrics(runs: list[dict[str, object]]) -> list[dict[str, object]]:
    return [run for run in runs if _training_metrics(run)]


#: Each recipe: the framework, the metrics its run must hold (any of them), how it makes its run.
FRAMEWORK_RECIPES = [
    pytest.param("sklearn", {"training_score"}, id="sklearn-autolog"),  # mlflow.start_run, or the active run
    pytest.param("lightning", {"train_loss"}, marks=pytest.mark.needs_torch, id="lightning-mlflowlogger"),
    pytest.param(
        "transformers", {"loss", "train_loss"}, marks=pytest.mark.needs_torch, id="transformers-trainer"
    ),
]


@pytest.mark.parametrize("way", ["implicit", "explicit"])
@pytest.mark.parametrize(("framework", "metrics"), FRAMEWORK_RECIPES)
def test_recipe_tags_the_run_that_holds_the_metrics(
    mlflow_server: Server, framework: str, metrics: set[str], way: str
) -> None:
    """One run, holding the training metrics and the system tags: with the variable, or the explicit line.

    scikit-learn autologging and the Transformers Trainer start their run with
    mlflow.start_run (or log into the active one); Lightning's MLFlowLogger makes its run
    through MLflow's resolve_tags, or takes run_id.
    """
    runs = _recipe(mlflow_server, framework, way)
    assert len(runs) == 1
    assert metrics & set(runs[0]["metrics"])  # type: ignore[call-overload]
    assert runs[0]["tagged"] is True


@pytest.mark.needs_torch
def test_lightning_trap_two_runs(mlflow_server: Server) -> None:
    """The trap: sysmetrics_run() around fit with a plain MLFlowLogger makes two runs, the metrics untagged."""
    runs = _recipe(mlflow_server, "lightning", "trap")
    assert len(runs) == 2
    (metrics_run,) = _with_metrics(runs)
    assert metrics_run["tagged"] is False
    (empty_run,) = [run for run in runs if not _training_metrics(run)]
    assert empty_run["tagged"] is True
    assert "sys.gpu_hours" in empty_run["metrics"]  # sysmetrics_run's own run holds only its ledger
