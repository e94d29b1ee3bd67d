"""The quick-start notebook, run top to bottom by a real Jupyter kernel."""

from __future__ import annotations

from pathlib import Path

import mlflow
import nbformat
import pytest
from nbclient import NotebookClient

from tests.integration.conftest import REPO

NOTEBOOK = REPO / "notebooks" / "quickstart.ipynb"


def test_committed_without_outputs() -> None:
    """The committed notebook carries no outputs (it must run fresh)."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(
        not cell.get("outputs") and not cell.get("execution_count")
        for cell in notebook.cells
        if cell.cell_type == "code"
    )


def test_notebook_runs_and_its_runs_carry_the_tags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Executed on a fresh kernel, as the README runs it: its store, three tagged runs, clean outputs.

    No MLFLOW_TRACKING_URI: the notebook makes its own store next to itself, as for a user;
    its outputs are the cells' results, without warnings or MLflow's INFO lines.
    """
    monkeypatch.delenv("MLFLOW_RUN_CONTEXT_PROVIDER", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)  # where MLflow's SQLite store puts ./mlruns
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    store = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'quickstart.db'}")
    experiment = store.get_experiment_by_name("sysmetrics-quickstart")
    assert experiment is not None
    runs = store.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["decorated", "implicit", "with-block"]
    for run in runs:
        assert {"sys.cpu", "sys.cpu_cores", "sys.memory_gb", "sys.gpu", "sys.os"} <= set(run.data.tags)
        assert run.info.status == "FINISHED"
        assert "accuracy" in run.data.metrics
    outputs = [o for c in notebook.cells for o in c.get("outputs", [])]
    assert [o for o in outputs if o.get("output_type") == "stream"] == []  # no TqdmWarning, no INFO line
    shown = "".join(str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "sys.cpu" in shown
