"""Every use of a typer or click internal, each with the reason it exists: the default
command (entr mode), typer's value coercion without pydantic, help sections, usage lines,
click's error classes, and a subcommand's parser run on a table of values (`reentr up`)."""

from __future__ import annotations

import dataclasses
import enum
import functools
import importlib
import inspect
import re
import sys
import types
import typing
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from reentr.cli import helptext
from reentr.errors import UsageError

# typer 0.29 vendors click privately, earlier versions use click itself: take the exception
# classes from whichever click typer uses, rather than importing either by name.
_click_errors = sys.modules[typer.BadParameter.__module__]
_click_package = typer.BadParameter.__module__.rpartition(".")[0]
"""click, or typer's own copy of it."""


ClickUsageError: type[Exception] = _click_errors.UsageError
ClickException: type[Exception] = _click_errors.ClickException


def from_config_file(ctx: Any, name: str) -> bool:
    """Whether the value of the parameter `name` came from the configuration file (click's
    default map: `options._config_options`), not from the command line."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "DEFAULT_MAP"


F = typing.TypeVar("F", bound=typing.Callable[..., Any])


def with_options(declared: type, before: str | None = None) -> typing.Callable[[F], F]:
    """Add the options of the dataclass `declared`, from its field `ADDED_FROM` on, to a
    command: typer reads a command's options from its signature (each parameter's annotation
    and default), so the fields become keyword parameters after the command's own (before
    its parameter `before`, if given: help lists a section where its first option is), and
    the command receives them in its `**` parameter. Declared once, they are both commands'."""
    hints = typing.get_type_hints(declared, include_extras=True)
    fields = dataclasses.fields(declared)
    first = [field.name for field in fields].index(declared.ADDED_FROM)  # type: ignore[attr-defined]
    added = [inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=field.default,
                               annotation=hints[field.name]) for field in fields[first:]]

    def add(command: F) -> F:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
        at = [p.name for p in own].index(before) if before is not None else len(own)
        after = [p.replace(kind=p.KEYWORD_ONLY) for p in own[at:]]
        command.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*own[:at], *added, *after])
        return command

    return add


def subcommand(ctx: typer.Context, name: str) -> Any:
    """The root group's command `name`: click keeps a group's commands in `commands`."""
    return ctx.find_root().command.commands[name]  # type: ignore[attr-defined]


def taking_values(group: Any, name: str) -> frozenset[str]:
    """The options of the group's command `name` that take a value (`-e`, `--build`, ...),
    from click's parameters: those that are neither flags nor counts."""
    return frozenset(option for param in group.commands[name].params
                     if param.param_type_name == "option" and not param.is_flag
                     and not param.count for option in param.opts)


def parse_defaults(command: Any, values: dict[str, Any]) -> dict[str, Any]:
    """The parameters `command` would have with `values` as its defaults (a service's table
    in `reentr up`), each checked and converted by the command's own parser, as on its
    command line. A click internal: `make_context` with a `default_map`, without a config file.

    Raises:
        UsageError: a value the option refuses, with click's message.
    """
    try:
        context = command.make_context(command.name, ["--no-config"], default_map=values)
    except ClickException as error:
        raise UsageError(error.format_message()) from None  # type: ignore[attr-defined]
    return dict(context.params)


USAGE = "usage: reentr [-acdnprsz] [OPTIONS] UTILITY [ARGUMENT [/_] ...] < filenames"


ENTR_MODE = "entr-mode"
"""The hidden command that runs whenever the first word is not a subcommand."""


SUBCOMMANDS = ("watch", "up", "restart", "bench", "explain")


class Reentr(TyperGroup):
    """reentr's commands: entr mode by default, and the subcommands `watch`, `bench` and
    `explain`. A subcommand's name is a word entr mode can never see first (its first word is
    an option or the utility), so any other first word goes to entr mode; a utility literally
    named like a subcommand runs as `reentr -- bench ...`. Being one click group, the shell
    completion sees every command and option."""

    programs: typing.Callable[[str], list[str]] | None = None
    """The programs on PATH that begin with a word (`completion.install_classes` sets it)."""

    whole: typing.Callable[[], Any] | None = None
    """Set where only the run's own command was built (`main._command_for`): builds the
    group of every command, for what needs them all (a configuration file's keys)."""

    def every_command(self) -> typing.Mapping[str, Any]:
        """Every command of reentr's, by name, built now if this group has only some."""
        return self.whole().commands if self.whole is not None else self.commands

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        _Plain.install(self.get_params(ctx))
        if not args:
            # Completing the first word: offer the subcommands (see shell_complete).
            args = [] if ctx.resilient_parsing else [ENTR_MODE]
        elif args[0].split("=", 1)[0] not in (*SUBCOMMANDS, *COMPLETION_OPTIONS):
            args = [ENTR_MODE, *args]
        elif args[0] in COMPLETION_OPTIONS and {"-h", "--help"} & set(args):
            args = [ENTR_MODE, "--help"]  # they are described there, under Shell completion
        return list(super().parse_args(ctx, args))

    def shell_complete(self, ctx: Any, incomplete: str) -> list[Any]:
        """The first word: a subcommand, or any of entr mode's options."""
        found = [item for item in super().shell_complete(ctx, incomplete)
                 if item.value not in COMPLETION_OPTIONS]
        if incomplete.startswith("-"):
            entr = self.commands[ENTR_MODE]
            found += entr.shell_complete(ctx, incomplete)
        elif not found and self.programs is not None:
            # Where no subcommand begins so: entr mode's utility (`reentr pyt`), a program.
            item = importlib.import_module(_click_package + ".shell_completion").CompletionItem
            found += [item(name) for name in self.programs(incomplete)]
        return found


class _Plain:
    """typer's coercion of one parsed value, done without pydantic.

    typer 0.29 checks every parsed value with a pydantic TypeAdapter: importing pydantic and
    building the adapters takes about 60 ms of every start, a fifth of `reentr watch` on a
    big tree. reentr's options are strings, counts, flags, enums and lists of strings, which
    click has already parsed: what is left is to make a count an int, a tuple a list and a
    choice its enum, and that is all this does. Any other annotation, and a number with a
    range, keeps typer's own coercion.
    """

    def __init__(self, convert: Any):
        self.convert = convert

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None:
            return () if param.multiple or param.nargs == -1 else None
        return self.convert(value)

    @classmethod
    def install(cls, params: list[Any]) -> None:
        """Give each parameter with a plain annotation this coercion, where typer keeps one
        (its `_runtime_param`, built on first use); other typer versions are left alone."""
        for param in params:
            descriptor = getattr(param, "type_descriptor", None)
            if descriptor is None or getattr(param, "_runtime_param", False) is not None:
                continue
            info = getattr(descriptor, "parameter_info", None)
            if getattr(info, "min", None) is not None or getattr(info, "max", None) is not None:
                continue  # a range: typer checks it (only `reentr bench` has one)
            convert = cls._converter(descriptor.annotation)
            if convert is not None:
                param._runtime_param = cls(convert)

    @staticmethod
    def _converter(annotation: Any) -> Any:
        parts = [a for a in typing.get_args(annotation) if a is not type(None)]
        if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(parts) == 1:
            annotation = parts[0]
        if annotation in (str, bool):
            return lambda value: value
        if annotation is int:
            return int
        if typing.get_origin(annotation) is list and typing.get_args(annotation) == (str,):
            return list
        if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
            return functools.partial(_choice, annotation)
        return None


def _choice(kind: type[enum.Enum], value: Any) -> enum.Enum:
    try:
        return kind(value)
    except ValueError:
        names = ", ".join(str(member.value) for member in kind)
        raise typer.BadParameter(f"'{value}' is not one of {names}") from None


class Command(TyperCommand):
    """A command whose help lists its options in sections by topic (`rich_help_panel`)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        _Plain.install(self.get_params(ctx))
        return list(super().parse_args(ctx, args))

    def format_options(self, ctx: Any, formatter: Any) -> None:
        sections: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                title = "Arguments"
                # typer appends the Python type (`<list[str]>`): the metavar says enough.
                record = (record[0].split(" <", 1)[0], record[1])
            else:
                title = getattr(param, "rich_help_panel", None) or "Options"
                # A number's range is checked with a message of its own: not help.
                record = (record[0], _RANGE.sub("", record[1]).replace(" []", ""))
            sections.setdefault(title, []).append(record)
        for title, rows in sections.items():
            with formatter.section(title):
                formatter.write_dl(rows)

    def format_epilog(self, ctx: Any, formatter: Any) -> None:
        for title, rows in helptext.SECTIONS.get(self.name or "", []):
            with formatter.section(title):
                if title != helptext.EXAMPLES:
                    formatter.write_dl(rows)
                    continue
                for command, what in rows:  # as a man page has them: what, then the line
                    formatter.write_text(f"{what[:1].upper()}{what[1:]}:")
                    formatter.write(f"{'':{formatter.current_indent + 2}}{command}\n")


_RANGE = re.compile(r";? ?(\d+<=?)?x(<=?\d+|>=?\d+)?(?=\])")
"""click's `[default: 20; x>=1]`, `[1<=x<=65535]`: the range part."""


class _AfterDashes(Command):
    """A command whose usage line ends in a command after `--`, which click cannot say."""

    usage = ""

    def format_usage(self, ctx: Any, formatter: Any) -> None:
        formatter.write_usage(ctx.command_path, self.usage)


class WatchCommand(_AfterDashes):
    usage = "[PATH]... [OPTIONS] -- COMMAND [ARG]..."


class BenchCommand(_AfterDashes):
    usage = "[OPTIONS] [-- COMMAND [ARG]...]"


class EntrMode(Command):
    """Entr mode's usage line reads `reentr ...`: it is the default, not a subcommand."""

    def format_usage(self, ctx: Any, formatter: Any) -> None:
        formatter.write_usage(ctx.find_root().info_name, USAGE.split(" ", 2)[2])


COMPLETION_OPTIONS = ("--install-completion", "--show-completion")


def completion_script(prog_name: str, complete_var: str, shell: str) -> str:
    """typer's completion script for `shell` (not exported by typer)."""
    from typer._completion_shared import get_completion_script

    return get_completion_script(prog_name=prog_name, complete_var=complete_var,
                                 shell=shell).rstrip("\n") + "\n"


Formatter = typing.Callable[[str, str], str]


def answer_completion_with(*, zsh: Formatter, fish: Formatter,
                           install_zsh: typing.Callable[..., Any]) -> None:
    """Have typer answer zsh and fish with `zsh(value, help)` and `fish(value, help)` for each
    candidate, and install zsh's script with `install_zsh`. typer's own answers pass each
    description through rich's markup (which drops `[tool.reentr]` and `[co]`) and quote it so
    that zsh loses every apostrophe; its zsh install appends a compinit line and a `zstyle`
    of its own to ~/.zshrc, which changes every other command's completion. Its classes and
    registry are not exported: a typer without them keeps its own answers."""
    try:
        from typer._completion_classes import FishComplete, ZshComplete
    except ImportError:
        return
    registry = getattr(typer.completion, "shell_completion")  # noqa: B009 (not exported)

    class _Zsh(ZshComplete):
        def format_completion(self, item: Any) -> str:
            return zsh(str(item.value), item.help or "")

    class _Fish(FishComplete):
        def format_completion(self, item: Any) -> str:
            return fish(str(item.value), item.help or "")

    registry.add_completion_class(_Zsh, "zsh")
    registry.add_completion_class(_Fish, "fish")
    from typer import _completion_shared

    _completion_shared.install_zsh = install_zsh
