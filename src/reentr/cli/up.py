"""`reentr up` and `reentr restart`: several services from one configuration file, each built,
run and restarted alone, and a service restarted from another terminal."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from reentr import configfile, control, sockets
from reentr.cli.commands import (
    app,
    check_build,
    check_program,
    open_events,
    open_store,
    run_config,
    store_slots,
    watch_tree,
    with_own_files,
)
from reentr.cli.compat import Command, parse_defaults, subcommand
from reentr.cli.completion import complete_service
from reentr.cli.options import Events, NonInteractive, Quiet, RunOptions, Verbose, config_kinds
from reentr.config import Config, plain_program
from reentr.errors import ExitStatus, ReentrError, UsageError
from reentr.graph import Graph
from reentr.records import record
from reentr.report import Reporter, launcher_note, use_colour

if TYPE_CHECKING:  # the runner is imported when a run starts: --help and Tab need none of it
    from reentr import runner

PROCFILE = configfile.PROCFILE
"""Run when there is no reentr.toml, as foreman, honcho and overmind run it."""

_COLOURS = (36, 33, 35, 32, 34, 31, 96, 93, 95, 92, 94, 91)
"""ANSI colours of the services' names, the first service's first: cyan, yellow, magenta..."""

ConfigPath = Annotated[
    str | None, typer.Option("--config", metavar="FILE", help="The configuration file (a "
                             "reentr.toml, or a pyproject.toml's [tool.reentr]) instead of the "
                             "nearest one from here up, e.g. dev/reentr.toml.",
                             show_default=False)
]


@app.command(
    "up",
    cls=Command,
    help=(
        "Run the services of the nearest reentr.toml ([services.NAME] tables) or pyproject.toml "
        "([tool.reentr.services.NAME]), or, without either, the Procfile here (with .env): "
        "each starts once those it depends on are ready, and each is rebuilt and restarted "
        "alone when its files change. Naming services runs those and what they depend on."
    ),
)
def up_mode(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None,
        typer.Argument(help="The services to run, with those they depend on (default: all).",
                       metavar="SERVICE", show_default=False,
                       autocompletion=complete_service),
    ] = None,
    events: Events = None,
    non_interactive: NonInteractive = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
    config_file: ConfigPath = None,
) -> int:
    from reentr import runner  # here, not at the top: --help and Tab need none of it

    found = _found(config_file)
    top, services = configfile.services(found)
    services = _chosen(found, services, names or [])
    watch = subcommand(ctx, "watch")
    kinds = config_kinds(watch)
    _refuse_run_keys(top, services)
    defaults = configfile.defaults(top, kinds, set(kinds))
    # The whole run's keys at the top of the file, as on the command line.
    run = _Run(quiet or bool(defaults.pop("quiet", False)),
               verbose or bool(defaults.pop("verbose", False)),
               non_interactive or bool(defaults.pop("non_interactive", False)),
               events or defaults.pop("events", None))
    # A service is a long-running program: a change restarts it unless `restart = false`
    # (a task that runs to its end, such as a test runner).
    configs = [_service_config(watch, service, {
        "restart": True, **defaults, **configfile.defaults(service.options, kinds, set(kinds)),
        **_by_shell(service.options.table.get("command", top.table.get("command")))})
        for service in services]
    if found.path.name == PROCFILE:
        _check_procfile(found, services)
        configs = [dataclasses.replace(config, shell_program="/bin/sh") for config in configs]
    _refuse_shared_sockets(found, services, configs)
    with contextlib.ExitStack() as stack:
        # First: descriptors 3, 4, ... before anything else is opened (sockets.Slots).
        slots, limit = store_slots(stack, configs)
        most = max(len(config.sockets) for config in configs)
        if slots is None and most:
            slots = sockets.Slots(most)
            stack.callback(slots.close)
        # Then the control socket: a second `reentr up` of this file stops here, with nothing
        # bound or printed.
        server = stack.enter_context(control.claimed(control.path_for(found.path)))
        held = [_held(stack, found, service, config, slots)
                 for service, config in zip(services, configs, strict=True)]
        stream = open_events(stack, run.events)
        listed = [_runnable(stack, service, config, sock, slots, limit, stream, run,
                            number=number, width=max(len(s.name) for s in services))
                  for number, (service, config, sock) in enumerate(
                      zip(services, configs, held, strict=True))]
        whole = dataclasses.replace(
            configs[0], interactive=not run.non_interactive, quiet=run.quiet,
            verbose=run.verbose, debounce_ms=min(config.debounce_ms for config in configs),
            grace=max(config.grace for config in configs),
            unwatched=frozenset().union(*(s.config.unwatched for s in listed)),
        )
        reporter = Reporter(whole, events=stream)
        _announce(reporter, found, services, run)
        serve = partial(control.serving, server, [service.name for service in services])
        return runner.run_services(listed, whole, reporter, serve, str(found.path.resolve()))


def _check_procfile(found: configfile.Found, services: list[configfile.Service]) -> None:
    """Refuse a process whose command is one program that cannot be run, as a service table's
    is refused: the shell would say `not found` at every start. A command with shell syntax
    is the shell's to judge, and so is every command where `.env` sets PATH."""
    dotenv = found.path.parent / configfile.ENV_FILE  # the one every process reads
    if dotenv.is_file() and "PATH" in configfile.read_env(dotenv):
        return
    for service in services:
        command = str(service.options.table.get("command", [""])[0])
        program = plain_program(command)
        if program is None:
            continue
        try:
            check_program(str(service.cwd / program) if os.sep in program else program)
        except UsageError as error:
            raise UsageError(f"{found.where}: {service.name}: {error}") from None


@record
class _Run:
    """The keys of the whole run (`reentr up`'s own options, or the file's top level)."""

    quiet: bool
    verbose: bool
    non_interactive: bool
    events: str | None


def _runnable(
    stack: contextlib.ExitStack, service: configfile.Service, given: Config,
    sock: sockets.Held | None, slots: sockets.Slots | None, limit: int, stream: TextIO | None,
    run: _Run, *, number: int, width: int,
) -> runner.Service:
    """A service as the runner runs it: its own reporter (its name, padded, in a colour of its
    own on a terminal), sockets and store."""
    from reentr import runner

    own = with_own_files(given, run.events, str(service.cwd))
    config = dataclasses.replace(own, quiet=run.quiet, verbose=run.verbose)
    label = f"{service.name:<{width}} | "
    if use_colour(sys.stdout) and use_colour(sys.stderr):
        label = f"\x1b[{_COLOURS[number % len(_COLOURS)]}m{label}\x1b[0m"
    reporter = Reporter(config, events=stream, service=service.name, label=label)
    if (note := launcher_note(config)) is not None:
        reporter.line(note)
    store = open_store(stack, config, limit, reporter)
    return runner.Service(
        config, reporter, dict(os.environ), sock, store=store, slots=slots,
        name=service.name, depends_on=service.depends_on, cwd=str(service.cwd),
        label=label.encode(), env=service.env, env_file=service.env_file,
    )


def _announce(reporter: Reporter, found: configfile.Found,
              services: list[configfile.Service], run: _Run) -> None:
    """The lines at the start: a Procfile's, and the services with their numbers."""
    if found.path.name == PROCFILE:
        reporter.line(f"no reentr.toml: running the {PROCFILE}, each process restarted on a "
                      "change anywhere in this tree (git's ignore rules apply); to narrow "
                      "one, write a reentr.toml with a [services.NAME] table (paths, build, "
                      "socket...), which then wins over the Procfile")
    keys = "" if run.non_interactive else (
        " (keys: space restarts all, r then a number restarts one, q quits)")
    reporter.line("services: " + ", ".join(
        f"{number} {service.name}" for number, service in enumerate(services, 1)) + keys)


@app.command(
    "restart",
    cls=Command,
    help="Restart SERVICE in the reentr up that runs this project (found as reentr up finds "
         "its configuration), from another terminal or a script.",
)
def restart_mode(
    name: Annotated[str, typer.Argument(help="The service to restart.", metavar="SERVICE",
                                        show_default=False, autocompletion=complete_service)],
    config_file: ConfigPath = None,
) -> int:
    found = _found(config_file, above=True)
    control.ask(control.path_for(found.path), name)
    return ExitStatus.OK


def _found(config_file: str | None, *, above: bool = False) -> configfile.Found:
    """The configuration: `--config`'s, the nearest reentr.toml (or pyproject.toml with
    [tool.reentr]) here or above, else the Procfile here; with `above` (`reentr restart`,
    which works from anywhere in the project), the nearest Procfile here or above."""
    if config_file is not None:
        return configfile.given(config_file)
    found = configfile.find_services(Path.cwd(), above=above)
    if found is None:
        raise UsageError("no reentr.toml (or pyproject.toml with [tool.reentr]) here or above, "
                         f"and no {PROCFILE} here; write a {PROCFILE} (web: ./server), or a "
                         "reentr.toml with a [services.NAME] table per service (see the README, "
                         "Several services)")
    return found


def _chosen(
    found: configfile.Found, services: list[configfile.Service], names: list[str]
) -> list[configfile.Service]:
    """The services named, with those they depend on, in the order they start."""
    if not names:
        return services
    known = [service.name for service in services]
    for name in names:
        if name not in known:
            raise UsageError(f"no service '{name}' in {found.where}; the services are: "
                             f"{', '.join(known)}")
    graph = Graph.of([(service.name, service.depends_on) for service in services])
    wanted = set(names).union(*(graph.upstream(name) for name in names))
    return [service for service in services if service.name in wanted]


def _service_config(
    watch: Any, service: configfile.Service, values: dict[str, Any]
) -> Config:
    """A service's `Config`, its keys read as `reentr watch` reads its options."""
    where = service.options.where
    command = tuple(values.pop("command", ()) or ())
    if not command:
        raise UsageError(f"{where}: no command; add command = \"...\", the program to run")
    try:
        # The parameters as `reentr watch` would have them, its defaults included.
        params = parse_defaults(watch, values)
        tree = watch_tree(params, service.cwd)
        if service.env_file is not None and service.env_file.is_file():
            # Read at each start: an edit of it restarts the service, wherever it lies, and
            # whether or not .gitignore names it (it often does).
            tree = dataclasses.replace(tree, always=(service.env_file.resolve(),))
        options = RunOptions.of(params, all_events=True)
        if options.shell:
            command = (" ".join(command),)
        if options.build is not None:
            check_build(options.build, service.cwd)
        elif not options.shell:
            program = command[0]
            check_program(str(service.cwd / program) if os.sep in program else program)
        config = run_config(command, tree, _from_cwd(options, service.cwd))
    except ReentrError as error:
        raise UsageError(f"{where}: {error}") from None
    return config


def _from_cwd(options: RunOptions, cwd: Path) -> RunOptions:
    """A Unix socket's relative path is the service's, as its command's is: from its cwd."""
    def based(text: str) -> str:
        name, equals, address = (text.partition("=") if "=" in text.split(":", 1)[0]
                                  else ("", "", text))  # as config.parse_socket reads it
        if address.startswith("unix:") and not os.path.isabs(address[len("unix:"):]):
            address = "unix:" + str(cwd / address[len("unix:"):])
        return name + equals + address
    return dataclasses.replace(options, socket_=[based(text) for text in options.sockets()])


def _held(
    stack: contextlib.ExitStack, found: configfile.Found, service: configfile.Service,
    config: Config, slots: sockets.Slots | None,
) -> sockets.Held | None:
    """The service's sockets, bound; an error names the service and the file."""
    try:
        return stack.enter_context(sockets.held(config.sockets, slots))
    except ReentrError as error:
        raise UsageError(f"{service.options.where}: {error}") from None


_SHELL_SYNTAX = re.compile(r"[;&|`(){}<>\n*?\[\]~$]")
"""What only a shell reads in a command: `$PORT`, `&&`, `|`, `>`, quotes' globs."""


def _by_shell(command: Any) -> dict[str, Any]:
    """A `command` string with shell syntax (`--port $PORT`, `cd web && node server.js`) is
    given to the shell as written, as a Procfile's line and process-compose's `command` are;
    a list, or a string without it, runs the program directly."""
    if isinstance(command, str) and _SHELL_SYNTAX.search(command):
        return {"shell": True, "command": [command]}
    return {}


RUN_KEYS = ("quiet", "verbose", "non-interactive", "events")
"""Keys of the whole `reentr up` run (its own options): at the top of the file only."""


def _refuse_run_keys(top: configfile.Found, services: list[configfile.Service]) -> None:
    """A service's table cannot take a key of the whole run; neither table `clear`, as the
    services share one screen."""
    if "clear" in top.table:
        raise UsageError(f"{top.where}: clear is not for reentr up: its services share one "
                         "screen; remove it")
    for service in services:
        for key in (*RUN_KEYS, "clear"):
            if key in service.options.table:
                where = "remove it" if key == "clear" else (
                    f"give it at the top of {top.path.name}, or on the command line")
                raise UsageError(f"{service.options.where}: {key} is the whole run's, not one "
                                 f"service's: {where}")


def _refuse_shared_sockets(
    found: configfile.Found, services: list[configfile.Service], configs: list[Config]
) -> None:
    """Two services cannot hold one socket."""
    owner: dict[str, str] = {}
    for service, config in zip(services, configs, strict=True):
        for spec in config.sockets:
            where = spec.describe()
            if where in owner:
                raise UsageError(f"{found.where}: services '{owner[where]}' and "
                                 f"'{service.name}' both hold the socket {where}; give each "
                                 "service its own")
            owner[where] = service.name

