"""The options, declared once: those entr mode and `reentr watch` share, the filters, and how
a configuration file's keys become their defaults."""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path
from typing import Annotated, Any, ClassVar

import typer

from reentr import __version__, configfile
from reentr.cli.compat import ENTR_MODE
from reentr.cli.completion import complete_signal
from reentr.config import (
    Config,
    OnBusy,
    OnExit,
)
from reentr.errors import UsageError
from reentr.records import record

RUNNING = "Running"


BUILD = "Build"


PROCESS = "Process"


READINESS = "Readiness (for the restart's figures, and --handoff)"


WATCHING = "Watching"


FILTERING = "Filtering"


SOCKETS = "Sockets"


OUTPUT = "Output and configuration"


def show_version(value: bool) -> None:
    if value:
        typer.echo(f"reentr {__version__}")
        raise typer.Exit(0)


# Options that entr mode and `reentr watch` share.
Clear = Annotated[
    int, typer.Option("-c", "--clear", count=True, show_default=False,
                      help="Clear the screen before each run; -cc also clears the scrollback.",
                      rich_help_panel=RUNNING)
]


NonInteractive = Annotated[
    bool, typer.Option("-n", help="Do not read keys from the terminal.",
                       rich_help_panel=RUNNING)
]


Postpone = Annotated[
    bool, typer.Option("-p", "--postpone", help="Wait for the first change before the first "
                       "run.", rich_help_panel=RUNNING)
]


Restart = Annotated[
    bool, typer.Option("-r", "--restart", help="Restart the utility on each change: stop "
                       "its process group, then start it again.", rich_help_panel=RUNNING)
]


ExitOnExit = Annotated[
    bool, typer.Option("-z", help="Exit when the utility exits, with its status.",
                       rich_help_panel=RUNNING)
]


Debounce = Annotated[
    str, typer.Option("--debounce", metavar="DURATION", help="Act once no file event has "
                      "come for this long, so that a burst of writes (a save, a checkout) is "
                      "one change (at most 1.6s of gathering), e.g. 50ms.",
                      rich_help_panel=WATCHING)
]


Build = Annotated[
    str | None, typer.Option("--build", metavar="CMD", help="A shell command run before "
                             "every start; the utility (re)starts only if it succeeds, "
                             "e.g. 'go build -o app .'.",
                             rich_help_panel=BUILD, show_default=False)
]


OnBusyOption = Annotated[
    OnBusy, typer.Option("--on-busy", help="A change during a build: restart the build, "
                         "queue another, or ignore (finish it, then build again).",
                         rich_help_panel=BUILD, case_sensitive=False)
]


OnExitOption = Annotated[
    OnExit, typer.Option("--on-exit", help="When the utility exits by itself: wait for a "
                         "change, restart it (with back-off), or quit.",
                         rich_help_panel=PROCESS, case_sensitive=False)
]


Signal = Annotated[
    str | None, typer.Option("--signal", metavar="SIG", help="Send SIG to the running "
                             "utility's process group instead of restarting it, e.g. SIGHUP "
                             "(or HUP, hup, 1).",
                             autocompletion=complete_signal, rich_help_panel=PROCESS,
                             show_default=False)
]


StopSignal = Annotated[
    str, typer.Option("--stop-signal", metavar="SIG", help="The signal that stops the "
                      "utility, e.g. SIGINT.", autocompletion=complete_signal,
                      rich_help_panel=PROCESS)
]


DelayRun = Annotated[
    str, typer.Option("--delay-run", metavar="DURATION", help="Wait this long before each "
                      "start of the command (after a restart's stop), e.g. 500ms.",
                      rich_help_panel=PROCESS)
]


StopTimeout = Annotated[
    str, typer.Option("--stop-timeout", metavar="DURATION", help="How long to wait after "
                      "the stop signal before SIGKILL, e.g. 10s.", rich_help_panel=PROCESS)
]


ReadyPort = Annotated[
    str | None, typer.Option("--ready-port", metavar="[HOST:]PORT", help="The target is "
                             "ready when a TCP connect to PORT succeeds (HOST: 127.0.0.1), e.g. "
                             "8000.",
                             show_default=False, rich_help_panel=READINESS)
]


ReadyLine = Annotated[
    str | None, typer.Option("--ready-line", metavar="REGEX", help="The target is ready "
                             "when it prints a line matching REGEX (stdout or stderr; its "
                             "output still reaches you unchanged), e.g. 'listening on'.",
                             show_default=False,
                             rich_help_panel=READINESS)
]


ReadyUrl = Annotated[
    str | None, typer.Option("--ready-url", metavar="URL", help="The target is ready when "
                             "a GET of URL gets an HTTP answer below 500 (a 404 is an "
                             "answer; a 5xx is not), e.g. http://127.0.0.1:8000/.",
                             show_default=False,
                             rich_help_panel=READINESS)
]


ReadyNotify = Annotated[
    bool, typer.Option("--ready-notify", help="The target is ready when it sends READY=1 to "
                       "$NOTIFY_SOCKET (systemd's sd_notify).", rich_help_panel=READINESS)
]


Socket = Annotated[
    list[str] | None, typer.Option("--socket", metavar="[NAME=][HOST:]PORT|unix:PATH",
                                   help="Listen on this address once, before the first start, "
                                   "and pass the socket to every start as fd 3, 4, ... "
                                   "(LISTEN_FDS), so a restart refuses no connection "
                                   "(HOST: 127.0.0.1; repeatable), e.g. 8000, or "
                                   "api=unix:/tmp/api.sock.", show_default=False,
                                   rich_help_panel=SOCKETS)
]


Handoff = Annotated[
    bool, typer.Option("--handoff", help="With --socket: start the new target beside the old "
                       "one, and stop the old one only once the new one is ready; if it exits "
                       "or is not ready in --ready-timeout, keep the old one.",
                       rich_help_panel=SOCKETS)
]


FdStore = Annotated[
    bool, typer.Option("--fd-store", help="Keep the descriptors the target stores with "
                       "FDSTORE=1 on $NOTIFY_SOCKET (its connections, a memfd of its state) "
                       "and pass them to each start after the sockets, as systemd's "
                       "file-descriptor store does.", rich_help_panel=SOCKETS)
]


ReadyTimeout = Annotated[
    str, typer.Option("--ready-timeout", metavar="DURATION", help="Stop waiting for "
                      "readiness after this long, and say so, e.g. 2m.", rich_help_panel=READINESS)
]


Events = Annotated[
    str | None, typer.Option("--events", metavar="FILE", help="Write one JSON object per "
                             "lifecycle event to FILE (- for stdout; the command's own stdout "
                             "then goes to stderr), e.g. restarts.jsonl.",
                             show_default=False,
                             rich_help_panel=OUTPUT)
]


NoLoopGuard = Annotated[
    bool, typer.Option("--no-loop-guard", help="Keep reacting to what the runs themselves "
                       "write (by default a build's outputs are never changes, and a file that "
                       "every run writes again, even a run made for it alone, is said and no "
                       "longer reacted to while a run could write it).", rich_help_panel=RUNNING)
]


CONFIG_KEY = "reentr.config"
"""Where a command's context notes the configuration file it read: its path, or `NO_FILE`."""


class _Read(enum.Enum):
    NO_FILE = "no file"
    """`--no-config`, or none found: there is no file to read."""


NO_FILE = _Read.NO_FILE


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
        ctx.meta[CONFIG_KEY] = NO_FILE if value else ctx.meta.get(CONFIG_KEY)
        return value
    if ctx.meta.get(CONFIG_KEY) is NO_FILE:
        if value is not None:
            raise UsageError("give --config PATH or --no-config, not both")
        return value
    found = configfile.given(value) if value is not None else configfile.find(Path.cwd())
    ctx.meta[CONFIG_KEY] = str(found.path) if found else NO_FILE
    if found is not None:
        ctx.default_map = configfile.defaults(found, config_kinds(ctx.command),
                                              _all_keys(ctx.find_root().command))
    return value


def config_kinds(command: Any) -> dict[str, tuple[str, str]]:
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
    """Every configuration key of every command of reentr's (`group` is the one `main`
    built, which may hold the run's command alone)."""
    commands = group.every_command()
    return {key for name in (ENTR_MODE, "watch", "explain")
            for key in config_kinds(commands[name])}


NoConfig = Annotated[
    bool, typer.Option("--no-config", help="Do not read reentr.toml or [tool.reentr] in "
                       "pyproject.toml.", is_eager=True, callback=_config_options,
                       rich_help_panel=OUTPUT)
]


ConfigFile = Annotated[
    str | None, typer.Option("--config", metavar="FILE", help="Read the options' defaults "
                             "from FILE (a reentr.toml, or a pyproject.toml's [tool.reentr]) "
                             "instead of the nearest one from here up, e.g. ci/reentr.toml.",
                             is_eager=True,
                             callback=_config_options, show_default=False,
                             rich_help_panel=OUTPUT)
]


Quiet = Annotated[
    bool, typer.Option("-q", "--quiet", help="Print only errors.", rich_help_panel=OUTPUT)
]


Verbose = Annotated[
    bool, typer.Option("-v", "--verbose", help="Also say what changed, and why a change "
                       "did nothing.", rich_help_panel=OUTPUT)
]


Notify = Annotated[
    bool, typer.Option("--notify", help="Also send a desktop notification (notify-send) "
                       "after each restart and on a failed build.", rich_help_panel=OUTPUT)
]


Ext = Annotated[
    list[str] | None, typer.Option("-e", "--ext", "--exts", metavar="EXT[,EXT]",
                                   help="Only files with these extensions (repeatable): "
                                   "-e py,toml.",
                                   show_default=False, rich_help_panel=FILTERING)
]


Glob = Annotated[
    list[str] | None, typer.Option("--glob", metavar="PATTERN", help="Only files matching "
                                   "PATTERN (gitignore syntax, from the root; repeatable), e.g. "
                                   "'src/**/*.py'.",
                                   show_default=False, rich_help_panel=FILTERING)
]


Ignore = Annotated[
    list[str] | None, typer.Option("--ignore", metavar="PATTERN", help="Also ignore PATTERN "
                                   "(gitignore syntax; it wins over every ignore file; "
                                   "repeatable), e.g. 'generated/'.", show_default=False,
                                   rich_help_panel=FILTERING)
]


NoGitignore = Annotated[
    bool, typer.Option("--no-gitignore", help="Do not read .gitignore files.",
                       rich_help_panel=FILTERING)
]


NoGitExclude = Annotated[
    bool, typer.Option("--no-git-exclude", help="Do not read .git/info/exclude.",
                       rich_help_panel=FILTERING)
]


NoGlobalIgnore = Annotated[
    bool, typer.Option("--no-global-ignore", help="Do not read git's core.excludesFile "
                       "(default ~/.config/git/ignore).", rich_help_panel=FILTERING)
]


NoDotIgnore = Annotated[
    bool, typer.Option("--no-dot-ignore", help="Do not read .ignore files.",
                       rich_help_panel=FILTERING)
]


NoDefaultIgnore = Annotated[
    bool, typer.Option("--no-default-ignore", help="Watch what reentr ignores by default: "
                       "VCS directories, __pycache__, *.py[co], editors' swap and backup "
                       "files, build tools' temporary files (*-go-tmp-umask). (.git itself is "
                       "never watched.)", rich_help_panel=FILTERING)
]



@record
class RunOptions:
    """The options of a run that entr mode, `watch` and each service of `up` share, by their
    parameter names, as the command line (or a configuration file) gave them: declared here
    once, each field an option (its flags and help are in its type) with its default.

    From `exit_on_exit` on, `compat.with_options` adds them to both commands, in this order.
    The fields before it each command lists itself, in the order of its own help, with these
    defaults; their help differs between the two (-s, -a) or they sit among that command's
    own options."""

    all_events: bool = False
    dir_watch: int = 0
    shell: bool = False
    restart: bool = False
    postpone: bool = False
    clear: int = 0
    non_interactive: bool = False
    exit_on_exit: ExitOnExit = False
    debounce: Debounce = f"{Config.debounce_ms}ms"
    build: Build = None
    on_busy: OnBusyOption = OnBusy.RESTART
    on_exit: OnExitOption = OnExit.WAIT
    signal_: Signal = None
    stop_signal: StopSignal = "SIGTERM"
    stop_timeout: StopTimeout = "5s"
    delay_run: DelayRun = "0s"
    ready_port: ReadyPort = None
    ready_line: ReadyLine = None
    ready_url: ReadyUrl = None
    ready_notify: ReadyNotify = False
    ready_timeout: ReadyTimeout = "30s"
    socket_: Socket = None
    handoff: Handoff = False
    fd_store: FdStore = False
    events: Events = None
    no_loop_guard: NoLoopGuard = False
    quiet: Quiet = False
    verbose: Verbose = False
    notify: Notify = False
    no_config: NoConfig = False
    config_file: ConfigFile = None

    ADDED_FROM: ClassVar[str] = "exit_on_exit"
    """The first of the fields that `compat.with_options` adds to both commands."""

    @classmethod
    def of(cls, params: dict[str, Any], **fixed: Any) -> RunOptions:
        """The options among a command's parsed parameters (click has converted each to its
        type); `fixed` overrides some (`watch` always runs again after a change in a run)."""
        names = {field.name for field in dataclasses.fields(cls)}
        given = {name: value for name, value in params.items() if name in names}
        return cls(**{**given, **fixed})

    def sockets(self) -> tuple[str, ...]:
        """The `--socket` values given."""
        return tuple(self.socket_ or ())
