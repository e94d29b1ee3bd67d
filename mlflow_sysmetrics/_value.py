"""Values: the records facts are held in, and how a fact is written as a tag's text.

**Records** are small value classes whose every field is declared once, as an annotated class
attribute.

::

    class Device(Record):
        vendor: str
        name: str
        memory_bytes: int | None = None

is all a record needs: the constructor (positional or keyword, defaults applied), equality,
hashing, ``repr``, ``_asdict`` and ``_replace`` follow from the annotations, and type
checkers see the same constructor (``dataclass_transform``). A field added is one line.

Plain classes rather than ``NamedTuple`` or dataclasses: building a named tuple's class
imports ``typing`` and costs a good part of a millisecond, a dataclass more (it compiles
code for each class), and the first collection of a process would pay for every one of
them; this base reads the annotations' names once per class, in microseconds.

**A fact's text**: numbers as plain decimals (:func:`decimal`), bytes as decimal gigabytes
(:func:`gb`), CUDA's encoded versions (:func:`cuda_version`); a value no true fact can be
(:func:`implausible`), and one cut to what MLflow stores (:func:`clip`).
"""

from __future__ import annotations

import math

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from typing import Any, ClassVar

    from typing_extensions import Self, dataclass_transform
else:

    def dataclass_transform(**_: object) -> object:
        """At run time a no-op: only type checkers read it."""
        return lambda cls: cls


@dataclass_transform(eq_default=True)
class Record:
    """Base of a record: its fields are its annotated class attributes, in order.

    A field with a class-level value has that default; the others must be given.
    Subclasses add fields after their base's.
    """

    _fields: ClassVar[tuple[str, ...]] = ()
    _defaults: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # inspect.get_annotations would import inspect (milliseconds) for a dict lookup
        annotations = cls.__dict__.get("__annotations__")  # noqa: RUF063
        if annotations is None:  # Python 3.14 computes them on first access
            annotations = getattr(cls, "__annotations__", {})
        own = [name for name in annotations if not name.startswith("_")]
        namespace = cls.__dict__
        cls._fields = (*cls._fields, *(name for name in own if name not in cls._fields))
        cls._defaults = {**cls._defaults, **{name: namespace[name] for name in own if name in namespace}}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # dict updates rather than one setattr per field: records are built on warm paths too
        fields = self._fields
        if len(args) > len(fields):
            raise TypeError(f"{type(self).__name__} takes at most {len(fields)} positional arguments")
        values = self.__dict__
        values.update(self._defaults)
        values.update(zip(fields, args, strict=False))  # fewer arguments than fields: the rest by name
        if kwargs:
            for key in kwargs:
                if key not in self._defaults and key not in fields:
                    raise TypeError(f"{type(self).__name__} has no field {key!r}")
                if key in fields[: len(args)]:
                    raise TypeError(f"{type(self).__name__} got {key!r} twice")
            values.update(kwargs)
        if len(values) < len(fields):
            missing = [field for field in fields if field not in values]
            raise TypeError(f"{type(self).__name__} needs {', '.join(map(repr, missing))}")

    def _values(self) -> tuple[Any, ...]:
        return tuple([getattr(self, field) for field in self._fields])

    def _asdict(self) -> dict[str, Any]:
        """The fields by name (as a named tuple's ``_asdict``)."""
        return {field: getattr(self, field) for field in self._fields}

    def _replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied (as a named tuple's ``_replace``)."""
        values = self._asdict()
        for key in changes:
            if key not in values:
                raise TypeError(f"{type(self).__name__} has no field {key!r}")
        values.update(changes)
        return type(self)(**values)

    def _filled_from(self, other: Self) -> Self:
        """A copy whose fields left at their default are taken from ``other``.

        How two sources of one record merge (NVML's or the driver's files' GPU, filled in
        from ``nvidia-smi``): a field added to the record is merged too, never dropped.
        """
        defaults = self._defaults
        changes = {
            field: getattr(other, field)
            for field in self._fields
            if field in defaults and getattr(self, field) == defaults[field]
        }
        return self._replace(**changes) if changes else self

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{field}={value!r}" for field, value in self._asdict().items())
        return f"{type(self).__name__}({shown})"


#: MLflow refuses tag values longer than this (``MAX_TAG_VAL_LENGTH``).
MAX_VALUE_LENGTH = 8000
#: Longest a name of one thing can truly be: an x86 brand string is 48 characters (CPUID
#: leaves 0x80000002-4), NVML's device name fits 96 bytes, os-release names a few dozen.
MAX_NAME_LENGTH = 128
#: Longest any other value can truly be (a list of several GPU models included).
MAX_FACT_LENGTH = 1024
#: Compiled on first use (by ``re``'s own cache): most values are printable and never need it.
_CONTROL = "[\x00-\x1f\x7f-\x9f]"


def gb(num_bytes: float) -> str:
    """Bytes as decimal gigabytes (10^9) with at most two decimals: ``85520809984`` -> ``85.52``."""
    return str(round(num_bytes / 1e9, 2))


def cuda_version(encoded: int) -> str:
    """CUDA's encoded version as text: ``13000`` -> ``13.0``, ``12040`` -> ``12.4`` (major*1000 + minor*10).

    NVML's driver version and the frameworks' build numbers use the same encoding.
    """
    return f"{encoded // 1000}.{(encoded % 1000) // 10}"


def decimal(value: float) -> str:
    """A number as a plain decimal: ``2.0`` -> ``2``, ``1.5`` -> ``1.5``, ``1/3`` -> ``0.33``.

    Below 0.01, two significant digits (``0.004``), never a misleading ``0``.
    """
    if 0 < abs(value) < 0.005:
        places = 1 - math.floor(math.log10(abs(value)))
        return f"{value:.{places}f}".rstrip("0")
    rounded = round(value, 2)
    if rounded == int(rounded):
        return str(int(rounded))
    return f"{rounded:.2f}".rstrip("0")


def implausible(value: str, limit: int = MAX_NAME_LENGTH) -> str | None:
    """Why ``value`` cannot be a true fact (control characters, absurd length), or ``None``."""
    if not value.isprintable() and _has_control_characters(value):
        return "it holds control characters"
    if len(value) > limit:
        return f"it is {len(value)} characters long"
    return None


def _has_control_characters(value: str) -> bool:
    import re

    return re.search(_CONTROL, value) is not None


def clip(value: str, limit: int = MAX_VALUE_LENGTH) -> str:
    """``value`` cut to ``limit`` characters, ending in an ellipsis when it was cut."""
    if len(value) <= limit:
        return value
    return value[: limit - 1] + "\u2026"
