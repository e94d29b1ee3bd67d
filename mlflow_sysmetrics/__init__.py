"""mlflow-sysmetrics: every MLflow run says what it ran on.

Importing this package is cheap (MLflow imports it at ``import mlflow`` to find the
provider): it imports neither MLflow nor psutil, and the public functions load what they
need when first called.
"""

from __future__ import annotations

from .provider import SysMetricsRunContextProvider

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from typing import Any

    from ._collection import collect, snapshot
    from ._why import why
    from .runs import log_sysmetrics, sysmetrics_run, with_sysmetrics

__version__ = "1.1.0"

__all__ = [
    "SysMetricsRunContextProvider",
    "__version__",
    "collect",
    "log_sysmetrics",
    "snapshot",
    "sysmetrics_run",
    "why",
    "with_sysmetrics",
]

_LAZY = {
    "collect": "_collection",
    "snapshot": "_collection",
    "log_sysmetrics": "runs",
    "sysmetrics_run": "runs",
    "with_sysmetrics": "runs",
    "why": "_why",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
