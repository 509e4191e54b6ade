"""Shell completion: the scripts in `completions/`, the candidates for a signal name, and how
zsh and fish are given the candidates' descriptions.

The scripts are typer's thin shims: they ask `reentr` itself (with `_REENTR_COMPLETE` set) for
the candidates, so they never go stale as options change. typer's own zsh and fish answers
pass each description through rich's markup (which drops `[tool.reentr]` and `[co]`) and quote
it so that zsh loses every apostrophe; the classes here write them as the shells read them.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
from pathlib import Path

import typer

from reentr import configfile
from reentr.cli import compat
from reentr.config import signal_names
from reentr.errors import ReentrError

COMPLETION_FILES = {"bash": "reentr.bash", "zsh": "_reentr", "fish": "reentr.fish"}
"""The scripts in `completions/`, by shell: what `reentr --show-completion` prints there."""


def completion_script(shell: str) -> str:
    """The completion script for `shell`, from typer's completion machinery."""
    return compat.completion_script("reentr", "_REENTR_COMPLETE", shell)


def complete_signal(incomplete: str) -> list[str]:
    """Signal names in the form being typed, as `--signal` accepts them all: `SIGH` and `sigh`
    give SIGHUP and sighup, `HU` and `hu` give HUP and hup."""
    upper = incomplete.upper()
    names = signal_names()
    found = [name for name in names if name.startswith(upper)]
    if not "SIG".startswith(upper[:3]) or not upper:
        found += [name[3:] for name in names if name[3:].startswith(upper) and upper]
    lower = incomplete != upper and incomplete == incomplete.lower()
    return [name.lower() for name in found] if lower else found


def complete_program(ctx: typer.Context, incomplete: str) -> list[str]:
    """The program to run, where the word is a command's first: entr mode's first word that
    is not an option, or the word after `--` (watch, bench). The programs on PATH that begin
    with it; nothing elsewhere, or for a path (`./app`), so that the shell completes file
    names there."""
    before = words_before()
    first = before[-1:] == ["--"] or (
        ctx.command.name == compat.ENTR_MODE and not ctx.params.get("utility"))
    return programs(incomplete) if first else []


def programs(incomplete: str) -> list[str]:
    """The names of the executable files on PATH that begin with `incomplete`, sorted."""
    if os.sep in incomplete:
        return []
    found: set[str] = set()
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        with contextlib.suppress(OSError), os.scandir(folder or ".") as entries:
            found.update(entry.name for entry in entries if entry.name.startswith(incomplete)
                         and entry.name not in found and _runnable(entry))
    return sorted(found)


def _runnable(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file() and os.access(entry.path, os.X_OK)
    except OSError:
        return False


def words_before() -> list[str]:
    """The words of the line before the one being completed, as the scripts of `completions/`
    pass the line: bash in COMP_WORDS and COMP_CWORD, zsh and fish up to the cursor."""
    if "COMP_WORDS" in os.environ:
        words = _split(os.environ["COMP_WORDS"])
        with contextlib.suppress(ValueError):
            return words[:int(os.environ.get("COMP_CWORD", ""))]
        return words
    line = os.environ.get("_TYPER_COMPLETE_ARGS", "")
    words = _split(line)
    return words if not words or line.endswith(" ") else words[:-1]


def _split(line: str) -> list[str]:
    """The words of a line as a shell reads them, the last one even if its quote is open."""
    lexer = shlex.shlex(line, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    words: list[str] = []
    try:
        words.extend(lexer)
    except ValueError:  # an open quote: the word typed so far
        words.append(lexer.token)
    return words


def complete_service(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """The services of the configuration `reentr up` would run (the one `--config` names, if
    given), each with its command as its description, less those already on the line; none
    where there is no configuration or it is not valid."""
    path = ctx.params.get("config_file")
    try:
        found = configfile.given(path) if path else configfile.find_services(
            Path.cwd(), above=ctx.command.name == "restart")
        services = configfile.services(found)[1] if found is not None else []
    except ReentrError:
        return []
    named = set(ctx.params.get("names") or ())
    return [(service.name, _command_of(service)) for service in services
            if service.name.startswith(incomplete) and service.name not in named]


def _command_of(service: configfile.Service) -> str:
    command = service.options.table.get("command", "")
    if isinstance(command, list):  # a Procfile's line is one word, as written
        return str(command[0]) if len(command) == 1 else shlex.join(map(str, command))
    return str(command)


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def install_classes() -> None:
    """Answer zsh and fish with descriptions intact, install zsh's script with one line, and
    offer programs for entr mode's first word (call once the command is built: typer
    registers its own answers then)."""
    compat.answer_completion_with(zsh=_zsh_item, fish=_fish_item, install_zsh=_install_zsh)
    compat.Reentr.programs = staticmethod(programs)


def _zsh_item(value: str, help_text: str) -> str:
    # The answer is one single-quoted word for `eval`: an apostrophe closes it, so it is
    # written '\''; inside _arguments' ((value:description)) a colon in a value or a
    # description is escaped, and a double quote too.
    def quoted(text: str) -> str:
        text = _one_line(text).replace("\\", "\\\\").replace('"', '\\"')
        text = text.replace(":", "\\\\:").replace("$", "\\$").replace("`", "\\`")
        return text.replace("'", "'\\''")

    if help_text:
        return f'"{quoted(value)}":"{quoted(help_text)}"'
    return f'"{quoted(value)}"'


def _fish_item(value: str, help_text: str) -> str:
    return f"{value}\t{_one_line(help_text)}" if help_text else value


ZSH_LINE = ("(( $+functions[compdef] )) || { autoload -Uz compinit && compinit }; "
            "source ~/.zfunc/_reentr  # reentr's completion")
"""The one line `--install-completion` adds to ~/.zshrc: it loads zsh's completion system
unless the file has already done so, then reentr's script."""


def _install_zsh(*, prog_name: str, complete_var: str, shell: str) -> Path:
    script = Path.home() / ".zfunc" / "_reentr"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(completion_script("zsh"))
    rc = Path.home() / ".zshrc"
    text = rc.read_text() if rc.is_file() else ""
    if ZSH_LINE not in text:
        rc.write_text(text + ("\n" if text and not text.endswith("\n") else "") + ZSH_LINE + "\n")
    return script
