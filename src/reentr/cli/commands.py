"""The commands: entr mode, `watch`, `explain` and `bench`, each turning its parameters into
one checked `Config` (or a report) and running it."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import select
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from reentr.cli.compat import (
    ENTR_MODE,
    SUBCOMMANDS,
    USAGE,
    BenchCommand,
    Command,
    EntrMode,
    Reentr,
    WatchCommand,
    from_config_file,
    with_options,
)
from reentr.cli.completion import complete_program
from reentr.cli.options import (
    CONFIG_KEY,
    RUNNING,
    WATCHING,
    Clear,
    ConfigFile,
    Ext,
    Glob,
    Ignore,
    NoConfig,
    NoDefaultIgnore,
    NoDotIgnore,
    NoGitExclude,
    NoGitignore,
    NoGlobalIgnore,
    NonInteractive,
    Postpone,
    Restart,
    RunOptions,
    show_version,
)
from reentr.config import (
    Config,
    Probe,
    ProbeKind,
    Sources,
    WatchList,
    WatchTree,
    check_readiness,
    parse_duration,
    parse_probe,
    parse_signal,
    parse_socket,
    plain_program,
    port_named,
)
from reentr.errors import ExitStatus, ReentrError, UsageError
from reentr.report import PREFIX, Reporter, launcher_note, shown
from reentr.sources import read_watch_list

if TYPE_CHECKING:
    from reentr import sockets

app = typer.Typer(
    cls=Reentr,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)


@app.command(
    ENTR_MODE,
    cls=EntrMode,
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
@with_options(RunOptions, before="version")
def entr_mode(
    ctx: typer.Context,
    utility: Annotated[
        list[str] | None,
        typer.Argument(help="The program to run and its arguments.",
                       metavar="UTILITY [ARGUMENT]...", show_default=False,
                       autocompletion=complete_program),
    ] = None,
    all_events: Annotated[
        bool, typer.Option("-a", help="Changes during a run lead to one more run.",
                           rich_help_panel=RUNNING)
    ] = False,
    clear: Clear = RunOptions.clear,
    dir_watch: Annotated[
        int, typer.Option("-d", count=True, show_default=False,
                          help="Exit with status 2 when a watched directory gains or loses a "
                          "file; -dd counts dotfiles too.", rich_help_panel=RUNNING)
    ] = 0,
    non_interactive: NonInteractive = RunOptions.non_interactive,
    postpone: Postpone = RunOptions.postpone,
    restart: Restart = RunOptions.restart,
    shell: Annotated[
        bool, typer.Option("-s", "--shell", help="Run the single argument with $SHELL -c; "
                           "the changed file is $0.", rich_help_panel=RUNNING)
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", is_eager=True,
                           callback=show_version)
    ] = False,
    **shared: Any,
) -> int:
    command = tuple(utility or ())
    if not command:
        raise UsageError(USAGE)
    if shell and len(command) > 1:
        raise UsageError(
            "-s takes the command as one argument: reentr -s 'make && ./app' < filenames"
        )
    if sys.stdin.isatty():
        subcommand = _subcommand_meant(command[0]) if not shell else None
        if subcommand is not None:
            raise UsageError(f"no subcommand '{command[0]}'; did you mean reentr {subcommand}?")
        raise UsageError(f"{USAGE} (the files to watch go on standard input)")
    options = RunOptions.of(ctx.params)
    if not shell and options.build is None:
        # With --build the program may not exist until the build has made it.
        try:
            check_program(command[0])
        except UsageError as error:
            subcommand = _subcommand_meant(command[0])
            if subcommand is None:
                raise
            raise UsageError(f"{error}; or did you mean reentr {subcommand}?") from None
    # The options are checked before standard input is read: a bad one starts nothing.
    config = _checked_config(ctx, command, WatchList(()), options)
    watch, warnings = read_watch_list(sys.stdin.buffer, dir_watch)
    config = dataclasses.replace(config, watch=watch)
    for warning in warnings:
        sys.stderr.write(f"{PREFIX}{warning}\n")
    if not watch.files and not watch.dirs:  # with -d, a listed directory counts (entr.c)
        raise ReentrError(
            "no regular files to watch: list existing files on standard input, "
            "for example: ls *.py | reentr make"
        )
    return _run(config, options.events)


def _checked_config(
    ctx: typer.Context, command: tuple[str, ...], watch: WatchList | WatchTree, o: RunOptions
) -> Config:
    """`run_config`, where a value that the configuration file gave is refused said as the
    file's other errors are: its path and key, not the option the user never typed."""
    try:
        if o.build is not None:
            check_build(o.build)
        return run_config(command, watch, o)
    except UsageError as error:
        option, colon, rest = str(error).partition(": ")
        param = next((p for p in ctx.command.params if option in p.opts), None) if colon \
            else None
        if param is None or param.name is None or not from_config_file(ctx, param.name):
            raise
        raise UsageError(f"{ctx.meta.get(CONFIG_KEY)}: {option.lstrip('-')}: {rest}") from None


def run_config(command: tuple[str, ...], watch: WatchList | WatchTree, o: RunOptions) -> Config:
    """The `Config` of a run, from the options as given, checked."""
    debounce_ms = round(parse_duration(o.debounce, "--debounce") * 1000)
    if not 1 <= debounce_ms <= Config.gather_ms:
        raise UsageError(f"--debounce: '{o.debounce}' is out of range; give 1ms to "
                         f"{Config.gather_ms}ms")
    probe = _probe(o.ready_port, o.ready_line, o.ready_url, o.ready_notify, o.ready_timeout)
    specs = tuple(parse_socket(text) for text in o.sockets())
    check_readiness(probe, specs, o.handoff, signal=o.signal_ is not None)
    if o.fd_store and o.handoff:
        # What the old target stores is stored as it stops, and under --handoff the new one
        # runs by then: it could reach only the start after, with its clients waiting and its
        # state from two versions back.
        raise UsageError("--fd-store passes what the old target stores as it stops to the "
                         "next start; with --handoff that start has already happened: give "
                         "one (for live connections: -r --socket PORT --fd-store)")
    # An option named as a field of Config is taken as given (a new flag needs nothing
    # here); the others are parsed, or become another field.
    given = {name: getattr(o, name) for name in _AS_GIVEN}
    return Config(**{
        **given, "command": command, "watch": watch, "restart": o.restart or o.handoff,
        "interactive": not o.non_interactive,
        "signal": parse_signal(o.signal_, "--signal") if o.signal_ is not None else None,
        "stop_signal": parse_signal(o.stop_signal, "--stop-signal"),
        "grace": parse_duration(o.stop_timeout, "--stop-timeout"),
        "delay_run": parse_duration(o.delay_run, "--delay-run"),
        "ready": probe, "sockets": specs, "port_named": port_named(command, o.shell, specs),
        "debounce_ms": debounce_ms, "loop_guard": not o.no_loop_guard,
    })


_AS_GIVEN = sorted({field.name for field in dataclasses.fields(RunOptions)}
                   & {field.name for field in dataclasses.fields(Config)})
"""The options that are fields of `Config` by the same name."""


def _run(config: Config, events: str | None) -> int:
    """Bind the `--socket` sockets, open the `--events` stream, then run."""
    from reentr import runner  # here, not at the top: --help and Tab need none of it

    config = with_own_files(config, events)
    with contextlib.ExitStack() as stack:
        # First: the sockets (and the store's slots) take descriptors 3, 4, ... before
        # anything else is opened.
        slots, limit = store_slots(stack, [config])
        held = None
        if config.sockets:
            from reentr import sockets  # here: without --socket, no socket module at all

            held = stack.enter_context(sockets.held(config.sockets, slots))
        stream = open_events(stack, events)
        reporter = Reporter(config, events=stream)
        if (note := launcher_note(config)) is not None:
            reporter.line(note)
        store = open_store(stack, config, limit, reporter)
        return runner.run(config, reporter, sockets=held, store=store, slots=slots)


def store_slots(
    stack: contextlib.ExitStack, configs: list[Config]
) -> tuple[sockets.Slots | None, int]:
    """When a run keeps a file-descriptor store (`--fd-store`): the slots where each start
    finds its descriptors (the sockets', then the store's) and how many a store keeps;
    else (None, 0). Called first, so that the slots are descriptors 3, 4, ..."""
    if not any(config.fd_store for config in configs):
        return None, 0
    import socket

    from reentr import sockets

    if not hasattr(select, "epoll") or not hasattr(socket, "SO_PASSCRED"):
        raise UsageError("--fd-store needs Linux (the kernel must attest who sent a message, "
                         "and epoll watch what is kept); run without it here")
    most = max(len(config.sockets) for config in configs)
    limit = sockets.store_limit(most)
    slots = sockets.Slots(most + limit)
    stack.callback(slots.close)
    return slots, limit


def open_store(
    stack: contextlib.ExitStack, config: Config, limit: int, reporter: Reporter
) -> sockets.Store | None:
    """The run's file-descriptor store, if it keeps one (`--fd-store`), closed with `stack`;
    one line says when it keeps fewer than `STORE_MAX` here, and why."""
    if not config.fd_store:
        return None
    from reentr import sockets

    if limit < sockets.STORE_MAX:
        import resource  # only for this line

        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        reporter.line(f"--fd-store keeps at most {limit} descriptors here (not "
                      f"{sockets.STORE_MAX}): the hard limit of open files is {hard} "
                      "(ulimit -Hn); raise it for more")
    return stack.enter_context(contextlib.closing(sockets.Store(limit)))


def with_own_files(config: Config, events: str | None, cwd: str = ".") -> Config:
    """`config` with what reentr itself writes left unwatched, and stdout kept for the event
    stream when it goes there; `cwd` is where the command runs."""
    from reentr.filters import own_files  # the rules (pathspec) only where used

    return dataclasses.replace(config, unwatched=own_files(config, events, cwd),
                               stdout_to_stderr=events == "-")


def open_events(stack: contextlib.ExitStack, events: str | None) -> TextIO | None:
    """The `--events` stream, open for the length of `stack`."""
    if events == "-":
        return sys.stdout
    if events is None:
        return None
    try:
        # Never through a symbolic link: one planted at the path would have reentr truncate
        # whatever it points to.
        fd = os.open(events, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o666)
        return stack.enter_context(open(fd, "w", encoding="utf-8"))
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise UsageError(f"--events: '{shown(events)}' is a symbolic link; give the path "
                             "of the file itself") from None
        raise UsageError(f"--events: cannot write '{shown(events)}': "
                         f"{error.strerror}") from None


@app.command(
    "watch",
    cls=WatchCommand,
    help=(
        "Watch the trees under PATH (default: .), ignoring what git ignores, and run COMMAND "
        "again on every change: reentr watch src -- make. Without --, COMMAND begins at the "
        "first word that is neither an option nor a directory: reentr watch -e py pytest -x."
    ),
)
@with_options(RunOptions)
def watch_mode(
    ctx: typer.Context,
    paths: Annotated[
        list[str] | None,
        typer.Argument(help="Directories to watch, recursively, or files.",
                       metavar="[PATH]...",
                       show_default=False, autocompletion=complete_program),
    ] = None,
    watch: Annotated[
        list[str] | None, typer.Option("-w", "--watch", metavar="PATH", help="A tree or a "
                                       "file to watch, as a PATH argument is (repeatable), e.g. "
                                       "-w src -w Makefile.",
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
    ext: Ext = None,
    glob: Glob = None,
    ignore: Ignore = None,
    no_gitignore: NoGitignore = False,
    no_git_exclude: NoGitExclude = False,
    no_global_ignore: NoGlobalIgnore = False,
    no_dot_ignore: NoDotIgnore = False,
    no_default_ignore: NoDefaultIgnore = False,
    restart: Restart = RunOptions.restart,
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
    postpone: Postpone = RunOptions.postpone,
    clear: Clear = RunOptions.clear,
    non_interactive: NonInteractive = RunOptions.non_interactive,
    **shared: Any,
) -> int:
    tree = watch_tree(ctx.params, Path.cwd())
    if list_:
        # The names exactly, as bytes: the list is for other programs (xargs, entr mode).
        from reentr.explain import listed  # the rules (pathspec) only where used

        for line in listed(tree):
            sys.stdout.buffer.write(os.fsencode(line) + b"\n")
        sys.stdout.flush()
        return ExitStatus.OK
    command = tuple(ctx.obj or ()) or tuple((ctx.default_map or {}).get("command", ()))
    if not command:
        raise UsageError("give the command after --: reentr watch src -- make")
    options = RunOptions.of(ctx.params, all_events=True)
    if shell:
        command = (" ".join(command),)
    elif options.build is None:
        # With --build the program may not exist until the build has made it.
        check_program(command[0])
    # Unlike entr, a change made during a run is never dropped: the last save always runs.
    config = _checked_config(ctx, command, tree, options)
    return _run(config, options.events)


def watch_tree(params: dict[str, Any], base: Path) -> WatchTree:
    """The trees of `reentr watch`'s parameters (PATH and -w, relative to `base`), with their
    filters."""
    roots = []
    for path in [*(params["paths"] or ()), *(params["watch"] or ())] or ["."]:
        full = base / path
        if not full.exists():
            raise UsageError(f"cannot watch '{shown(path)}': not found; give an existing "
                             "directory or file")
        roots.append(full.resolve())
    return WatchTree(
        tuple(roots),
        _sources(params["ignore"], params["no_gitignore"], params["no_git_exclude"],
                 params["no_global_ignore"], params["no_dot_ignore"],
                 params["no_default_ignore"]),
        _exts(params["ext"]), tuple(params["glob"] or ()),
        parse_duration(params["poll_interval"], "--poll") if params["poll"] else None,
    )


@app.command(
    "explain",
    cls=Command,
    help=(
        "Say whether reentr watch would react to each PATH, and which rule decided: the "
        "ignore file, line and pattern, as git check-ignore -v shows them."
    ),
)
def explain_mode(
    paths: Annotated[list[str], typer.Argument(help="Files or directories.", metavar="PATH",
                                               show_default=False)],
    ext: Ext = None,
    glob: Glob = None,
    ignore: Ignore = None,
    no_gitignore: NoGitignore = False,
    no_git_exclude: NoGitExclude = False,
    no_global_ignore: NoGlobalIgnore = False,
    no_dot_ignore: NoDotIgnore = False,
    no_default_ignore: NoDefaultIgnore = False,
    no_config: NoConfig = False,
    config_file: ConfigFile = None,
) -> int:
    from reentr.explain import Explainer  # the rules (pathspec) only where used

    sources = _sources(ignore, no_gitignore, no_git_exclude, no_global_ignore, no_dot_ignore,
                       no_default_ignore)
    explainer = Explainer(sources, _exts(ext), tuple(glob or ()), Path.cwd().resolve())
    status = ExitStatus.OK
    for path in paths:
        said, exists = explainer.explain(path)
        if not exists:
            status = ExitStatus.ERROR
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
    cls=BenchCommand,
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
                       metavar="COMMAND [ARG]...", show_default=False,
                       autocompletion=complete_program),
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
    observers: Annotated[
        int, typer.Option("--observers", min=1, max=2, metavar="N", help="2: a second client, "
                          "alike in every way, measures each edit too, and the table shows "
                          "how far the two disagree: the stopwatch's own spread, to read "
                          "'printed vs measured' against.")
    ] = 1,
) -> int:
    argv = tuple(command or ())
    if argv:
        if port is None or edit is None:
            raise UsageError("bench with your own command needs --port PORT and --edit FILE: "
                             "reentr bench --port 8000 --edit app.py -- python app.py")
        if not os.path.isfile(edit):
            raise UsageError(f"--edit: '{edit}' is not a file; give the source file to edit")
        check_program(argv[0])
    elif edit is not None:
        raise UsageError("--edit is for your own command; the built-in app edits its own file")
    from reentr import bench  # only here: it needs http.client, which costs startup time

    default = "plain" if argv else ",".join(bench.MODES)
    names = tuple(m.strip() for m in (mode or default).split(","))
    unknown = [m for m in names if m not in bench.MODES]
    if unknown:
        raise UsageError(f"--mode: unknown mode '{unknown[0]}'; choose from "
                         f"{', '.join(bench.MODES)}")
    if argv and mode is None:  # the others need what only the app can say it does
        sys.stderr.write(f"{PREFIX}measuring the plain restart alone, the default for your "
                         "own command: --mode signal for an app that reloads on SIGHUP, "
                         "--mode socket,handoff for one that serves on an inherited socket "
                         "(fd 3)\n")
    plan = bench.Plan(argv or None, port, Path(edit).resolve() if edit else None, runs, names,
                      observers)
    results = bench.run(plan, sys.stderr if json_path == "-" else sys.stdout)
    if json_path is not None:
        bench.write_json(results, json_path)
    return ExitStatus.OK


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


def _subcommand_meant(word: str) -> str | None:
    """The subcommand a first word that is none is most likely a typo of (`wacth`), if any,
    where no program of that name is on PATH."""
    if os.sep in word or shutil.which(word) is not None:
        return None
    import difflib  # only here: most starts name a program that is there

    close = difflib.get_close_matches(word, SUBCOMMANDS, n=1, cutoff=0.7)
    return close[0] if close else None


def check_build(command: str, cwd: Path | None = None) -> None:
    """Refuse a build that is one program, which cannot be run (`nosuchmake`), before
    anything starts: a shell would say `not found` at every change, and nothing would ever
    be built. A command with shell syntax is the shell's to judge."""
    program = plain_program(command)
    if program is None:
        return
    try:
        check_program(str(cwd / program) if cwd is not None and os.sep in program
                      else program)
    except UsageError as error:
        raise UsageError(f"--build: {error}") from None


def check_program(program: str) -> None:
    """Refuse a utility that cannot be run, before anything starts."""
    if os.sep in program:
        if not (os.path.isfile(program) and os.access(program, os.X_OK)):
            raise UsageError(f"cannot run '{program}': no such executable file")
    elif shutil.which(program) is None:
        raise UsageError(
            f"cannot run '{program}': no such program on PATH; check the name, or give its path"
        )

