"""Versions of Python and MLflow (MLflow need not be installed for :func:`collect`)."""

from __future__ import annotations

import os
import platform
import re
import sys

from .. import tags as T
from .._context import Context

_DIST_INFO = re.compile(r"^mlflow(?:[-_]skinny)?-([0-9][^-]*)\.dist-info$", re.IGNORECASE)


def mlflow_version() -> str | None:
    """The installed MLflow version (``mlflow``, else the ``mlflow-skinny`` core), or ``None``."""
    module = sys.modules.get("mlflow")
    version = getattr(module, "__version__", None)
    if isinstance(version, str):
        return version
    # Looking for the dist-info folder ourselves costs a directory listing per path entry;
    # importlib.metadata would first import itself (tens of milliseconds).
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        found = sorted(m.group(0) for m in map(_DIST_INFO.match, names) if m)
        if found:
            # "mlflow-" sorts before "mlflow_skinny-": the full package wins.
            match = _DIST_INFO.match(found[0])
            if match:
                return match.group(1)
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
