"""The MLflow run context provider behind ``MLFLOW_RUN_CONTEXT_PROVIDER=sysmetrics``.

MLflow builds every registered provider at ``import mlflow`` and asks ``in_context()`` on
every run (and for traces, datasets and logged models), so ``in_context()`` reads one
environment variable, and the constructor does nothing unless implicit tagging is on. When
it is, the constructor starts the gathering of the facts in one background thread (once per
process; ``MLFLOW_SYSMETRICS_PREFETCH=0`` turns it off), so that the first run finds them
waiting: the thread lets ``import mlflow`` finish first (it never competes with it, and
imports nothing while MLflow is half imported), then gathers within the deadline and ends.

This module imports nothing from MLflow (MLflow only calls ``in_context()`` and ``tags()``):
staying independent is what lets ``import mlflow_sysmetrics`` come before ``import mlflow``
without a circular import, and keeps what MLflow's import pays for this package to one
small module.
"""

from __future__ import annotations

import os
import sys
import time

#: The variable that switches implicit tagging on, and the name it must contain.
ENV_PROVIDER = "MLFLOW_RUN_CONTEXT_PROVIDER"
PROVIDER_NAME = "sysmetrics"


_last: tuple[str, bool] = ("", False)
_prefetch_started = False
#: How often the background gathering looks whether ``import mlflow`` has finished, and for
#: how long at most it waits for that.
_POLL_SECONDS = 0.002
_MAX_WAIT_SECONDS = 60.0


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

    def __init__(self) -> None:
        if provider_enabled() and not _prefetch_started:
            try:
                _start_prefetch()
            except Exception:  # pragma: no cover - never cost MLflow its provider: the first run gathers
                from . import _log

                _log.logger().debug("could not start gathering ahead", exc_info=True)

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


def _start_prefetch() -> None:
    global _prefetch_started
    from . import _state, settings

    if _prefetch_started or not settings.prefetch_enabled():
        return
    _prefetch_started = True  # once per process (MLflow builds one provider)
    _state.start_thread(_prefetch_after_mlflow_import, "prefetch")


def _mlflow_half_imported() -> bool:
    module = sys.modules.get("mlflow")
    return bool(getattr(getattr(module, "__spec__", None), "_initializing", False))


def _prefetch_after_mlflow_import() -> None:
    waited_until = time.monotonic() + _MAX_WAIT_SECONDS
    while _mlflow_half_imported() and time.monotonic() < waited_until:
        time.sleep(_POLL_SECONDS)
    try:
        from ._engine import prefetch
    except Exception:  # pragma: no cover - a broken install: the first run will say what failed
        return
    prefetch()
