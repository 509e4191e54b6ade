"""The entry point: runs the command line and maps errors to exit statuses. It is the only
module that exits."""

from __future__ import annotations

import difflib
import os
import signal
import sys
from typing import Any, NoReturn

import typer

from reentr import signals
from reentr.cli.commands import app
from reentr.cli.compat import (
    COMPLETION_OPTIONS,
    ENTR_MODE,
    SUBCOMMANDS,
    ClickUsageError,
    Reentr,
    taking_values,
)
from reentr.cli.completion import install_classes
from reentr.errors import ExitStatus, ReentrError
from reentr.report import PREFIX


def main(argv: list[str] | None = None) -> NoReturn:
    """The `reentr` console script: run, then exit with the documented status."""
    args = sys.argv[1:] if argv is None else argv
    obj = None
    command = _command_for(args)
    if args and args[0] == "watch":
        own, obj = _split_watch_args(args[1:], taking_values(command, "watch"))
        args = ["watch", *own]
    install_classes()
    try:
        # Without standalone mode, --help, --version and typer.Exit come back as a status.
        status = command.main(args=args, prog_name="reentr", standalone_mode=False, obj=obj)
    except ClickUsageError as error:
        # click's default is three lines and status 2; entr's contract is one line and 1.
        ctx = getattr(error, "ctx", None)
        where = "reentr" if ctx is None or ctx.command.name == ENTR_MODE else ctx.command_path
        sys.stderr.write(f"{PREFIX}{_one_line(error)} (see {where} --help)\n")
        status = ExitStatus.ERROR
    except typer.Abort:
        status = ExitStatus.OK
    except ReentrError as error:
        sys.stderr.write(f"{PREFIX}{error}\n")
        status = error.status
    if status == ExitStatus.INTERRUPTED:
        signals.die_by(signal.SIGINT)  # no return: SIGINT's default action ends reentr
    sys.exit(int(status or 0))


_READS = {"up": ("watch",)}
"""The other commands whose options a command reads (`up` reads each service's as `watch`
would)."""


def _command_for(args: list[str]) -> Any:
    """The click command for `args`. typer reads the signature of every command it builds,
    17 ms of each start for reentr's six; a run needs only the one its first word names
    (`Reentr.parse_args`: a subcommand, or else entr mode), so only that one is built. The
    whole group is, for no words, the completion options, and a shell's completion."""
    if not args or args[0].split("=", 1)[0] in COMPLETION_OPTIONS \
            or "_REENTR_COMPLETE" in os.environ:
        _import_up()
        return typer.main.get_command(app)  # with the completion options, which it sets up
    name = args[0] if args[0] in SUBCOMMANDS else ENTR_MODE
    if name in _IN_UP:
        _import_up()
    every = app.registered_commands
    names = {name, *_READS.get(name, ())}
    app.registered_commands = [info for info in every if info.name in names]
    try:
        # A group, as `get_command` makes of several commands (of one it would make that
        # command alone, and the first word would be no subcommand's name).
        group = typer.main.get_group(app)
    finally:
        app.registered_commands = every
    group.params.extend(typer.main.get_install_completion_arguments())
    assert isinstance(group, Reentr)  # the app's group class
    group.whole = _whole
    return group


_IN_UP = ("up", "restart")
"""The commands `cli/up.py` adds to the app when it is imported."""


def _import_up() -> None:
    """Add `up` and `restart` to the app: imported only for them or the whole group, as it
    brings the services' modules (the control socket, the graph) a single run does without."""
    from reentr.cli import up  # noqa: F401


def _whole() -> Any:
    """The whole group, every command in it (for the keys a configuration file may hold)."""
    _import_up()
    return typer.main.get_group(app)


def _split_watch_args(
    args: list[str], taking_values: frozenset[str]
) -> tuple[list[str], list[str]]:
    """`reentr watch`'s own words, and the command: after the first `--`, or, without one, from
    the first word that is neither an option (nor an option's value) nor an existing directory,
    as watchexec reads `watchexec -e py pytest -x`. `--poll=500ms` becomes `--poll
    --poll-interval 500ms` (click has no optional option values)."""
    own, command = args, []
    if "--" in args:
        own, command = args[:args.index("--")], args[args.index("--") + 1:]
    else:
        at = _command_start(args, taking_values)
        own, command = args[:at], args[at:]
    spread: list[str] = []
    for word in own:
        if word.startswith("--poll="):
            spread += ["--poll", "--poll-interval", word.split("=", 1)[1]]
        else:
            spread.append(word)
    return spread, command


def _command_start(args: list[str], taking_values: frozenset[str]) -> int:
    """Where the command begins in words that have no `--` (their length when none does)."""
    value_next = False
    for at, word in enumerate(args):
        if value_next:
            value_next = False
        elif word.startswith("--") or (word.startswith("-") and len(word) == 2):
            value_next = word in taking_values
        elif word.startswith("-") and len(word) > 2:
            # Short flags together (-rc); a last one that takes a value takes the next word.
            value_next = f"-{word[-1]}" in taking_values and not any(
                f"-{letter}" in taking_values for letter in word[1:-1])
        elif not os.path.isdir(word):
            return at
    return len(args)


def _one_line(error: Exception) -> str:
    name, possible = getattr(error, "option_name", None), getattr(error, "possibilities", None)
    if name and possible is not None:
        # click offers any option within a loose likeness (--delay: --help); keep those that
        # begin with what was typed, or that differ from it by a slip.
        ctx = getattr(error, "ctx", None)
        if ctx is not None:  # click offers three at most: look at all of them
            possible = [opt for param in ctx.command.get_params(ctx) for opt in param.opts
                        if opt.startswith("--")]
        close = sorted(option for option in possible if option.startswith(name)
                       or difflib.SequenceMatcher(None, name, option).ratio() >= 0.75)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        return f"no such option: {name}{hint}"
    message = str(getattr(error, "format_message", error.__str__)())
    return message[:1].lower() + message[1:].rstrip(".")

