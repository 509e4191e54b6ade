"""reentr's configuration file: `reentr.toml`, or `[tool.reentr]` in a `pyproject.toml`, the
nearest one from the working directory up; its keys are the long names of the command line's
options, whose values it supplies as defaults that the command line overrides."""

from __future__ import annotations

import difflib
import os
import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reentr.config import parse_duration, parse_signal, parse_socket
from reentr.dotenv import parse_env, parse_procfile
from reentr.errors import UsageError
from reentr.records import record

NAMES = ("reentr.toml", "pyproject.toml")
"""Looked for in this order in each directory, from the working directory up."""


class Kind:
    """What a key's value must be, as the option it stands for takes it."""

    FLAG = "true or false"
    COUNT = "a whole number"
    TEXT = "a string or a number"
    LIST = "a list of strings (or numbers)"
    COMMAND = "a command: a string, or a list of strings"


@record
class Found:
    path: Path
    table: Mapping[str, Any]
    """`[tool.reentr]` of a pyproject.toml, or the whole of a reentr.toml (or one of their
    `services` tables)."""
    section: str = ""
    """The table's name, when it is not the whole file: `services.api`."""

    @property
    def where(self) -> str:
        section = self.section
        if self.path.name == "pyproject.toml":
            section = f"tool.reentr.{section}" if section else "tool.reentr"
        return f"{self.path} [{section}]" if section else str(self.path)


SERVICES = "services"
"""The key of `reentr up`'s tables of services; the other commands skip it."""
SERVICE_KEYS = ("depends-on", "cwd", "env", "env-file")
"""The keys of a service's table that are not options of `reentr watch`."""
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@record
class Service:
    """One `[services.NAME]` table of `reentr up`."""

    name: str
    options: Found
    """Its own keys that are `reentr watch`'s options (the top level's come first)."""
    depends_on: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str]
    """Its `env` table (the top level's first), as written: `${NAME}` is expanded at each start
    (`dotenv.expand`)."""
    env_file: Path | None = None
    """The `.env` file read into its environment, read again at each start (checked here)."""


def services(found: Found) -> tuple[Found, list[Service]]:
    """The top level's options (defaults for every service) and the services, each after
    those it depends on, otherwise in the file's order.

    Raises:
        UsageError: one line naming the file, the table and what is wrong.
    """
    for key, value in found.table.items():
        if isinstance(value, dict) and key not in (SERVICES, "env"):
            # No option takes a table (but env): a misspelt [services.NAME], most likely,
            # which would otherwise be skipped, and named by what it then leaves out.
            table = f"tool.reentr.{key}" if found.path.name == "pyproject.toml" else key
            raise UsageError(f"{found.where}: unknown table [{table}]; a service is a "
                             f"[{_section(found, 'NAME')}] table")
    tables = found.table.get(SERVICES)
    if not isinstance(tables, dict) or not tables:
        raise UsageError(f"{found.where}: no services; add a table for each, such as "
                         f"[{_section(found, 'api')}] with command = \"./api\"")
    top = {k: v for k, v in found.table.items() if k not in (SERVICES, *SERVICE_KEYS)}
    if "depends-on" in found.table:
        raise UsageError(f"{found.where}: depends-on belongs in a service's table, such as "
                         f"[{_section(found, 'api')}]")
    base_file = _env_file(found, found.table.get("env-file"), found.path.parent)
    base_env = _env(found, found.table.get("env", {}))
    base_cwd = _cwd(found, found.table.get("cwd", "."))
    listed: list[Service] = []
    for name, table in tables.items():
        section = f"{SERVICES}.{name}"
        where = Found(found.path, {}, section).where
        if not _NAME.fullmatch(name):
            raise UsageError(f"{where}: a service's name is letters, digits, '-', '_' and '.'")
        if not isinstance(table, dict):
            raise UsageError(f"{where}: must be a table of options, such as command = ...")
        own = Found(found.path, table, section)
        depends = table.get("depends-on", [])
        if isinstance(depends, str):
            depends = [depends]
        if not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
            raise UsageError(f"{where}: depends-on must be a list of service names")
        for other in depends:
            if other not in tables:
                raise UsageError(f"{where}: depends-on names '{other}', which is not a "
                                 f"service; the services are: {', '.join(tables)}")
        cwd = _cwd(own, table["cwd"]) if "cwd" in table else base_cwd
        env_file = _env_file(own, table["env-file"], cwd) if "env-file" in table else base_file
        env = {**base_env, **_env(own, table.get("env", {}))}
        options = {k: v for k, v in table.items() if k not in SERVICE_KEYS}
        listed.append(Service(name, Found(found.path, options, section),
                              tuple(dict.fromkeys(depends)), cwd, env, env_file))
    return Found(found.path, top), _ordered(found, listed)


def _section(found: Found, name: str) -> str:
    return f"tool.reentr.services.{name}" if found.path.name == "pyproject.toml" else (
        f"services.{name}")


def _cwd(found: Found, value: Any) -> Path:
    if not isinstance(value, str):
        raise UsageError(f"{found.where}: cwd must be a string (a directory, relative to "
                         f"{found.path.name}), not {_describe(value)}")
    path = (found.path.parent / value).resolve()
    if not path.is_dir():
        raise UsageError(f"{found.where}: cwd '{value}' is not a directory")
    return path


ENV_FILE = ".env"
"""Read beside the configuration file into every service's environment, as foreman, honcho
and overmind read it, unless `env-file` names another or is false."""


def _env_file(found: Found, value: Any, base: Path) -> Path | None:
    """The `.env` file that `env-file` (None: not given; a path is relative to `base`) names,
    checked as it is now; None for none."""
    if value is False:
        return None
    if value is not None and not isinstance(value, str):
        raise UsageError(f"{found.where}: env-file must be a file's path or false, not "
                         f"{_describe(value)}")
    path = (found.path.parent / ENV_FILE) if value is None else (base / value)
    if value is None and not path.exists():
        return None
    read_env(path, found.where)
    return path


def read_env(path: Path, where: str = "") -> dict[str, str]:
    """The variables of the `.env` file at `path` (expanded against reentr's environment).

    Raises:
        UsageError: it is not there or cannot be read, or a line of it is wrong (named by its
            number, never by its value).
    """
    prefix = f"{where}: " if where else ""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UsageError(f"{prefix}the env-file {path} is not there; give an existing file, "
                         "or env-file = false") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{prefix}cannot read the env-file {path}: "
                         f"{getattr(error, 'strerror', None) or error}") from None
    return parse_env(text, str(path), os.environ)


def procfile(path: Path) -> Found:
    """A Procfile as a configuration: a service per process, run by the shell as written,
    restarted on a change anywhere in its directory's tree, with `PORT` set as foreman and
    honcho set it (the environment's or the `.env`'s PORT, else 5000, then 100 more for each
    next process).

    Raises:
        UsageError: a line that is not `name: command`.
    """
    processes = parse_procfile(path.read_text(), str(path))
    dotenv = path.parent / ENV_FILE
    known = {**os.environ, **(read_env(dotenv) if dotenv.exists() else {})}
    try:
        base = int(known.get("PORT", "5000"))
    except ValueError:
        base = 5000
    tables = {name: {"command": [command], "shell": True,
                     "env": {"PORT": str(base + 100 * number)}}
              for number, (name, command) in enumerate(processes)}
    return Found(path, {SERVICES: tables})


def _env(found: Found, value: Any) -> dict[str, str]:
    ok = isinstance(value, dict) and all(
        isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value.values())
    if not ok:
        raise UsageError(f"{found.where}: env must be a table of strings, such as "
                         "env = { PORT = \"8001\" }")
    return {str(k): str(v) for k, v in value.items()}


def _ordered(found: Found, listed: list[Service]) -> list[Service]:
    """Each service after those it depends on, otherwise in the file's order.

    Raises:
        UsageError: the dependencies make a cycle.
    """
    by_name = {service.name: service for service in listed}
    done: dict[str, Service] = {}
    visiting: list[str] = []

    def visit(service: Service) -> None:
        if service.name in done:
            return
        if service.name in visiting:
            cycle = [*visiting[visiting.index(service.name):], service.name]
            raise UsageError(f"{found.where}: the services depend on each other in a cycle: "
                             f"{' -> '.join(cycle)}; remove one of those depends-on")
        visiting.append(service.name)
        for other in service.depends_on:
            visit(by_name[other])
        visiting.pop()
        done[service.name] = service

    for service in listed:
        visit(service)
    return list(done.values())


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


PROCFILE = "Procfile"


def find_services(start: Path, *, above: bool = False) -> Found | None:
    """What `reentr up` runs from `start`: the nearest configuration (`find`), else the
    Procfile in `start`, or with `above` (`reentr restart`, which works from anywhere in the
    project) the nearest one at or above it.

    Raises:
        UsageError: the file found cannot be read or parsed.
    """
    found = find(start)
    if found is not None:
        return found
    for directory in (start, *start.parents) if above else (start,):
        if (directory / PROCFILE).is_file():
            return procfile(directory / PROCFILE)
    return None


def given(path: str) -> Found:
    """The configuration `--config PATH` names.

    Raises:
        UsageError: it cannot be read, is not TOML, or is a pyproject.toml without
            `[tool.reentr]`.
    """
    found = load(Path(path))
    if found is None:
        raise UsageError(f"--config: {path} has no [tool.reentr] table")
    return found


def load(path: Path) -> Found | None:
    """Read `path`; None for a pyproject.toml without `[tool.reentr]`.

    Raises:
        UsageError: the file cannot be read, or is not TOML.
    """
    if sys.version_info >= (3, 11):  # here, not at the top: most starts find no file
        import tomllib
    else:  # pragma: no cover (Python 3.10)
        import tomli as tomllib
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
            if key in known or key == SERVICES or (
                    key in SERVICE_KEYS and SERVICES in found.table):
                continue
            keys = sorted({*known, *SERVICE_KEYS, SERVICES})
            dashed = key.replace("_", "-")  # depends_on, as docker compose spells it
            close = [dashed] if dashed in keys else difflib.get_close_matches(key, keys, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise UsageError(f"{found.where}: unknown key '{key}'{hint} (the keys are the "
                             "long names of reentr's options, as reentr --help lists them, "
                             f"and in a service's table {', '.join(SERVICE_KEYS)})")
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
