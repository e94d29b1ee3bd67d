"""Fast reads of several environment variables at once.

``os.environ.get`` encodes the key and goes through the ``Mapping`` machinery, about a
microsecond per variable; the warm path reads a few dozen (launcher ranks, GPU
visibility), so on POSIX the encoded keys are prepared once and looked up directly in the
mapping's own store, falling back to ``os.environ.get`` where that store is not a dict.
"""

from __future__ import annotations

import os
from collections.abc import Callable

Reader = Callable[[], tuple["str | None", ...]]


def reader(names: tuple[str, ...]) -> Reader:
    """A function returning the current values of ``names`` (``None`` where unset)."""
    if os.name != "posix":
        return lambda: tuple(map(os.environ.get, names))
    keys = tuple(os.fsencode(name) for name in names)

    def read() -> tuple[str | None, ...]:
        data = getattr(os.environ, "_data", None)
        if not isinstance(data, dict):
            return tuple(map(os.environ.get, names))
        get = data.get
        return tuple(None if (value := get(key)) is None else os.fsdecode(value) for key in keys)

    return read
