"""reentr's immutable records (events, actions, states, configuration): `@record` makes a
frozen dataclass, and `evolve` is its `dataclasses.replace`, both at a fraction of the cost.

`@dataclass(frozen=True)` compiles six methods per class, one `exec` each: about 1 ms a class
on the project's machine, and reentr has some sixty, so they were a fifth of the time from
the command to the first watch. `@record` finds the fields from the class's annotations as
`dataclasses` does, and records them as `dataclasses` does (so `fields()`, `replace()` and
pattern matching work as with any dataclass), compiles only `__init__`, when the first
instance is made, and takes equality, hashing, `repr` and immutability from shared
functions: the same behaviour as `frozen=True` (equal when of the same class with equal
fields, `FrozenInstanceError` on assignment). A class it cannot read so (annotations that
are not strings, `InitVar`, `KW_ONLY`) has its fields found by `dataclasses` itself.
"""

from __future__ import annotations

import dataclasses
import inspect
import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:
    def dataclass_transform(**_: object) -> Callable[[_Class], _Class]:
        return lambda cls: cls

_Class = TypeVar("_Class", bound=type)
_Record = TypeVar("_Record")


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def record(cls: _Class) -> _Class:
    """`@dataclass(frozen=True)` for `cls`, with one method compiled instead of six."""
    if not _own_fields(cls):
        dataclasses.dataclass(init=False, repr=False, eq=False)(cls)  # the fields, in place
    fields = dataclasses.fields(cls)
    cls.__init__ = _first_init(cls, fields)  # type: ignore[misc]
    names = tuple(field.name for field in fields)
    key: Callable[[Any], Any] = operator.attrgetter(*names) if names else lambda _: ()

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return bool(key(self) == key(other))

    def __hash__(self: Any) -> int:
        return hash(key(self))

    def __repr__(self: Any) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{cls.__qualname__}({shown})"

    for method in (__eq__, __hash__, __repr__):
        method.__qualname__ = f"{cls.__qualname__}.{method.__name__}"
        setattr(cls, method.__name__, method)
    cls.__setattr__ = _frozen_setattr  # type: ignore[assignment]
    cls.__delattr__ = _frozen_delattr  # type: ignore[assignment]
    return cls


@dataclasses.dataclass
class _Probe:
    field: int


_FIELD = dataclasses.fields(_Probe)[0]._field_type  # type: ignore[attr-defined]
"""What `dataclasses` marks a field with (`fields()` returns those so marked)."""


def _own_fields(cls: type) -> bool:
    """Record the fields of `cls` as `dataclasses` would (`__dataclass_fields__`, the class's
    defaults, `__match_args__`), without its work per class (0.16 ms of the start, each):
    the fields of its bases first, in their order, then its own annotations, which
    `from __future__ import annotations` keeps as text. False, having changed nothing, for a
    class whose annotations are not all such text, or name what `dataclasses` treats apart
    (`InitVar`, `KW_ONLY`)."""
    annotations = inspect.get_annotations(cls)
    if not all(
            isinstance(text, str) and "InitVar" not in text and "KW_ONLY" not in text
            for text in annotations.values()):
        return False
    found: dict[str, dataclasses.Field[Any]] = {}
    for base in cls.__mro__[-1:0:-1]:
        found.update(getattr(base, "__dataclass_fields__", {}))
    defaults: dict[str, Any] = {}
    for name, text in annotations.items():
        if text.startswith(("ClassVar", "typing.ClassVar")):
            continue
        given = cls.__dict__.get(name, dataclasses.MISSING)
        made: Any = given if isinstance(given, dataclasses.Field) \
            else dataclasses.field(default=given)
        made.name, made.type = name, text
        made._field_type = _FIELD
        if made.kw_only is dataclasses.MISSING:
            made.kw_only = False
        found[name] = made
        if isinstance(given, dataclasses.Field):
            defaults[name] = made.default
    for name, default in defaults.items():
        if default is dataclasses.MISSING:
            delattr(cls, name)
        else:
            setattr(cls, name, default)
    target: Any = cls
    target.__dataclass_fields__ = found
    if "__match_args__" not in cls.__dict__:
        target.__match_args__ = tuple(  # type: ignore[misc]
            name for name, made in found.items() if made.init)
    return True


def _first_init(cls: type, fields: tuple[dataclasses.Field[Any], ...]) -> Callable[..., None]:
    """An `__init__` that compiles the real one at the class's first instance, and puts it in
    its place: most classes are not made before reentr watches, and some never are."""

    owner: Any = cls

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if owner.__init__ is __init__:
            owner.__init__ = _init(cls, fields)
        owner.__init__(self, *args, **kwargs)

    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    return __init__


def _init(cls: type, fields: tuple[dataclasses.Field[Any], ...]) -> Callable[..., None]:
    """The `__init__` that `dataclasses` would write for a frozen class, compiled once."""
    scope: dict[str, Any] = {"_set": object.__setattr__, "_MISSING": dataclasses.MISSING}
    params, body = [], []
    for field in fields:
        name = field.name
        if field.default is not dataclasses.MISSING:
            scope[f"_default_{name}"] = field.default
            value = f"_default_{name}"
        elif field.default_factory is not dataclasses.MISSING:
            scope[f"_factory_{name}"] = field.default_factory
            value = f"_factory_{name}()"
        else:
            value = ""
        if not field.init:
            body.append(f"_set(self, {name!r}, {value})")
            continue
        if field.default_factory is not dataclasses.MISSING:
            params.append(f"{name}=_MISSING")
            body.append(f"_set(self, {name!r}, {value} if {name} is _MISSING else {name})")
        else:
            params.append(f"{name}={value}" if value else name)
            body.append(f"_set(self, {name!r}, {name})")
    if hasattr(cls, "__post_init__"):
        body.append("self.__post_init__()")
    source = (f"def __init__(self, {', '.join(params)}):\n    "
              + "\n    ".join(body or ["pass"]) + "\n")
    exec(source, scope)
    init: Callable[..., None] = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _frozen_setattr(self: object, name: str, value: object) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: object, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


def evolve(obj: _Record, **changes: Any) -> _Record:
    """A copy of a record with `changes`: `dataclasses.replace` without calling `__init__`.
    The policy's states are rebuilt a dozen times per event, and on the path from a change to
    its start `replace` cost 0.2 ms of them (11 us a call, this 1)."""
    fields = obj.__dataclass_fields__  # type: ignore[attr-defined]
    unknown = changes.keys() - fields.keys()
    if unknown:
        raise TypeError(f"{type(obj).__name__} has no field {', '.join(sorted(unknown))}")
    copy = object.__new__(type(obj))
    copy.__dict__.update(obj.__dict__)
    copy.__dict__.update(changes)
    return copy
