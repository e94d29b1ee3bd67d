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


#: The last value of the variable and whether it named us: a memo of a pure function of the
#: value, so clear_cache() has nothing to forget in it (and it is not in _state's registry).
_last: tuple[str, bool] = ("", False)
#: Set once the gathering ahead was started (or found impossible): once per process, also
#: after clear_cache() (MLflow builds one provider); a forked child inherits it and gathers
#: in its first run instead.
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
        names = raw.lower().replace(",", " ").split()
        _last = (raw, PROVIDER_NAME in names)
        if not _last[1]:
            _warn_unknown(raw, names)
    return _last[1]


def _warn_unknown(raw: str, names: list[str]) -> None:
    """One warning when the variable names no run context provider that is installed.

    The variable is this package's (MLflow itself does not read it), so a value that names
    no registered ``mlflow.run_context_provider`` is a typo worth one line, not silence.
    """
    from importlib import metadata

    from . import settings

    try:
        known = {e.name.lower() for e in metadata.entry_points(group="mlflow.run_context_provider")}
    except Exception:  # a broken installation: say nothing rather than fail a run
        return
    unknown = [name for name in names if name not in known]
    if not unknown:
        return
    import difflib

    close = difflib.get_close_matches(unknown[0], [PROVIDER_NAME, *sorted(known)], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    settings.warn_once(
        ENV_PROVIDER,
        raw,
        f"names no installed run context provider ({', '.join(unknown)}): implicit tagging stays off"
        f"{hint} (write {PROVIDER_NAME} to switch it on)",
    )


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
        from ._collection import collect, handed_over_tags

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
    if _mlflow_half_imported() is None or not _state.imports_repairable_after_fork():
        # This Python does not say when an import ends, or a forked child could not repair
        # an import our thread was in: gathering ahead could not be made safe, so the first
        # run gathers instead (slower, never wrong).
        return
    _state.start_thread(_prefetch_after_mlflow_import, "prefetch")


def _mlflow_half_imported() -> bool | None:
    """True while ``import mlflow`` runs; ``None`` when this Python does not tell.

    CPython marks a module being imported on its spec (``__spec__._initializing``, not a
    public name); a Python that does not is answered ``None``.
    """
    module = sys.modules.get("mlflow")
    if module is None:
        return False
    state = getattr(getattr(module, "__spec__", None), "_initializing", None)
    return state if isinstance(state, bool) else None


def _prefetch_after_mlflow_import() -> None:
    waited_until = time.monotonic() + _MAX_WAIT_SECONDS
    while _mlflow_half_imported() and time.monotonic() < waited_until:
        time.sleep(_POLL_SECONDS)
    try:
        from ._collection import prefetch
    except Exception:  # pragma: no cover - a broken install: the first run will say what failed
        return
    prefetch()
