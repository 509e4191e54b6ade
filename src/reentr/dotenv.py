"""`.env` files, read as foreman, honcho and python-dotenv read them, and Procfiles, as foreman
and honcho read them: pure parsing, every error one line that names the file and the line and
never a value (a `.env` holds secrets).

`.env`: `KEY=value` a line, `export KEY=value` too; blank lines and `#` comment lines skipped;
a value in single quotes is taken as written, one in double quotes expands `\\n`, `\\t`, `\\"`,
`\\\\` and `${NAME}`; an unquoted value is trimmed, ends at ` #`, and expands `${NAME}`. A
`${NAME}` is an earlier key of the file, else the environment reentr was given, else empty.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from reentr.errors import UsageError

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
_PROCESS = re.compile(r"([A-Za-z0-9_-]+)\s*:\s*(.*\S)\s*")


def parse_env(text: str, source: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of a `.env` file's `text`; `source` names it in errors.

    Raises:
        UsageError: a line that is not `KEY=value`, or a quote left open.
    """
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("export "):
            stripped = stripped[len("export "):].lstrip()
        key, equals, raw = stripped.partition("=")
        key = key.strip()
        if not equals or not _KEY.fullmatch(key):
            raise UsageError(f"{source}:{number}: not KEY=value; a .env line is KEY=value, "
                             "export KEY=value or a # comment")
        known = {**environ, **found}
        found[key] = _value(raw.strip(), known, f"{source}:{number}", key)
    return found


def _value(raw: str, known: Mapping[str, str], where: str, key: str) -> str:
    if raw[:1] in ("'", '"'):
        quote = raw[0]
        end = _closing(raw, quote)
        if end is None:
            raise UsageError(f"{where}: the value of {key} opens a {quote} quote and does not "
                             "close it")
        rest = raw[end + 1:].strip()
        if rest and not rest.startswith("#"):
            raise UsageError(f"{where}: the value of {key} goes on after its closing quote")
        inner = raw[1:end]
        if quote == "'":
            return inner
        return _expand(re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), inner),
                       known)
    value = raw.split(" #", 1)[0].rstrip()
    return _expand(value, known)


def _closing(raw: str, quote: str) -> int | None:
    """Where the quote that opens `raw` closes (a double quote may be escaped)."""
    i = 1
    while i < len(raw):
        if quote == '"' and raw[i] == "\\":
            i += 2
            continue
        if raw[i] == quote:
            return i
        i += 1
    return None


def _expand(value: str, known: Mapping[str, str]) -> str:
    return _REFERENCE.sub(lambda m: known.get(m.group(1), ""), value)


def expand(table: Mapping[str, str], known: Mapping[str, str]) -> dict[str, str]:
    """A service's `env` table with each `${NAME}` replaced by an earlier key of the table,
    else by `known` (the environment with the `.env` file's variables), else nothing."""
    found: dict[str, str] = {}
    for key, value in table.items():
        found[key] = _expand(value, {**known, **found})
    return found


def parse_procfile(text: str, source: str) -> list[tuple[str, str]]:
    """The processes of a Procfile's `text`, as (name, command) in its order.

    Raises:
        UsageError: a line that is not `name: command`, or a name given twice.
    """
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _PROCESS.fullmatch(line)
        if match is None:
            raise UsageError(f"{source}:{number}: not 'name: command'; a Procfile line is a "
                             "name (letters, digits, '_' and '-'), a colon and a command")
        name, command = match.groups()
        if name in found:
            raise UsageError(f"{source}:{number}: the process '{name}' is named twice")
        found[name] = command
    if not found:
        raise UsageError(f"{source}: no processes; add a line such as web: ./server")
    return list(found.items())
