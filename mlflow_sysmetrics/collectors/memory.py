"""Memory: the machine's total and, inside a container, the limit set on it."""

from __future__ import annotations

from .. import tags as T
from .._context import Context
from .._value import gb
from . import _cgroup

# psutil is imported where /proc/meminfo cannot answer (macOS, Windows), not on Linux.


def meminfo_total(text: str) -> int | None:
    """``MemTotal`` of ``/proc/meminfo`` in bytes."""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            try:
                value = int(parts[1])
            except (IndexError, ValueError):
                return None
            unit = parts[2].lower() if len(parts) > 2 else "kb"
            return value * 1024 if unit == "kb" else value
    return None


def total_psutil() -> int:
    """Total physical memory as psutil reads it (imported only when asked)."""
    import psutil

    return int(psutil.virtual_memory().total)


def collect_linux(ctx: Context) -> dict[str, str]:
    """``sys.memory_gb`` from ``/proc/meminfo`` and ``sys.memory_limit_gb`` from the cgroup."""
    total = meminfo_total(ctx.root.read("/proc/meminfo") or "")
    if total is None and ctx.root.is_live:
        total = total_psutil()
    found: dict[str, str] = {}
    if total:
        found[T.MEMORY_GB] = gb(total)
    limit = _cgroup.memory_limit(ctx.root)
    if limit is not None and (total is None or limit < total):
        found[T.MEMORY_LIMIT_GB] = gb(limit)
    return found


def collect_psutil(ctx: Context) -> dict[str, str]:
    """``sys.memory_gb`` through psutil (macOS, Windows)."""
    return {T.MEMORY_GB: gb(total_psutil())}
