"""Small value objects: equal (and hashing alike) when every field is, copied with ``_replace``.

Plain classes with ``__slots__`` rather than ``NamedTuple`` or dataclasses: building a named
tuple's class imports ``typing`` and costs a good part of a millisecond each at import, a
dataclass more, and the first collection of a process would pay for every one of them.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from typing import Any

    from typing_extensions import Self


class Value:
    """Base of a value class: its fields are the names in its ``__slots__``."""

    __slots__ = ()

    def _names(self) -> tuple[str, ...]:
        names: tuple[str, ...] = self.__slots__
        return names

    def _fields(self) -> tuple[Any, ...]:
        return tuple([getattr(self, name) for name in self._names()])

    def _asdict(self) -> dict[str, Any]:
        """The fields by name (as a named tuple's ``_asdict``)."""
        return {name: getattr(self, name) for name in self._names()}

    def _replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied (as a named tuple's ``_replace``)."""
        unknown = set(changes) - set(self._names())
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {sorted(unknown)[0]!r}")
        values = self._asdict()
        values.update(changes)
        return type(self)(**values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Value) and type(other) is type(self) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in self._asdict().items())
        return f"{type(self).__name__}({shown})"
