"""Record: a value class whose fields are its annotated class attributes, declared once."""

from __future__ import annotations

import pytest

from mlflow_sysmetrics._value import Record


class Card(Record):
    """A record as the package writes them: required fields, then fields with defaults."""

    vendor: str
    name: str
    memory_bytes: int | None = None
    links: tuple[int, ...] = ()
    _cache: dict[str, str]  # private: not a field


class Board(Card):
    """A subclass: its own fields come after its base's."""

    slot: str = "?"


def test_fields_are_the_annotations_in_order_without_private_names() -> None:
    """The fields, their order and defaults come from the annotations; a subclass appends its own."""
    assert Card._fields == ("vendor", "name", "memory_bytes", "links")
    assert Board._fields == ("vendor", "name", "memory_bytes", "links", "slot")
    assert Board._defaults == {"memory_bytes": None, "links": (), "slot": "?"}


def test_built_by_position_or_by_name_with_defaults_applied() -> None:
    """Positional and keyword arguments fill the same fields; the rest take their defaults."""
    by_position = Card("nvidia", "H100", 85520809984)
    by_name = Card(name="H100", vendor="nvidia", memory_bytes=85520809984)
    assert by_position == by_name
    assert (
        by_position.vendor,
        by_position.name,
        by_position.memory_bytes,
        by_position.links,
    ) == ("nvidia", "H100", 85520809984, ())
    assert (Board("amd", "MI300X").slot, Board("amd", "MI300X", slot="3").slot) == ("?", "3")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Card("nvidia"), "Card needs 'name'"),
        (Card, "Card needs 'vendor', 'name'"),
        (lambda: Card("a", "b", 1, (), "extra"), "Card takes at most 4 positional arguments"),
        (lambda: Card("a", "b", colour="red"), "Card has no field 'colour'"),
        (lambda: Card("a", "b", vendor="c"), "Card got 'vendor' twice"),
    ],
    ids=["a field missing", "all missing", "too many", "unknown name", "given twice"],
)
def test_a_wrong_call_says_what_is_wrong(build: object, message: str) -> None:
    """Missing, extra, unknown or doubled arguments raise TypeError naming the record and the field."""
    with pytest.raises(TypeError) as raised:
        build()  # type: ignore[operator]
    assert message == str(raised.value)


def test_equality_and_hash_follow_type_and_values() -> None:
    """Equal values of one type are equal and hash alike; another type with the same values is not equal."""
    one, same, other = Card("nvidia", "H100"), Card("nvidia", "H100"), Card("nvidia", "A100")
    assert one == same
    assert hash(one) == hash(same)
    assert one != other
    assert len({one, same}) == 1
    assert Card("amd", "MI300X") != Board("amd", "MI300X")  # a Board has one field more
    assert Card("amd", "MI300X") != ("amd", "MI300X", None, ())  # not a tuple


def test_repr_names_every_field() -> None:
    """``repr`` is the class and each field by name, as a named tuple's."""
    assert (
        repr(Card("amd", "MI300X", links=(5, 16)))
        == "Card(vendor='amd', name='MI300X', memory_bytes=None, links=(5, 16))"
    )


def test_asdict_and_replace() -> None:
    """``_asdict`` gives the fields by name; ``_replace`` a changed copy, refusing a name that is no field."""
    card = Card("nvidia", "H100")
    assert card._asdict() == {"vendor": "nvidia", "name": "H100", "memory_bytes": None, "links": ()}
    bigger = card._replace(memory_bytes=1)
    assert (card.memory_bytes, bigger.memory_bytes) == (None, 1)
    assert Card is type(bigger)
    with pytest.raises(TypeError, match="Card has no field 'size'"):
        card._replace(size=1)


def test_filled_from_takes_only_the_fields_left_at_their_default() -> None:
    """Two sources merged: a field still at its default comes from the other; a known value and a required one stay."""
    from_nvml = Card("nvidia", "NVIDIA H100 80GB HBM3", links=(5, 16))
    from_smi = Card("nvidia-smi", "H100", memory_bytes=85520809984, links=(4, 16))
    assert Card("nvidia", "NVIDIA H100 80GB HBM3", 85520809984, (5, 16)) == from_nvml._filled_from(from_smi)
    complete = Card("nvidia", "H100", 1, (5, 16))
    assert complete._filled_from(from_smi) is complete  # nothing to fill: the same record
