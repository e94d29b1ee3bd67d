"""macOS: the CPU model and the machine's memory, from one ``sysctl`` call.

``machdep.cpu.brand_string`` is the chip (``Apple M2 Max``), which is also the GPU on Apple
silicon (:mod:`.accelerators.apple` reads the same answer).
"""

from __future__ import annotations

from .. import _state
from .. import tags as T
from .._context import Context
from . import cpu

SYSCTL_NAMES = ("machdep.cpu.brand_string", "hw.memsize")

_lock = _state.lock()
_values: dict[str, str] | None = None


def parse_sysctl(text: str) -> dict[str, str]:
    """``name: value`` lines of ``sysctl NAME...``."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and value.strip():
            values[name.strip()] = value.strip()
    return values


def sysctl_values(ctx: Context) -> dict[str, str]:
    """The ``sysctl`` values we use, read once per process (shared by the CPU and GPU)."""
    global _values
    if not _lock.acquire(timeout=max(ctx.remaining(), 0.001)):
        raise TimeoutError("sysctl gave no answer in time")
    try:
        if _values is None:
            _values = parse_sysctl(ctx.run(["sysctl", *SYSCTL_NAMES]))
        return _values
    finally:
        _lock.release()


def _forget() -> None:
    global _values
    _values = None


_state.register(reset=_forget)


def collect_cpu(ctx: Context) -> dict[str, str]:
    """CPU tags on macOS: the chip name from ``sysctl``, counts from ``os`` and psutil."""
    found = cpu.collect_counts(ctx)
    brand = sysctl_values(ctx).get("machdep.cpu.brand_string")
    if brand:
        found[T.CPU] = " ".join(brand.split())
    return found
