"""Settings read from environment variables, with one clear warning for a bad value.

A bad value never stops tagging: it is reported once (naming the variable and the default
used instead) and the default applies. Settings are re-read on every call, so a change to
the environment takes effect at once; parsing is memoised on the raw values, so an
unchanged environment costs a few dictionary look-ups.
"""

from __future__ import annotations

import math
import os

from . import _env, _log, _state
from . import tags as _tags
from ._value import Record

ENV_TIMEOUT = "MLFLOW_SYSMETRICS_TIMEOUT"
ENV_INCLUDE = "MLFLOW_SYSMETRICS_INCLUDE"
ENV_EXCLUDE = "MLFLOW_SYSMETRICS_EXCLUDE"
ENV_ROOT = "MLFLOW_SYSMETRICS_ROOT"
ENV_PREFETCH = "MLFLOW_SYSMETRICS_PREFETCH"
ENV_LEDGER = "MLFLOW_SYSMETRICS_LEDGER"
ENV_GRID = "MLFLOW_SYSMETRICS_GRID_GCO2_KWH"

DEFAULT_TIMEOUT = 1.0
#: Longest deadline honoured: a run waits at most this long to start.
MAX_TIMEOUT = 600.0
DEFAULT_ROOT = "/"
#: A pattern longer than this names no tag (keys are a few dozen characters).
MAX_PATTERN_LENGTH = 200


class Settings(Record):
    """What the environment asks of one collection (a record: equal settings hash alike)."""

    timeout: float = DEFAULT_TIMEOUT
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    root: str = DEFAULT_ROOT


_warned: set[tuple[str, str]] = set()
_memo: dict[tuple[str | None, ...], Settings] = {}


def _reset() -> None:
    _warned.clear()
    _memo.clear()


_state.register(reset=_reset)
_read = _env.reader((ENV_TIMEOUT, ENV_INCLUDE, ENV_EXCLUDE, ENV_ROOT))


def current() -> Settings:
    """The settings the environment gives now."""
    raw = _read()
    settings = _memo.get(raw)
    if settings is None:
        settings = Settings(
            timeout=_parse_timeout(raw[0]),
            include=_parse_patterns(ENV_INCLUDE, raw[1]),
            exclude=_parse_patterns(ENV_EXCLUDE, raw[2]),
            root=_parse_root(raw[3]),
        )
        if len(_memo) > 64:  # an environment that keeps changing must not grow memory
            _memo.clear()
        _memo[raw] = settings
    return settings


def warn_once(variable: str, value: str, message: str) -> None:
    """Log ``message`` about ``variable`` once per distinct bad ``value``."""
    shown = value if len(value) <= 80 else f"{value[:60]}... ({len(value)} characters)"
    key = (variable, shown)
    if key in _warned:
        return
    _warned.add(key)
    _log.logger().warning("%s=%r: %s", variable, shown, message)


def _parse_timeout(raw: str | None) -> float:
    if raw is None or not raw.strip():
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        warn_once(
            ENV_TIMEOUT,
            raw,
            f"expected a positive number of seconds such as 1.5; using the default {DEFAULT_TIMEOUT}",
        )
        return DEFAULT_TIMEOUT
    if value > MAX_TIMEOUT:
        warn_once(
            ENV_TIMEOUT,
            raw,
            f"a run would wait that long to start; using the longest deadline allowed, {MAX_TIMEOUT:g} s",
        )
        return MAX_TIMEOUT
    return value


def _parse_patterns(variable: str, raw: str | None) -> tuple[str, ...]:
    if raw is None:
        return ()
    if len(raw) > MAX_PATTERN_LENGTH * 100:
        warn_once(variable, raw, "is far longer than any list of tag patterns; ignoring it")
        return ()
    patterns = tuple(p for p in (part.strip() for part in raw.split(",")) if p)
    unknown = [p for p in patterns if len(p) > MAX_PATTERN_LENGTH or not _tags.matches_any_known(p)]
    if unknown:
        shown = ", ".join(p if len(p) <= 40 else f"{p[:30]}..." for p in unknown[:5])
        warn_once(
            variable,
            raw,
            f"{shown} names no tag this package writes "
            f"(keys look like 'sys.gpu' or 'sys.dist.*'); ignoring "
            f"{'it' if len(unknown) == 1 else 'them'}",
        )
        rejected = set(unknown)
        patterns = tuple(p for p in patterns if p not in rejected)
    return patterns


_OFF = frozenset({"0", "false", "no", "off"})
_ON = frozenset({"", "1", "true", "yes", "on"})


def _switch(variable: str) -> bool:
    """A switch that is on unless ``variable`` says 0 (false, no, off); a bad value warns once."""
    raw = os.environ.get(variable)
    if raw is None:
        return True
    value = raw.strip().lower()
    if value in _OFF:
        return False
    if value not in _ON:
        warn_once(variable, raw, "expected 1 or 0 (also true/false, yes/no, on/off); using the default 1")
    return True


def prefetch_enabled() -> bool:
    """Whether ``MLFLOW_SYSMETRICS_PREFETCH`` lets implicit tagging gather ahead (the default)."""
    return _switch(ENV_PREFETCH)


def ledger_enabled() -> bool:
    """Whether ``MLFLOW_SYSMETRICS_LEDGER`` lets the explicit doors write the run's ledger (the default)."""
    return _switch(ENV_LEDGER)


#: Far above any grid's carbon intensity (coal is about 1,000 g of CO2 per kWh).
MAX_GRID_GCO2_KWH = 10_000.0


def grid_intensity() -> float | None:
    """``MLFLOW_SYSMETRICS_GRID_GCO2_KWH``: the user's grams of CO2 per kWh, or ``None`` when unset."""
    raw = os.environ.get(ENV_GRID)
    if raw is None or not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or value > MAX_GRID_GCO2_KWH:
        warn_once(
            ENV_GRID,
            raw,
            f"expected grams of CO2 per kWh, a number from 0 to {MAX_GRID_GCO2_KWH:g} such as 380; "
            "no sys.co2_g is written",
        )
        return None
    return value


def _parse_root(raw: str | None) -> str:
    if raw is None or not raw.strip():
        return DEFAULT_ROOT
    path = os.path.abspath(os.path.expanduser(raw.strip()))
    if not os.path.isdir(path):
        warn_once(
            ENV_ROOT,
            raw,
            f"is not a folder; reading the machine's own files under the default {DEFAULT_ROOT!r}",
        )
        return DEFAULT_ROOT
    return path
