"""Fast reads of several environment variables at once.

``os.environ.get`` encodes the key and goes through the ``Mapping`` machinery for each
variable, and a warm call reads 29 of them (settings, launcher ranks, GPU visibility,
container markers). On POSIX the encoded keys are prepared once and looked up directly in
CPython's store behind ``os.environ`` (``_data``, not a public name), falling back to the
public ``os.environ.get`` wherever that store is not a dict of bytes (another Python, a
patched ``os.environ``): slower, never wrong. ``python benchmarks/env_read.py`` compares the
two ways.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Callable

    Reader = Callable[[], tuple["str | None", ...]]


def reader(names: tuple[str, ...]) -> Reader:
    """A function returning the current values of ``names`` (``None`` where unset)."""
    if os.name != "posix":
        return lambda: tuple(map(os.environ.get, names))
    keys = tuple(os.fsencode(name) for name in names)
    encoding, errors = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()

    def read() -> tuple[str | None, ...]:
        data = getattr(os.environ, "_data", None)
        if not isinstance(data, dict):
            return tuple(map(os.environ.get, names))
        values = map(data.get, keys)
        return tuple([None if value is None else value.decode(encoding, errors) for value in values])

    return read
