"""The package's manners: a cheap import, a documented public surface, typed."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import mlflow_sysmetrics

REPO = Path(__file__).resolve().parents[2]


def test_import_is_light() -> None:
    """Importing the package loads neither MLflow, psutil nor NVML, and starts no thread or process."""
    code = (
        "import sys, threading, mlflow_sysmetrics;"
        "print(sorted(m for m in ('mlflow', 'psutil', 'pynvml', 'wrapt', 'ctypes') if m in sys.modules));"
        "print(threading.active_count())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.split("\n")[:2] == ["[]", "1"]


def test_collect_needs_no_mlflow() -> None:
    """collect() works where MLflow cannot be imported (as on a bare GPU machine)."""
    code = (
        "import sys; sys.modules['mlflow'] = None\n"
        "import mlflow_sysmetrics, json\n"
        "tags = mlflow_sysmetrics.collect()\n"
        "print(json.dumps(tags))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert '"sys.cpu"' in out.stdout


def test_public_surface_is_explicit_and_documented() -> None:
    """__all__ is sorted, every name resolves, and every public callable has a docstring."""
    assert sorted(mlflow_sysmetrics.__all__) == mlflow_sysmetrics.__all__
    readme = (REPO / "README.md").read_text()
    for name in mlflow_sysmetrics.__all__:
        value = getattr(mlflow_sysmetrics, name)
        if name.startswith("__"):
            continue
        assert inspect.getdoc(value), f"{name} has no docstring"
        assert f"`{name}" in readme, f"{name} is not in the README"


def test_typed_package() -> None:
    """py.typed ships with the package."""
    assert (Path(mlflow_sysmetrics.__file__).parent / "py.typed").exists()
