"""What the engine tests share: the engine itself, or a clear failure under CI."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

from tests.conftest import fixture_root
from tests.fresh import fresh_python


def engine_marks(engine: str) -> list[pytest.MarkDecorator]:
    """An engine test module's marks: kept on one xdist worker (its cluster starts once), cut off at 15 min."""
    return [
        pytest.mark.needs_engines,
        pytest.mark.timeout(900),
        pytest.mark.xdist_group(engine),
    ]


def require(module: str) -> ModuleType:
    """Import ``module``; skip the test where it is missing, but fail it under CI.

    CI installs the engines (requirements-engines.txt): there a missing one is a broken
    set-up, never a reason to skip.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is needed in CI: pip install -r requirements-engines.txt")
        pytest.skip(f"{module} is not installed: pip install -r requirements-engines.txt to run this test")


#: Every process of an engine test collects with this deadline: a loaded test machine (an
#: engine's cluster beside other tests) must not cut a fact off, which would fail the test for
#: the wrong reason. What a deadline does is tested elsewhere (tests/unit/test_collection.py).
DEADLINE = {"MLFLOW_SYSMETRICS_TIMEOUT": "60"}

_FACTS: dict[str, dict[str, str]] = {}


def machine_facts(machine: str) -> dict[str, str]:
    """The facts of a replayed machine, read in a fresh interpreter (as an engine's worker reads them)."""
    if machine not in _FACTS:
        code = "import json; from mlflow_sysmetrics import collect; print(json.dumps(collect()))"
        env = {"MLFLOW_SYSMETRICS_ROOT": str(fixture_root(machine)), "PATH": os.environ["PATH"], **DEADLINE}
        _FACTS[machine] = fresh_python(code, env=env).value
    return _FACTS[machine]
