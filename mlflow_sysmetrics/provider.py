"""The MLflow run context provider behind ``MLFLOW_RUN_CONTEXT_PROVIDER=sysmetrics``.

MLflow builds every registered provider at ``import mlflow`` and asks ``in_context()`` on
every run (and for traces, datasets and logged models), so the constructor does nothing
and ``in_context()`` reads one environment variable. This module imports nothing from
MLflow (MLflow only calls ``in_context()`` and ``tags()``): staying independent is what lets
``import mlflow_sysmetrics`` come before ``import mlflow`` without a circular import, and
keeps what MLflow's import pays for this package to one small module.
"""

from __future__ import annotations

import os

#: The variable that switches implicit tagging on, and the name it must contain.
ENV_PROVIDER = "MLFLOW_RUN_CONTEXT_PROVIDER"
PROVIDER_NAME = "sysmetrics"


_last: tuple[str, bool] = ("", False)


def provider_enabled() -> bool:
    """Whether ``MLFLOW_RUN_CONTEXT_PROVIDER`` names ``sysmetrics`` (any case, comma or space list)."""
    global _last
    raw = os.environ.get(ENV_PROVIDER)
    if not raw:
        return False
    if raw != _last[0]:  # asked on every run: split an unchanged value only once
        _last = (raw, PROVIDER_NAME in raw.lower().replace(",", " ").split())
    return _last[1]


class SysMetricsRunContextProvider:
    """Adds the ``sys.*`` tags to every new MLflow run when switched on.

    Switched on when ``MLFLOW_RUN_CONTEXT_PROVIDER`` names ``sysmetrics`` (any case, in a
    comma- or space-separated list). Registered under the ``mlflow.run_context_provider``
    entry point as ``sysmetrics``, the name and class mlflow-sysmetrics 0.1.3 used.
    """

    def in_context(self) -> bool:
        """Whether implicit tagging is switched on in this environment."""
        return provider_enabled()

    def tags(self) -> dict[str, str]:
        """The system tags for the run being created (see :func:`mlflow_sysmetrics.collect`)."""
        from ._engine import collect, handed_over_tags

        handed = handed_over_tags()
        if handed is not None:  # a door already collected them for this run
            return dict(handed)
        return collect()
