"""The quick-start notebook, run top to bottom by a real Jupyter kernel."""

from __future__ import annotations

from pathlib import Path

import mlflow
import nbformat
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


def test_notebook_runs_and_its_runs_carry_the_tags(local_store: str, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Executed on a fresh kernel; the three runs it makes carry the system tags."""
    monkeypatch.delenv("MLFLOW_RUN_CONTEXT_PROVIDER", raising=False)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    experiment = mlflow.get_experiment_by_name("sysmetrics-quickstart")
    assert experiment is not None
    runs = mlflow.MlflowClient().search_runs([experiment.experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["decorated", "implicit", "with-block"]
    for run in runs:
        assert {"sys.cpu", "sys.cpu_cores", "sys.memory_gb", "sys.gpu", "sys.os"} <= set(run.data.tags)
        assert run.info.status == "FINISHED"
        assert "accuracy" in run.data.metrics
    outputs = "".join(
        str(o.get("data", {}).get("text/plain", "")) for c in notebook.cells for o in c.get("outputs", [])
    )
    assert "sys.cpu" in outputs
