"""`@record` behaves as `@dataclass(frozen=True)` does, for everything reentr relies on, and
`evolve` as `dataclasses.replace`."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import pytest

from reentr.records import evolve, record


@record
class Point:
    x: int
    y: int = 0
    tags: tuple[str, ...] = dataclasses.field(default_factory=tuple)


@record
class Counted:
    n: int
    double: int = dataclasses.field(init=False, default=0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "double", 2 * self.n)


@dataclasses.dataclass(frozen=True)
class Reference:
    x: int
    y: int = 0
    tags: tuple[str, ...] = dataclasses.field(default_factory=tuple)


def test_construction_equality_hash_and_repr_are_those_of_a_frozen_dataclass() -> None:
    made = [Point(1), Point(1, 2), Point(x=1, y=2, tags=("a",)), Point(1, tags=())]
    references = [Reference(1), Reference(1, 2), Reference(x=1, y=2, tags=("a",)),
                  Reference(1, tags=())]
    for point, reference in zip(made, references, strict=True):
        assert dataclasses.astuple(point) == dataclasses.astuple(reference)
        assert repr(point) == repr(reference).replace("Reference", "Point")
    assert Point(1, 2) == Point(1, 2) and hash(Point(1, 2)) == hash(Point(1, 2))
    assert Point(1, 2) != Point(2, 1)
    assert Point(1) != Reference(1)  # type: ignore[comparison-overlap]  # another class is never equal, as with dataclasses
    assert len({Point(1), Point(1), Point(2)}) == 2
    assert Point(1).tags is not Point(2).tags or Point(1).tags == ()


def test_an_instance_cannot_be_changed() -> None:
    point = Point(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del point.x


def test_missing_and_unknown_arguments_are_refused_as_by_dataclasses() -> None:
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Point(1, z=3)  # type: ignore[call-arg]


def test_post_init_and_fields_outside_init() -> None:
    assert Counted(3).double == 6
    with pytest.raises(TypeError):
        Counted(3, 4)  # type: ignore[call-arg]


def test_fields_replace_and_matching_work_as_on_any_dataclass() -> None:
    assert [f.name for f in dataclasses.fields(Point)] == ["x", "y", "tags"]
    assert dataclasses.replace(Point(1, 2), y=5) == Point(1, 5)
    match Point(1, 2):
        case Point(x, y):
            assert (x, y) == (1, 2)
        case _:
            pytest.fail("no match")


def test_evolve_is_replace() -> None:
    point = Point(1, 2, ("a",))
    assert evolve(point, y=7) == dataclasses.replace(point, y=7) == Point(1, 7, ("a",))
    assert evolve(point) == point and evolve(point) is not point
    assert point == Point(1, 2, ("a",))  # unchanged
    with pytest.raises(TypeError):
        evolve(point, z=1)


@record
class Base:
    a: int
    b: str = "b"
    LIMIT: ClassVar[int] = 3


@record
class Derived(Base):
    c: tuple[int, ...] = dataclasses.field(default_factory=tuple)
    b: str = "again"  # redefined: keeps its place, takes the new default
    d: int = dataclasses.field(init=False, default=4)


@dataclasses.dataclass(frozen=True)
class BaseReference:
    a: int
    b: str = "b"
    LIMIT: ClassVar[int] = 3


@dataclasses.dataclass(frozen=True)
class DerivedReference(BaseReference):
    c: tuple[int, ...] = dataclasses.field(default_factory=tuple)
    b: str = "again"
    d: int = dataclasses.field(init=False, default=4)


def _shape(cls: type) -> list[tuple[object, ...]]:
    return [(f.name, f.type, f.default, f.default_factory, f.init, f.repr, f.compare,
             f.kw_only, hasattr(cls, f.name), getattr(cls, f.name, None))
            for f in dataclasses.fields(cls)]


def test_fields_are_found_as_dataclasses_finds_them() -> None:
    """Bases first, a redefined field in its first place, a class variable left out, a
    factory's default not left on the class: field for field what `dataclasses` records."""
    assert _shape(Base) == _shape(BaseReference)
    assert _shape(Derived) == _shape(DerivedReference)
    assert Derived.__match_args__ == DerivedReference.__match_args__ == ("a", "b", "c")
    assert Derived.LIMIT == 3 and "LIMIT" not in Derived.__dataclass_fields__
    made, reference = Derived(1), DerivedReference(1)
    assert dataclasses.astuple(made) == dataclasses.astuple(reference) == (1, "again", (), 4)
    assert repr(made) == repr(reference).replace("DerivedReference", "Derived")
    match Derived(1, "x", (2,)):
        case Derived(a, b, c):
            assert (a, b, c) == (1, "x", (2,))
        case _:
            pytest.fail("no match")
