"""Implicit tagging through MLflow's run-context-provider entry point, over HTTP."""

from __future__ import annotations

import os

from tests.fresh import fresh_python
from tests.integration.conftest import Proxy, Server

RUN_AND_READ = """
import json, mlflow
with mlflow.start_run() as run:
    pass
tags = mlflow.MlflowClient().get_run(run.info.run_id).data.tags
print(json.dumps({k: v for k, v in tags.items() if k.startswith(("sys.", "sysmetrics."))}))
"""


def _python(code: str, server: Server, *flags: str, **env: str) -> dict[str, str]:
    """``code`` in a fresh interpreter that tracks to ``server``."""
    tags: dict[str, str] = fresh_python(
        code, *flags, env={"MLFLOW_TRACKING_URI": server.url, **env}, scrub=("MLFLOW_RUN_CONTEXT_PROVIDER",)
    ).value
    return tags


def test_switched_on_every_run_is_tagged(mlflow_server: Server) -> None:
    """MLFLOW_RUN_CONTEXT_PROVIDER=sysmetrics: a plain mlflow.start_run() carries the tags."""
    tags = _python(RUN_AND_READ, mlflow_server, MLFLOW_RUN_CONTEXT_PROVIDER="sysmetrics")
    assert {"sys.cpu", "sys.cpu_cores", "sys.memory_gb", "sys.gpu", "sys.os", "sys.mlflow"} <= set(tags)
    assert tags["sys.cpu_cores"] == str(os.cpu_count())
    assert "sysmetrics.error" not in tags


def test_switched_off_no_run_is_tagged(mlflow_server: Server) -> None:
    """Without the variable, the provider stays out of the way."""
    assert _python(RUN_AND_READ, mlflow_server) == {}


def test_importing_us_before_mlflow_still_registers(mlflow_server: Server) -> None:
    """Import mlflow_sysmetrics; import mlflow, warnings as errors: no circular-import warning, tags appear."""
    code = "import mlflow_sysmetrics\n" + RUN_AND_READ
    tags = _python(code, mlflow_server, "-W", "error", MLFLOW_RUN_CONTEXT_PROVIDER="git, SysMetrics")
    assert "sys.cpu" in tags


def test_a_broken_setting_never_stops_a_run(mlflow_server: Server) -> None:
    """Bad values of every setting: the run starts and is tagged."""
    tags = _python(
        RUN_AND_READ,
        mlflow_server,
        MLFLOW_RUN_CONTEXT_PROVIDER="sysmetrics",
        MLFLOW_SYSMETRICS_TIMEOUT="abc",
        MLFLOW_SYSMETRICS_ROOT="/no/such/folder",
        MLFLOW_SYSMETRICS_INCLUDE="nonsense",
    )
    assert "sys.cpu" in tags


def test_tags_cross_http_through_the_proxy(tracking: Proxy, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """In this process: the create request itself carries the tags (no second write)."""
    import mlflow

    monkeypatch.setenv("MLFLOW_RUN_CONTEXT_PROVIDER", "sysmetrics")
    with mlflow.start_run():
        pass
    creates = [body for method, path, body in tracking.bodies if path.endswith("/runs/create")]
    assert len(creates) == 1
    assert b"sys.cpu" in creates[0]
    assert tracking.count("POST", "/runs/log-batch") == 0
