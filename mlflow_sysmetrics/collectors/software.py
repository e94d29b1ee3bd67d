"""Versions of Python and MLflow (MLflow need not be installed for :func:`collect`)."""

from __future__ import annotations

import importlib.util
import platform
import sys

from .. import tags as T
from .._context import Context


def mlflow_version() -> str | None:
    """The installed MLflow version, or ``None`` when MLflow is not installed.

    Every door imports MLflow before it collects, so the module's own ``__version__`` is
    there; otherwise the package metadata is asked, but only after ``find_spec`` (cheap)
    says there is an MLflow to ask about: ``importlib.metadata`` is slow to import, and a
    process without MLflow (``collect()`` on a bare GPU node) should not pay for it.
    """
    module = sys.modules.get("mlflow")
    version = getattr(module, "__version__", None)
    if isinstance(version, str):
        return version
    if importlib.util.find_spec("mlflow") is None:
        return None
    from importlib import metadata

    for distribution in ("mlflow", "mlflow-skinny"):
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return None


def collect(ctx: Context) -> dict[str, str]:
    """``sys.python`` and ``sys.mlflow``."""
    found = {T.PYTHON: platform.python_version()}
    version = mlflow_version()
    if version:
        found[T.MLFLOW] = version
    return found
