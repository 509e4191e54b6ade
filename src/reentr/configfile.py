"""reentr's configuration file: `reentr.toml`, or `[tool.reentr]` in a `pyproject.toml`, the
nearest one from the working directory up; its keys are the long names of the command line's
options, whose values it supplies as defaults that the command line overrides."""

from __future__ import annotations

import difflib
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover (Python 3.10)
    import tomli as tomllib

from reentr.config import parse_duration, parse_signal, parse_socket
from reentr.errors import UsageError

NAMES = ("reentr.toml", "pyproject.toml")
"""Looked for in this order in each directory, from the working directory up."""


class Kind:
    """What a key's value must be, as the option it stands for takes it."""

    FLAG = "true or false"
    COUNT = "a whole number"
    TEXT = "a string or a number"
    LIST = "a list of strings (or numbers)"
    COMMAND = "a command: a string, or a list of strings"


@dataclass(frozen=True)
class Found:
    path: Path
    table: Mapping[str, Any]
    """`[tool.reentr]` of a pyproject.toml, or the whole of a reentr.toml."""

    @property
    def where(self) -> str:
        return f"{self.path} [tool.reentr]" if self.path.name == "pyproject.toml" else str(
            self.path)


def find(start: Path) -> Found | None:
    """The nearest configuration at or above `start`: a reentr.toml, or a pyproject.toml
    with a `[tool.reentr]` table (a pyproject.toml without one does not count)."""
    for directory in (start, *start.parents):
        for name in NAMES:
            path = directory / name
            if path.is_file():
                found = load(path)
                if found is not None:
                    return found
    return None


def load(path: Path) -> Found | None:
    """Read `path`; None for a pyproject.toml without `[tool.reentr]`.

    Raises:
        UsageError: the file cannot be read, or is not TOML.
    """
    try:
        with open(path, "rb") as stream:
            document = tomllib.load(stream)
    except OSError as error:
        raise UsageError(f"--config: cannot read {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{path}: not valid TOML: {error}") from None
    if path.name != "pyproject.toml":
        return Found(path, document)
    table = document.get("tool", {}).get("reentr")
    if table is None:
        return None
    if not isinstance(table, dict):
        raise UsageError(f"{path}: [tool.reentr] must be a table of options")
    return Found(path, table)


def defaults(
    found: Found, kinds: Mapping[str, tuple[str, str]], known: set[str]
) -> dict[str, Any]:
    """The file's values as option defaults, by parameter name, each checked against the
    kind of value its option takes. `kinds` maps this command's keys (`stop-timeout`) to
    (kind, parameter name); `known` holds every key of every command (a key of another
    command, such as `paths` in entr mode, is skipped here).

    Raises:
        UsageError: one line naming the file, the key, and what is expected.
    """
    values: dict[str, Any] = {}
    for key, value in found.table.items():
        kind, name = kinds.get(key, ("", ""))
        if not kind:
            if key in known:
                continue
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise UsageError(f"{found.where}: unknown key '{key}'{hint} (the keys are the "
                             "long names of reentr's options, as reentr --help lists them)")
        values[name] = _checked(found, key, value, kind)
    return values


def _checked(found: Found, key: str, value: Any, kind: str) -> Any:
    ok: bool
    if kind == Kind.FLAG:
        ok = isinstance(value, bool)
    elif kind == Kind.COUNT:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    elif kind == Kind.TEXT:
        # A port or a number of seconds reads naturally as a number: take it as written.
        ok = isinstance(value, (str, int, float)) and not isinstance(value, bool)
        value = str(value) if ok else value
    elif kind == Kind.LIST:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]
        ok = isinstance(value, list) and all(
            isinstance(item, (str, int, float)) and not isinstance(item, bool) for item in value)
        value = [str(item) for item in value] if ok else value
    else:
        if isinstance(value, str):
            value = shlex.split(value)
        ok = isinstance(value, list) and bool(value) and all(isinstance(x, str) for x in value)
    if not ok:
        raise UsageError(f"{found.where}: {key} must be {kind}, not {_describe(value)}")
    _parse(found, key, value)
    return value


_DURATIONS = frozenset(("stop-timeout", "ready-timeout", "debounce", "poll-interval",
                        "delay-run"))
_SIGNALS = frozenset(("stop-signal", "signal"))


def _parse(found: Found, key: str, value: Any) -> None:
    """The checks the command line makes of a value, named by the file and the key."""
    where = f"{found.where}: {key}"
    if key in _DURATIONS:
        parse_duration(value, where)
    elif key in _SIGNALS:
        parse_signal(value, where)
    elif key == "socket":
        for item in value:
            try:
                parse_socket(item)
            except UsageError as error:
                raise UsageError(f"{where}: {str(error).removeprefix('--socket: ')}") from None


def _describe(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string",
             list: "a list", dict: "a table"}
    return f"{names.get(type(value), type(value).__name__)} ({value!r})"
