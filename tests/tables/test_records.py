"""`@record` behaves as `@dataclass(frozen=True)` does, for everything reentr relies on, and
`evolve` as `dataclasses.replace`."""

from __future__ import annotations

import dataclasses

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
