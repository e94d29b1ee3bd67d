"""The engines' doors, ``mlflow_sysmetrics.ray`` and ``mlflow_sysmetrics.spark``, without the engines.

What importing them brings in, what they document, and how they answer a wrong call. The
launchers' environments are in ``test_distributed.py``, machines agreed on in
``test_machines.py``, worker facts in ``test_remote.py``.
"""

from __future__ import annotations

import sys

import pytest

from tests.fresh import fresh_python


def test_the_engine_modules_import_no_engine() -> None:
    """Importing the Ray and Spark modules imports neither engine, nor MLflow, nor torch."""
    code = (
        "import json, sys, mlflow_sysmetrics.ray, mlflow_sysmetrics.spark;"
        "print(json.dumps([m for m in ('ray', 'pyspark', 'mlflow', 'torch') if m in sys.modules]))"
    )
    assert fresh_python(code).value == []


def test_the_engine_modules_public_names_are_documented() -> None:
    """Each module's __all__ is sorted; every name in it has a docstring, a use on the engines' page and its API entry."""
    from mlflow_sysmetrics import ray as sysmetrics_ray
    from mlflow_sysmetrics import spark as sysmetrics_spark
    from tests.pages import DOCS

    engines = (DOCS / "multi-node.md").read_text()
    reference = (DOCS / "reference.md").read_text().splitlines()
    for module in (sysmetrics_ray, sysmetrics_spark):
        assert f"::: {module.__name__}" in reference, f"{module.__name__} is not in the API reference"
        assert sorted(module.__all__) == module.__all__
        for name in module.__all__:
            assert f"`{name}" in engines, f"{name} is not on the page docs/multi-node.md"
            if name != "MLflowLoggerCallback":  # built from Ray's class on first use (imports Ray)
                assert getattr(module, name).__doc__, name


def test_the_ray_helpers_need_a_running_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a Ray the program started, the helpers say how to call them; wrong arguments say what they take."""
    from mlflow_sysmetrics import ray as sysmetrics_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # as in a program that never imported Ray
    with pytest.raises(ValueError, match=r"after ray\.init\(\)"):
        sysmetrics_ray.node_sysmetrics(node_ip="10.0.0.2")
    with pytest.raises(TypeError, match=r"node_ip= .* or node_id="):
        sysmetrics_ray.node_sysmetrics(node_ip="10.0.0.2", node_id="ab12")
    with pytest.raises(ValueError, match="positive number of seconds"):
        sysmetrics_ray.node_sysmetrics(node_ip="10.0.0.2", timeout=-1)
    with pytest.raises(TypeError, match="run id string"):
        sysmetrics_ray.log_node_sysmetrics(42, node_ip="10.0.0.2")  # type: ignore[arg-type]


def test_the_spark_helpers_need_a_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a session the program made (or with something else as spark=), a clear error, nothing started."""
    from mlflow_sysmetrics import spark as sysmetrics_spark

    monkeypatch.delitem(sys.modules, "pyspark", raising=False)
    with pytest.raises(ValueError, match="SparkSession"):
        sysmetrics_spark.executor_sysmetrics()
    with pytest.raises(TypeError, match=r"spark= takes a pyspark\.sql\.SparkSession"):
        sysmetrics_spark.executor_sysmetrics(spark=object())
    connect = type("SparkSession", (), {"__module__": "pyspark.sql.connect.session"})
    with pytest.raises(ValueError, match="Spark Connect session has none"):
        sysmetrics_spark.executor_sysmetrics(spark=connect())
    with pytest.raises(TypeError, match="run id string"):
        sysmetrics_spark.log_executor_sysmetrics(run_id=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not both"):
        sysmetrics_spark.log_executor_sysmetrics("abc", tracking_uri="x", client=object())  # type: ignore[arg-type]
    assert "pyspark" not in sys.modules  # nothing imported it
