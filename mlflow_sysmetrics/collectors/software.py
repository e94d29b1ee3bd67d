"""The ``software`` collector: the versions of Python and MLflow.

MLflow need not be installed for :func:`collect`. The ML frameworks a process imported are
the ``frameworks`` collector's (:mod:`.frameworks`).
"""

from __future__ import annotations

import os
import sys

from .. import tags as T
from .._context import Context

# importlib.machinery (what find_spec would ask, without importlib.util) and importlib.metadata
# (slow to import: csv, email, zipfile) are imported where used: metadata only where MLflow's
# folder names no version.


def mlflow_version() -> str | None:
    """The installed MLflow version, or ``None`` when MLflow is not installed.

    Every door imports MLflow before it collects, so the module's own ``__version__`` is
    there. Otherwise (``collect()`` alone) MLflow is found without importing it, and its
    version read from the name of the ``.dist-info`` folder next to it, which the packaging
    specification ("Recording installed projects") names ``{name}-{version}.dist-info``;
    only where there is none (an egg or a source checkout) is ``importlib.metadata`` asked,
    which is slow to import (``csv``, ``email``, ``zipfile``; ``python
    benchmarks/cold_imports.py`` compares the two ways).
    """
    module = sys.modules.get("mlflow")
    version = getattr(module, "__version__", None)
    if isinstance(version, str):
        return version
    from importlib.machinery import PathFinder

    spec = PathFinder.find_spec("mlflow")
    if spec is None or not spec.origin:
        return None
    folder = os.path.dirname(os.path.dirname(spec.origin))
    version = dist_info_version(folder, ("mlflow", "mlflow_skinny"))
    if version:
        return version
    from importlib import metadata

    for distribution in ("mlflow", "mlflow-skinny"):
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return None


def dist_info_version(folder: str, names: tuple[str, ...]) -> str | None:
    """The version in the name of the first ``<name>-<version>.dist-info`` in ``folder``.

    ``names`` are normalised as the specification writes them in folder names (lower
    case, ``_`` for runs of ``-``, ``_`` and ``.``); the first in ``names`` found wins.
    """
    try:
        entries = os.listdir(folder)
    except OSError:
        return None
    found: dict[str, str] = {}
    for entry in entries:
        if not entry.endswith(".dist-info"):
            continue
        name, _, version = entry[: -len(".dist-info")].partition("-")
        normalised = "_".join(part for part in name.replace("-", "_").replace(".", "_").split("_") if part)
        normalised = normalised.lower()
        if version and normalised in names:
            found.setdefault(normalised, version)
    return next((found[name] for name in names if name in found), None)


def python_version() -> str:
    """:func:`platform.python_version`: the first word of ``sys.version`` (``3.13.0rc1``)."""
    return sys.version.split(maxsplit=1)[0]


def collect(ctx: Context) -> dict[str, str]:
    """``sys.python`` and ``sys.mlflow``."""
    found = {T.PYTHON: python_version()}
    version = mlflow_version()
    if version:
        found[T.MLFLOW] = version
    return found
