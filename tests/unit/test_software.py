"""Software: the versions of Python and MLflow (collectors/software.py)."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

from mlflow_sysmetrics.collectors import software
from tests.fresh import bare_python, fresh_python


def _python(code: str, **env: str) -> Any:
    return fresh_python(code, env=env).value


def test_python_version_is_platforms() -> None:
    """sys.python is platform.python_version(), release-candidate suffixes included."""
    assert software.python_version() == platform.python_version()


def test_mlflow_version_from_its_dist_info_folder(tmp_path: Path) -> None:
    """Found without importing MLflow or importlib.metadata; the same as the metadata says.

    An installed MLflow is laid out as pip lays it out (the package beside its ``.dist-info``
    folder with a ``METADATA`` file); importlib.metadata, reading that file, is the reference.
    """
    site = tmp_path / "site-packages"
    (site / "mlflow").mkdir(parents=True)
    (site / "mlflow" / "__init__.py").write_text("raise ImportError('never imported')\n")
    info = site / "mlflow-3.17.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mlflow\nVersion: 3.17.2\n")
    code = (
        "import sys, json\n"
        f"sys.path.append({str(site)!r})\n"
        "from mlflow_sysmetrics.collectors import software\n"
        "ours = software.mlflow_version()\n"
        "loaded = 'importlib.metadata' in sys.modules\n"
        "from importlib import metadata\n"
        "print(json.dumps([ours, loaded, metadata.version('mlflow')]))\n"
    )
    ours, loaded_metadata, reference = bare_python(code)  # type: ignore[misc]
    assert ours == reference == "3.17.2"
    assert loaded_metadata is False


def test_dist_info_names_are_normalised(tmp_path: Path) -> None:
    """Folder names as the packaging specification writes them: lower case, '_' for '-', '.'."""
    for name in ("mlflow_skinny-3.17.2.dist-info", "other-1.0.dist-info", "mlflow.egg-info"):
        (tmp_path / name).mkdir()
    assert software.dist_info_version(str(tmp_path), ("mlflow", "mlflow_skinny")) == "3.17.2"
    (tmp_path / "MLflow-3.18.0.dist-info").mkdir()
    assert software.dist_info_version(str(tmp_path), ("mlflow", "mlflow_skinny")) == "3.18.0"
    assert software.dist_info_version(str(tmp_path / "missing"), ("mlflow",)) is None
