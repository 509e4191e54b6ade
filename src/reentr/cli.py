"""The command line: parses options into a frozen `Config`, runs it, and maps errors to exit
statuses. It is the only module that exits."""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import enum
import errno
import functools
import os
import re
import shutil
import sys
import types
import typing
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperCommand, TyperGroup

from reentr import __version__, configfile, helptext, runner, sockets
from reentr.completion import complete_signal, install_classes
from reentr.config import (
    Config,
    OnBusy,
    OnExit,
    Probe,
    ProbeKind,
    WatchList,
    WatchTree,
    check_readiness,
    parse_duration,
    parse_probe,
    parse_signal,
    parse_socket,
)
from reentr.errors import ExitStatus, ReentrError, UsageError
from reentr.filters import Filter, walk
from reentr.ignore import Rules, Sources, root_of
from reentr.report import PREFIX, Reporter, shown
from reentr.sources import read_watch_list

# typer 0.29 vendors click privately, earlier versions use click itself: take the exception
# classes from whichever click typer uses, rather than importing either by name.
_click_errors = sys.modules[typer.BadParameter.__module__]
ClickUsageError: type[Exception] = _click_errors.UsageError

USAGE = "usage: reentr [-acdnprsz] [OPTIONS] UTILITY [ARGUMENT [/_] ...] < filenames"

RUNNING = "Running"
BUILD = "Build"
PROCESS = "Process"
READINESS = "Readiness (for the restart's figures, and --handoff)"
WATCHING = "Watching"
FILTERING = "Filtering"
SOCKETS = "Sockets"
OUTPUT = "Output and configuration"

ENTR_MODE = "entr-mode"
"""The hidden command that runs whenever the first word is not a subcommand."""
SUBCOMMANDS = ("watch", "bench", "explain")


class _Reentr(TyperGroup):
    """reentr's commands: entr mode by default, and the subcommands `watch`, `bench` and
    `explain`. A subcommand's name is a word entr mode can never see first (its first word is
    an option or the utility), so any other first word goes to entr mode; a utility literally
    named like a subcommand runs as `reentr -- bench ...`. Being one click group, the shell
    completion sees every command and option."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        _Plain.install(self.get_params(ctx))
        if not args:
            # Completing the first word: offer the subcommands (see shell_complete).
            args = [] if ctx.resilient_parsing else [ENTR_MODE]
        elif args[0].split("=", 1)[0] not in (*SUBCOMMANDS, *_COMPLETION_OPTIONS):
            args = [ENTR_MODE, *args]
        elif args[0] in _COMPLETION_OPTIONS and {"-h", "--help"} & set(args):
            args = [ENTR_MODE, "--help"]  # they are described there, under Shell completion
        return list(super().parse_args(ctx, args))

    def shell_complete(self, ctx: Any, incomplete: str) -> list[Any]:
        """The first word: a subcommand, or any of entr mode's options."""
        found = [item for item in super().shell_complete(ctx, incomplete)
                 if item.value not in _COMPLETION_OPTIONS]
        if incomplete.startswith("-"):
            entr = self.commands[ENTR_MODE]
            found += entr.shell_complete(ctx, incomplete)
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


class _Command(TyperCommand):
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


class _AfterDashes(_Command):
    """A command whose usage line ends in a command after `--`, which click cannot say."""

    usage = ""

    def format_usage(self, ctx: Any, formatter: Any) -> None:
        formatter.write_usage(ctx.command_path, self.usage)


class _WatchCommand(_AfterDashes):
    usage = "[PATH]... [OPTIONS] -- COMMAND [ARG]..."


class _BenchCommand(_AfterDashes):
    usage = "[OPTIONS] [-- COMMAND [ARG]...]"


class _EntrMode(_Command):
    """Entr mode's usage line reads `reentr ...`: it is the default, not a subcommand."""

    def format_usage(self, ctx: Any, formatter: Any) -> None:
        formatter.write_usage(ctx.find_root().info_name, USAGE.split(" ", 2)[2])


_COMPLETION_OPTIONS = ("--install-completion", "--show-completion")

app = typer.Typer(
    cls=_Reentr,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"reentr {__version__}")
        raise typer.Exit(0)


# Options that entr mode and `reentr watch` share.
_Clear = Annotated[
    int, typer.Option("-c", "--clear", count=True, show_default=False,
                      help="Clear the screen before each run; -cc also clears the scrollback.",
                      rich_help_panel=RUNNING)
]

_NonInteractive = Annotated[
    bool, typer.Option("-n", help="Do not read keys from the terminal.",
                       rich_help_panel=RUNNING)
]

_Postpone = Annotated[
    bool, typer.Option("-p", "--postpone", help="Wait for the first change before the first "
                       "run.", rich_help_panel=RUNNING)
]

_Restart = Annotated[
    bool, typer.Option("-r", "--restart", help="Restart the utility on each change: stop "
                       "its process group, then start it again.", rich_help_panel=RUNNING)
]

_ExitOnExit = Annotated[
    bool, typer.Option("-z", help="Exit when the utility exits, with its status.",
                       rich_help_panel=RUNNING)
]

_Debounce = Annotated[
    str, typer.Option("--debounce", metavar="DURATION", help="Act once no file event has "
                      "come for this long, so that a burst of writes (a save, a checkout) is "
                      "one change (at most 1.6s of gathering), e.g. 50ms.",
                      rich_help_panel=WATCHING)
]

_Build = Annotated[
    str | None, typer.Option("--build", metavar="CMD", help="A shell command run before "
                             "every start; the utility (re)starts only if it succeeds, "
                             "e.g. 'go build -o app .'.",
                             rich_help_panel=BUILD, show_default=False)
]

_OnBusy = Annotated[
    OnBusy, typer.Option("--on-busy", help="A change during a build: restart the build, "
                         "queue another, or ignore (finish it, then build again).",
                         rich_help_panel=BUILD, case_sensitive=False)
]

_OnExit = Annotated[
    OnExit, typer.Option("--on-exit", help="When the utility exits by itself: wait for a "
                         "change, restart it (with back-off), or quit.",
                         rich_help_panel=PROCESS, case_sensitive=False)
]

_Signal = Annotated[
    str | None, typer.Option("--signal", metavar="SIG", help="Send SIG to the running "
                             "utility's process group instead of restarting it, e.g. SIGHUP "
                             "(or HUP, hup, 1).",
                             autocompletion=complete_signal, rich_help_panel=PROCESS,
                             show_default=False)
]

_StopSignal = Annotated[
    str, typer.Option("--stop-signal", metavar="SIG", help="The signal that stops the "
                      "utility, e.g. SIGINT.", autocompletion=complete_signal,
                      rich_help_panel=PROCESS)
]

_DelayRun = Annotated[
    str, typer.Option("--delay-run", metavar="DURATION", help="Wait this long before each "
                      "start of the command (after a restart's stop), e.g. 500ms.",
                      rich_help_panel=PROCESS)
]

_StopTimeout = Annotated[
    str, typer.Option("--stop-timeout", metavar="DURATION", help="How long to wait after "
                      "the stop signal before SIGKILL, e.g. 10s.", rich_help_panel=PROCESS)
]

_ReadyPort = Annotated[
    str | None, typer.Option("--ready-port", metavar="[HOST:]PORT", help="The target is "
                             "ready when a TCP connect to PORT succeeds (HOST: 127.0.0.1), e.g. "
                             "8000.",
                             show_default=False, rich_help_panel=READINESS)
]

_ReadyLine = Annotated[
    str | None, typer.Option("--ready-line", metavar="REGEX", help="The target is ready "
                             "when it prints a line matching REGEX (stdout or stderr; its "
                             "output still reaches you unchanged), e.g. 'listening on'.",
                             show_default=False,
                             rich_help_panel=READINESS)
]

_ReadyUrl = Annotated[
    str | None, typer.Option("--ready-url", metavar="URL", help="The target is ready when "
                             "a GET of URL gets an HTTP answer below 500 (a 404 is an "
                             "answer; a 5xx is not), e.g. http://127.0.0.1:8000/.",
                             show_default=False,
                             rich_help_panel=READINESS)
]

_ReadyNotify = Annotated[
    bool, typer.Option("--ready-notify", help="The target is ready when it sends READY=1 to "
                       "$NOTIFY_SOCKET (systemd's sd_notify).", rich_help_panel=READINESS)
]

_Socket = Annotated[
    list[str] | None, typer.Option("--socket", metavar="[NAME=][HOST:]PORT|unix:PATH",
                                   help="Listen on this address once, before the first start, "
                                   "and pass the socket to every start as fd 3, 4, ... "
                                   "(LISTEN_FDS), so a restart refuses no connection "
                                   "(HOST: 127.0.0.1; repeatable), e.g. 8000, or "
                                   "api=unix:/tmp/api.sock.", show_default=False,
                                   rich_help_panel=SOCKETS)
]

_Handoff = Annotated[
    bool, typer.Option("--handoff", help="With --socket: start the new target beside the old "
                       "one, and stop the old one only once the new one is ready; if it exits "
                       "or is not ready in --ready-timeout, keep the old one.",
                       rich_help_panel=SOCKETS)
]

_ReadyTimeout = Annotated[
    str, typer.Option("--ready-timeout", metavar="DURATION", help="Stop waiting for "
                      "readiness after this long, and say so, e.g. 2m.", rich_help_panel=READINESS)
]

_Events = Annotated[
    str | None, typer.Option("--events", metavar="FILE", help="Write one JSON object per "
                             "lifecycle event to FILE (- for stdout; the command's own stdout "
                             "then goes to stderr), e.g. restarts.jsonl.",
                             show_default=False,
                             rich_help_panel=OUTPUT)
]

_NoLoopGuard = Annotated[
    bool, typer.Option("--no-loop-guard", help="Keep reacting to a file that every run "
                       "rewrites (by default, after 3 such runs in a row reentr says so and "
                       "stops reacting to that file).", rich_help_panel=RUNNING)
]

CONFIG_KEY = "reentr.config"


def _config_options(ctx: Any, param: Any, value: Any) -> Any:
    """`--config` and `--no-config`, eager: before any other option takes its value, put the
    configuration file's values in `ctx.default_map`, where the command line overrides them.
    click runs eager options given on the command line first, then the others in order:
    `--no-config` is declared first, so it is seen before `--config` looks for a file."""
    if ctx.resilient_parsing:
        return value
    if param.name == "no_config":
        if value and ctx.meta.get(CONFIG_KEY):
            raise UsageError("give --config PATH or --no-config, not both")
        ctx.meta[CONFIG_KEY] = "none" if value else ctx.meta.get(CONFIG_KEY)
        return value
    if ctx.meta.get(CONFIG_KEY) == "none":
        if value is not None:
            raise UsageError("give --config PATH or --no-config, not both")
        return value
    if value is not None:
        found = configfile.load(Path(value))
        if found is None:
            raise UsageError(f"--config: {value} has no [tool.reentr] table")
    else:
        found = configfile.find(Path.cwd())
    ctx.meta[CONFIG_KEY] = str(found.path) if found else "none"
    if found is not None:
        ctx.default_map = configfile.defaults(found, _config_kinds(ctx.command),
                                              _all_keys(ctx.find_root().command))
    return value


def _config_kinds(command: Any) -> dict[str, tuple[str, str]]:
    """The configuration keys of a command: each option's long name (`stop-timeout`), or its
    parameter's name for an option with only a short flag (`-p`: `postpone`); `command` for
    the command to run, `paths` for `reentr watch`'s trees."""
    kinds: dict[str, tuple[str, str]] = {}
    for param in command.params:
        if param.name in _NOT_CONFIGURABLE or param.expose_value is False:
            continue
        if param.param_type_name == "argument":
            if param.name == "utility":
                kinds["command"] = (configfile.Kind.COMMAND, "utility")
            elif param.name == "paths" and command.name == "watch":
                kinds["paths"] = (configfile.Kind.LIST, "paths")
            continue
        longs = [opt[2:] for opt in param.opts if opt.startswith("--")]
        key = longs[0] if longs else param.name.rstrip("_").replace("_", "-")
        if getattr(param, "count", False):
            kind = configfile.Kind.COUNT
        elif param.is_flag:
            kind = configfile.Kind.FLAG
        elif param.multiple:
            kind = configfile.Kind.LIST
        else:
            kind = configfile.Kind.TEXT
        kinds[key] = (kind, param.name)
    if command.name == "watch":
        kinds["command"] = (configfile.Kind.COMMAND, "command")
    return kinds


_NOT_CONFIGURABLE = frozenset(("config_file", "no_config", "version", "help", "list_"))


def _all_keys(group: Any) -> set[str]:
    """Every configuration key of every command of `group` (the one `main` built)."""
    return {key for name in (ENTR_MODE, "watch", "explain")
            for key in _config_kinds(group.commands[name])}


_NoConfig = Annotated[
    bool, typer.Option("--no-config", help="Do not read reentr.toml or [tool.reentr] in "
                       "pyproject.toml.", is_eager=True, callback=_config_options,
                       rich_help_panel=OUTPUT)
]

_Config = Annotated[
    str | None, typer.Option("--config", metavar="FILE", help="Read the options' defaults "
                             "from FILE (a reentr.toml, or a pyproject.toml's [tool.reentr]) "
                             "instead of the nearest one from here up, e.g. ci/reentr.toml.",
                             is_eager=True,
                             callback=_config_options, show_default=False,
                             rich_help_panel=OUTPUT)
]

_Quiet = Annotated[
    bool, typer.Option("-q", "--quiet", help="Print only errors.", rich_help_panel=OUTPUT)
]

_Verbose = Annotated[
    bool, typer.Option("-v", "--verbose", help="Also say what changed, and why a change "
                       "did nothing.", rich_help_panel=OUTPUT)
]

_Notify = Annotated[
    bool, typer.Option("--notify", help="Also send a desktop notification (notify-send) "
                       "after each restart and on a failed build.", rich_help_panel=OUTPUT)
]


@app.command(
    ENTR_MODE,
    cls=_EntrMode,
    hidden=True,
    context_settings={
        # entr's contract: only the leading options are reentr's; from the utility on, every
        # word is the utility's own, so `reentr -r node app.js -p 8000` passes -p to node.
        "allow_interspersed_args": False,
    },
    help=(
        "Run UTILITY, and run it again whenever a file listed on standard input changes "
        "(entr's interface: ls *.py | reentr -r python app.py)."
    ),
)
def entr_mode(
    utility: Annotated[
        list[str] | None,
        typer.Argument(help="The program to run and its arguments.",
                       metavar="UTILITY [ARGUMENT]...", show_default=False),
    ] = None,
    all_events: Annotated[
        bool, typer.Option("-a", help="Changes during a run lead to one more run.",
                           rich_help_panel=RUNNING)
    ] = False,
    clear: _Clear = 0,
    dir_watch: Annotated[
        int, typer.Option("-d", count=True, show_default=False,
                          help="Exit with status 2 when a watched directory gains or loses a "
                          "file; -dd counts dotfiles too.", rich_help_panel=RUNNING)
    ] = 0,
    non_interactive: _NonInteractive = False,
    postpone: _Postpone = False,
    restart: _Restart = False,
    shell: Annotated[
        bool, typer.Option("-s", "--shell", help="Run the single argument with $SHELL -c; "
                           "the changed file is $0.", rich_help_panel=RUNNING)
    ] = False,
    exit_on_exit: _ExitOnExit = False,
    debounce: _Debounce = f"{Config.debounce_ms}ms",
    build: _Build = None,
    on_busy: _OnBusy = OnBusy.RESTART,
    on_exit: _OnExit = OnExit.WAIT,
    signal_: _Signal = None,
    stop_signal: _StopSignal = "SIGTERM",
    stop_timeout: _StopTimeout = "5s",
    delay_run: _DelayRun = "0s",
    ready_port: _ReadyPort = None,
    ready_line: _ReadyLine = None,
    ready_url: _ReadyUrl = None,
    ready_notify: _ReadyNotify = False,
    ready_timeout: _ReadyTimeout = "30s",
    socket_: _Socket = None,
    handoff: _Handoff = False,
    events: _Events = None,
    no_loop_guard: _NoLoopGuard = False,
    quiet: _Quiet = False,
    verbose: _Verbose = False,
    notify: _Notify = False,
    no_config: _NoConfig = False,
    config_file: _Config = None,
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", is_eager=True,
                           callback=_version)
    ] = False,
) -> int:
    command = tuple(utility or ())
    if not command:
        raise UsageError(USAGE)
    if shell and len(command) > 1:
        raise UsageError(
            "-s takes the command as one argument: reentr -s 'make && ./app' < filenames"
        )
    if sys.stdin.isatty():
        raise UsageError(f"{USAGE} (the files to watch go on standard input)")
    if not shell and build is None:
        # With --build the program may not exist until the build has made it.
        _check_program(command[0])
    # The options are checked before standard input is read: a bad one starts nothing.
    config = _config(
        command, WatchList(()), all_events=all_events, dir_watch=dir_watch, shell=shell,
        restart=restart, postpone=postpone, clear=clear, non_interactive=non_interactive,
        exit_on_exit=exit_on_exit, build=build, on_busy=on_busy, on_exit=on_exit,
        signal_=signal_, stop_signal=stop_signal, stop_timeout=stop_timeout,
        delay_run=delay_run,
        ready_port=ready_port, ready_line=ready_line, ready_url=ready_url,
        ready_notify=ready_notify, ready_timeout=ready_timeout, socket_=socket_,
        handoff=handoff, debounce=debounce, quiet=quiet, verbose=verbose, notify=notify,
        no_loop_guard=no_loop_guard,
    )
    watch, warnings = read_watch_list(sys.stdin.buffer, dir_watch)
    config = dataclasses.replace(config, watch=watch)
    for warning in warnings:
        sys.stderr.write(f"{PREFIX}{warning}\n")
    if not watch.files and not watch.dirs:  # with -d, a listed directory counts (entr.c)
        raise ReentrError(
            "no regular files to watch: list existing files on standard input, "
            "for example: ls *.py | reentr make"
        )
    return _run(config, events)


def _config(
    command: tuple[str, ...], watch: WatchList | WatchTree, *, all_events: bool, dir_watch: int,
    shell: bool, restart: bool, postpone: bool, clear: int, non_interactive: bool,
    exit_on_exit: bool, build: str | None, on_busy: OnBusy, on_exit: OnExit,
    signal_: str | None, stop_signal: str, stop_timeout: str, delay_run: str,
    ready_port: str | None, ready_line: str | None, ready_url: str | None, ready_notify: bool,
    ready_timeout: str, socket_: list[str] | None, handoff: bool, debounce: str, quiet: bool,
    verbose: bool, notify: bool, no_loop_guard: bool,
) -> Config:
    """The `Config` of a run, from the options as given (both modes share most), checked."""
    debounce_ms = round(parse_duration(debounce, "--debounce") * 1000)
    if not 1 <= debounce_ms <= Config.gather_ms:
        raise UsageError(f"--debounce: '{debounce}' is out of range; give 1ms to "
                         f"{Config.gather_ms}ms")
    probe = _probe(ready_port, ready_line, ready_url, ready_notify, ready_timeout)
    specs = tuple(parse_socket(text) for text in socket_ or ())
    check_readiness(probe, specs, handoff, signal=signal_ is not None)
    return Config(
        command=command, watch=watch, all_events=all_events, dir_watch=dir_watch, shell=shell,
        restart=restart or handoff, postpone=postpone, clear=clear,
        interactive=not non_interactive, exit_on_exit=exit_on_exit, build=build,
        on_busy=on_busy, on_exit=on_exit,
        signal=parse_signal(signal_, "--signal") if signal_ is not None else None,
        stop_signal=parse_signal(stop_signal, "--stop-signal"),
        grace=parse_duration(stop_timeout, "--stop-timeout"),
        delay_run=parse_duration(delay_run, "--delay-run"),
        ready=probe, sockets=specs, handoff=handoff,
        debounce_ms=debounce_ms, quiet=quiet, verbose=verbose, notify=notify,
        loop_guard=not no_loop_guard,
    )


def _run(config: Config, events: str | None) -> int:
    """Bind the `--socket` sockets, open the `--events` stream, then run."""
    config = dataclasses.replace(config, unwatched=_own_files(config, events),
                                 stdout_to_stderr=events == "-")
    with contextlib.ExitStack() as stack:
        # First: the sockets take descriptors 3, 4, ... before anything else is opened.
        held = stack.enter_context(sockets.held(config.sockets))
        stream = None
        if events == "-":
            stream = sys.stdout
        elif events is not None:
            try:
                # Never through a symbolic link: one planted at the path would have reentr
                # truncate whatever it points to.
                fd = os.open(events, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o666)
                stream = stack.enter_context(open(fd, "w", encoding="utf-8"))
            except OSError as error:
                if error.errno == errno.ELOOP:
                    raise UsageError(f"--events: '{shown(events)}' is a symbolic link; give "
                                     "the path of the file itself") from None
                raise UsageError(f"--events: cannot write '{shown(events)}': "
                                 f"{error.strerror}") from None
        return runner.run(config, Reporter(config, events=stream), sockets=held)


_Ext = Annotated[
    list[str] | None, typer.Option("-e", "--ext", "--exts", metavar="EXT[,EXT]",
                                   help="Only files with these extensions (repeatable): "
                                   "-e py,toml.",
                                   show_default=False, rich_help_panel=FILTERING)
]
_Glob = Annotated[
    list[str] | None, typer.Option("--glob", metavar="PATTERN", help="Only files matching "
                                   "PATTERN (gitignore syntax, from the root; repeatable), e.g. "
                                   "'src/**/*.py'.",
                                   show_default=False, rich_help_panel=FILTERING)
]
_Ignore = Annotated[
    list[str] | None, typer.Option("--ignore", metavar="PATTERN", help="Also ignore PATTERN "
                                   "(gitignore syntax; it wins over every ignore file; "
                                   "repeatable), e.g. 'generated/'.", show_default=False,
                                   rich_help_panel=FILTERING)
]
_NoGitignore = Annotated[
    bool, typer.Option("--no-gitignore", help="Do not read .gitignore files.",
                       rich_help_panel=FILTERING)
]
_NoGitExclude = Annotated[
    bool, typer.Option("--no-git-exclude", help="Do not read .git/info/exclude.",
                       rich_help_panel=FILTERING)
]
_NoGlobalIgnore = Annotated[
    bool, typer.Option("--no-global-ignore", help="Do not read git's core.excludesFile "
                       "(default ~/.config/git/ignore).", rich_help_panel=FILTERING)
]
_NoDotIgnore = Annotated[
    bool, typer.Option("--no-dot-ignore", help="Do not read .ignore files.",
                       rich_help_panel=FILTERING)
]
_NoDefaultIgnore = Annotated[
    bool, typer.Option("--no-default-ignore", help="Watch what reentr ignores by default: "
                       "VCS directories, __pycache__, *.py[co], editors' swap and backup "
                       "files, build tools' temporary files (*-go-tmp-umask). (.git itself is "
                       "never watched.)", rich_help_panel=FILTERING)
]

@app.command(
    "watch",
    cls=_WatchCommand,
    help=(
        "Watch the trees under PATH (default: .), ignoring what git ignores, and run COMMAND "
        "(given after --) again on every change: reentr watch src -- make."
    ),
)
def watch_mode(
    ctx: typer.Context,
    paths: Annotated[
        list[str] | None,
        typer.Argument(help="Directories to watch, recursively.", metavar="[PATH]...",
                       show_default=False),
    ] = None,
    watch: Annotated[
        list[str] | None, typer.Option("-w", "--watch", metavar="PATH", help="A tree to "
                                       "watch, as a PATH argument is (repeatable), e.g. -w src.",
                                       show_default=False, rich_help_panel=WATCHING)
    ] = None,
    list_: Annotated[
        bool, typer.Option("--list", help="Print every file reentr would react to, one per "
                           "line, and exit.", rich_help_panel=WATCHING)
    ] = False,
    poll: Annotated[
        bool, typer.Option("--poll", help="Poll instead of using inotify (network file "
                           "systems, some containers); --poll=INTERVAL sets how often "
                           "(default 500ms), e.g. --poll=2s.", rich_help_panel=WATCHING)
    ] = False,
    poll_interval: Annotated[
        str, typer.Option("--poll-interval", hidden=True, metavar="DURATION")
    ] = "500ms",
    ext: _Ext = None,
    glob: _Glob = None,
    ignore: _Ignore = None,
    no_gitignore: _NoGitignore = False,
    no_git_exclude: _NoGitExclude = False,
    no_global_ignore: _NoGlobalIgnore = False,
    no_dot_ignore: _NoDotIgnore = False,
    no_default_ignore: _NoDefaultIgnore = False,
    restart: _Restart = False,
    shell: Annotated[
        bool, typer.Option("-s", "--shell", help="Run COMMAND with $SHELL -c, as one string "
                           "(its words joined by spaces); the first changed file is $0.",
                           rich_help_panel=RUNNING)
    ] = False,
    all_events: Annotated[
        bool, typer.Option("-a", help="Accepted as in entr mode, where it is needed: reentr "
                           "watch always runs once more after changes made during a run.",
                           show_default=False, rich_help_panel=RUNNING)
    ] = True,
    postpone: _Postpone = False,
    clear: _Clear = 0,
    non_interactive: _NonInteractive = False,
    exit_on_exit: _ExitOnExit = False,
    debounce: _Debounce = f"{Config.debounce_ms}ms",
    build: _Build = None,
    on_busy: _OnBusy = OnBusy.RESTART,
    on_exit: _OnExit = OnExit.WAIT,
    signal_: _Signal = None,
    stop_signal: _StopSignal = "SIGTERM",
    stop_timeout: _StopTimeout = "5s",
    delay_run: _DelayRun = "0s",
    ready_port: _ReadyPort = None,
    ready_line: _ReadyLine = None,
    ready_url: _ReadyUrl = None,
    ready_notify: _ReadyNotify = False,
    ready_timeout: _ReadyTimeout = "30s",
    socket_: _Socket = None,
    handoff: _Handoff = False,
    events: _Events = None,
    no_loop_guard: _NoLoopGuard = False,
    quiet: _Quiet = False,
    verbose: _Verbose = False,
    notify: _Notify = False,
    no_config: _NoConfig = False,
    config_file: _Config = None,
) -> int:
    roots = []
    for path in [*(paths or ()), *(watch or ())] or ["."]:
        if not os.path.isdir(path):
            kind = "a file" if os.path.exists(path) else "not found"
            raise UsageError(f"cannot watch '{shown(path)}': {kind}; reentr watch takes "
                             "directories (for single files use entr mode: ls FILE | reentr CMD)")
        roots.append(Path(path).resolve())
    tree = WatchTree(
        tuple(roots), _sources(ignore, no_gitignore, no_git_exclude, no_global_ignore,
                               no_dot_ignore, no_default_ignore),
        _exts(ext), tuple(glob or ()),
        parse_duration(poll_interval, "--poll") if poll else None,
    )
    if list_:
        # The names exactly, as bytes: the list is for other programs (xargs, entr mode).
        for line in watched_files(tree):
            sys.stdout.buffer.write(os.fsencode(line) + b"\n")
        sys.stdout.flush()
        return ExitStatus.OK
    command = tuple(ctx.obj or ()) or tuple((ctx.default_map or {}).get("command", ()))
    if not command:
        raise UsageError("give the command after --: reentr watch src -- make")
    if shell:
        command = (" ".join(command),)
    elif build is None:
        # With --build the program may not exist until the build has made it.
        _check_program(command[0])
    # Unlike entr, a change made during a run is never dropped: the last save always runs.
    config = _config(
        command, tree, all_events=True, dir_watch=0, shell=shell,
        restart=restart, postpone=postpone, clear=clear, non_interactive=non_interactive,
        exit_on_exit=exit_on_exit, build=build, on_busy=on_busy, on_exit=on_exit,
        signal_=signal_, stop_signal=stop_signal, stop_timeout=stop_timeout,
        delay_run=delay_run,
        ready_port=ready_port, ready_line=ready_line, ready_url=ready_url,
        ready_notify=ready_notify, ready_timeout=ready_timeout, socket_=socket_,
        handoff=handoff, debounce=debounce, quiet=quiet, verbose=verbose, notify=notify,
        no_loop_guard=no_loop_guard,
    )
    return _run(config, events)


def watched_files(tree: WatchTree) -> list[str]:
    """`--list`: every file under the trees that reentr would react to, relative to the
    working directory when inside it, in git's order (byte order)."""
    found: set[str] = set()
    for root in tree.paths:
        filter_ = Filter(Rules.load(root, tree.sources), tree.exts, tree.globs)
        found.update(str(path) for path, is_dir in walk(filter_, root) if not is_dir)
    here = os.getcwd()
    listed = [os.path.relpath(p) if p.startswith(here + os.sep) else p for p in found]
    return sorted(listed, key=os.fsencode)


@app.command(
    "explain",
    cls=_Command,
    help=(
        "Say whether reentr watch would react to each PATH, and which rule decided: the "
        "ignore file, line and pattern, as git check-ignore -v shows them."
    ),
)
def explain_mode(
    paths: Annotated[list[str], typer.Argument(help="Files or directories.", metavar="PATH",
                                               show_default=False)],
    ext: _Ext = None,
    glob: _Glob = None,
    ignore: _Ignore = None,
    no_gitignore: _NoGitignore = False,
    no_git_exclude: _NoGitExclude = False,
    no_global_ignore: _NoGlobalIgnore = False,
    no_dot_ignore: _NoDotIgnore = False,
    no_default_ignore: _NoDefaultIgnore = False,
    no_config: _NoConfig = False,
    config_file: _Config = None,
) -> int:
    sources = _sources(ignore, no_gitignore, no_git_exclude, no_global_ignore, no_dot_ignore,
                       no_default_ignore)
    filters: dict[Path, Filter] = {}  # one load per root, however many paths lie under it
    status = ExitStatus.OK
    for path in paths:
        target = Path(path).resolve()
        missing = not os.path.lexists(target)
        if missing:
            status = ExitStatus.ERROR
        is_dir = target.is_dir()
        start = target if is_dir else target.parent
        root = root_of(start)
        if root not in filters:
            filters[root] = Filter(Rules.load(start, sources), _exts(ext), tuple(glob or ()))
        filter_ = filters[root]
        rules = filter_.rules
        rel = rules.relative(target)
        verdict = rules.explain(rel or "", is_dir) if rel else None
        if verdict is None:
            said = "watched (the root of the tree)"
        elif verdict.ignored and verdict.rule is not None:
            said = f"ignored by {verdict.rule.describe()}"
            if verdict.directory and verdict.directory != f"{rel}/":
                said += f" (its directory {verdict.directory} is ignored)"
        elif not is_dir and not filter_.wants(str(rel)):
            said = "not watched: it matches no --ext or --glob"
        elif verdict.rule is not None:
            said = f"watched: re-included by {verdict.rule.describe()}"
        else:
            said = "watched: no rule matches"
        if missing:
            said = f"no such file or directory; if it were a file: {said}"
        typer.echo(f"{shown(path)}: {said}")
    return status


def _sources(
    ignore: list[str] | None, no_gitignore: bool, no_git_exclude: bool, no_global: bool,
    no_dot_ignore: bool, no_default: bool,
) -> Sources:
    return Sources(gitignore=not no_gitignore, git_exclude=not no_git_exclude,
                   global_file=not no_global, dot_ignore=not no_dot_ignore,
                   builtin=not no_default, extra=tuple(ignore or ()))


def _exts(values: list[str] | None) -> tuple[str, ...]:
    return tuple(e.strip().lstrip(".") for v in values or () for e in v.split(",") if e.strip())


@app.command(
    "bench",
    cls=_BenchCommand,
    help=(
        "Measure restarts from the outside: run reentr on a real app, edit a file RUNS times, "
        "and for each edit time how long until the app serves the result, and count the "
        "requests that fail meanwhile (a client polls 127.0.0.1:PORT). With no COMMAND it "
        "uses a small built-in HTTP app (python -m reentr.sample_app)."
    ),
)
def bench_mode(
    command: Annotated[
        list[str] | None,
        typer.Argument(help="Your app, after --; it must listen on --port.",
                       metavar="COMMAND [ARG]...", show_default=False),
    ] = None,
    runs: Annotated[int, typer.Option("--runs", min=1, metavar="N",
                                      help="Edits per mode.")] = 20,
    mode: Annotated[
        str | None, typer.Option("--mode", metavar="MODE[,MODE]", help="Modes to compare: "
                                 "plain (restart), signal (SIGHUP, for an app that reloads "
                                 "itself), socket (--socket) and handoff (--socket --handoff; "
                                 "for an app that serves on an inherited socket). Default: all "
                                 "four for the built-in app, plain for yours.",
                                 show_default=False)
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=1, max=65535, metavar="PORT",
                                 help="The port your app listens on "
                                 "(127.0.0.1). Default for the built-in app: a free one.",
                                 show_default=False)
    ] = None,
    edit: Annotated[
        str | None, typer.Option("--edit", metavar="FILE", help="The file to edit (rewritten "
                                 "with its own content) for your app.", show_default=False)
    ] = None,
    json_path: Annotated[
        str | None, typer.Option("--json", metavar="FILE", help="Also write every figure as "
                                 "JSON to FILE (- for stdout).", show_default=False)
    ] = None,
) -> int:
    argv = tuple(command or ())
    if argv:
        if port is None or edit is None:
            raise UsageError("bench with your own command needs --port PORT and --edit FILE: "
                             "reentr bench --port 8000 --edit app.py -- python app.py")
        if not os.path.isfile(edit):
            raise UsageError(f"--edit: '{edit}' is not a file; give the source file to edit")
        _check_program(argv[0])
    elif edit is not None:
        raise UsageError("--edit is for your own command; the built-in app edits its own file")
    from reentr import bench  # only here: it needs http.client, which costs startup time

    default = "plain" if argv else ",".join(bench.MODES)
    names = tuple(m.strip() for m in (mode or default).split(","))
    unknown = [m for m in names if m not in bench.MODES]
    if unknown:
        raise UsageError(f"--mode: unknown mode '{unknown[0]}'; choose from "
                         f"{', '.join(bench.MODES)}")
    plan = bench.Plan(argv or None, port, Path(edit).resolve() if edit else None, runs, names)
    results = bench.run(plan, sys.stderr if json_path == "-" else sys.stdout)
    if json_path is not None:
        bench.write_json(results, json_path)
    return ExitStatus.OK


def _own_files(config: Config, events: str | None) -> frozenset[str]:
    """The files whose changes reentr never reacts to: those it writes itself, and, with
    `--build`, the program the build writes (a loop otherwise: build, write, change, build)."""
    own = {spec.path for spec in config.sockets if spec.path is not None}
    if events not in (None, "-"):
        own.add(events)
    if config.build is not None and not config.shell:
        program = config.command[0]
        found = program if os.sep in program else shutil.which(program)
        if found is not None:
            own.add(found)
    # Both spellings: a watched tree's root is resolved, a listed file is not.
    return frozenset(f(path) for path in own for f in (os.path.abspath, os.path.realpath))


def _probe(
    port: str | None, line: str | None, url: str | None, notify: bool, timeout: str
) -> Probe | None:
    given = [(kind, text) for kind, text in
             ((ProbeKind.PORT, port), (ProbeKind.LINE, line), (ProbeKind.URL, url)) if text]
    if notify:
        given.append((ProbeKind.NOTIFY, ""))
    if len(given) > 1:
        raise UsageError("give one readiness probe: --ready-port, --ready-line, --ready-url "
                         "or --ready-notify")
    seconds = parse_duration(timeout, "--ready-timeout")
    return parse_probe(*given[0], seconds) if given else None


def _check_program(program: str) -> None:
    """Refuse a utility that cannot be run, before anything starts."""
    if os.sep in program:
        if not (os.path.isfile(program) and os.access(program, os.X_OK)):
            raise UsageError(f"cannot run '{program}': no such executable file")
    elif shutil.which(program) is None:
        raise UsageError(
            f"cannot run '{program}': no such program on PATH; check the name, or give its path"
        )


def main(argv: list[str] | None = None) -> NoReturn:
    """The `reentr` console script: run, then exit with the documented status."""
    args = sys.argv[1:] if argv is None else argv
    obj = None
    if args and args[0] == "watch":
        own, obj = _split_watch_args(args[1:])
        args = ["watch", *own]
    command = typer.main.get_command(app)
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
    sys.exit(int(status or 0))


def _split_watch_args(args: list[str]) -> tuple[list[str], list[str]]:
    """`reentr watch`'s own words, and the command after the first `--`; `--poll=500ms`
    becomes `--poll --poll-interval 500ms` (click has no optional option values)."""
    own, command = args, []
    if "--" in args:
        own, command = args[:args.index("--")], args[args.index("--") + 1:]
    spread: list[str] = []
    for word in own:
        if word.startswith("--poll="):
            spread += ["--poll", "--poll-interval", word.split("=", 1)[1]]
        else:
            spread.append(word)
    return spread, command


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
