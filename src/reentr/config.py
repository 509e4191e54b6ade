"""Frozen descriptions of a run, and the pure parsing of signals and durations."""

from __future__ import annotations

import enum
import re
from dataclasses import field
from pathlib import Path
from signal import Signals

from reentr.errors import UsageError
from reentr.records import record


@record
class Sources:
    """Which ignore sources apply: each has an off switch on the command line."""

    gitignore: bool = True
    git_exclude: bool = True
    global_file: bool = True
    dot_ignore: bool = True
    builtin: bool = True
    extra: tuple[str, ...] = ()
    """`--ignore` patterns (gitignore syntax, relative to the root)."""



class OnBusy(str, enum.Enum):
    """What a change does while a build is running. No policy loses the final state."""

    RESTART = "restart"
    """Stop the running build and start a new one."""
    QUEUE = "queue"
    """Let the build finish and use its result, then build again."""
    IGNORE = "ignore"
    """Let the build finish undisturbed, discard its outdated result, then build again."""


class OnExit(str, enum.Enum):
    """What reentr does when the target exits by itself."""

    WAIT = "wait"
    RESTART = "restart"
    QUIT = "quit"


@record
class WatchList:
    """entr mode's watch set: the regular files listed on stdin, and directories for `-d`."""

    files: tuple[Path, ...]
    """Absolute paths, in the order they were listed, duplicates removed."""
    dirs: tuple[Path, ...] = ()
    """Directories whose entries `-d` watches (the files' parents and any listed directory)."""

    def watched_dirs(self) -> tuple[Path, ...]:
        """Every directory that needs a kernel watch: the files' parents and `dirs`."""
        seen = dict.fromkeys([*(f.parent for f in self.files), *self.dirs])
        return tuple(seen)


class ProbeKind(str, enum.Enum):
    """How reentr decides that a started target is ready."""

    PORT = "port"
    """A TCP connect to the address succeeds."""
    LINE = "line"
    """The target prints a line (stdout or stderr) that matches the regular expression."""
    URL = "url"
    """An HTTP GET of the URL gets an answer below 500 (a 404 is an answer)."""
    NOTIFY = "notify"
    """The target sends `READY=1` to `$NOTIFY_SOCKET` (systemd's sd_notify protocol)."""


@record
class Probe:
    """A readiness probe: what `ready.py` waits for after each start of the target."""

    kind: ProbeKind
    text: str
    """As given: `HOST:PORT`, the regular expression, or the URL."""
    timeout: float = 30.0
    """Give up waiting after this many seconds, and say so."""

    def describe(self) -> str:
        return f"--ready-{self.kind.value} {self.text}".rstrip()


@record
class SocketSpec:
    """A listening socket that reentr binds once and passes to every start (`--socket`)."""

    name: str
    """Its name in `LISTEN_FDNAMES`: `NAME=` if given, else the port or the file's name."""
    host: str = "127.0.0.1"
    port: int = 0
    path: str | None = None
    """A Unix socket's path (`unix:PATH`); then `host` and `port` are unused."""

    def describe(self) -> str:
        if self.path is not None:
            return f"unix:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@record
class WatchTree:
    """`reentr watch`'s watch set: directory trees, filtered by ignore rules and includes."""

    paths: tuple[Path, ...]
    """Absolute directories (or files) to watch recursively."""
    sources: Sources = field(default_factory=Sources)
    exts: tuple[str, ...] = ()
    globs: tuple[str, ...] = ()
    poll: float | None = None
    """Poll every this many seconds instead of using inotify (`--poll`)."""
    always: tuple[Path, ...] = ()
    """Absolute files whose changes count whatever the ignore rules and filters say (`reentr
    up`: a service's env-file, which is read at each start, and often in .gitignore)."""


@record
class Config:
    """Everything a run needs, built once by `cli/` and never changed."""

    command: tuple[str, ...]
    """The target: argv, or a single shell command line when `shell` is set."""
    watch: WatchList | WatchTree
    restart: bool = False
    """`-r`: a change stops the running target and starts it again."""
    postpone: bool = False
    """`-p`: no start until the first change."""
    all_events: bool = False
    """`-a`: a change during a (non `-r`) run leads to one more run."""
    clear: int = 0
    """`-c` (1) clears the screen before each start; `-cc` (2) the scrollback too."""
    dir_watch: int = 0
    """`-d` (1): exit 2 when a watched directory gains or loses an entry; `-dd` (2): dotfiles too.
    """
    interactive: bool = True
    """Read keys from the terminal (space: run now, q: quit), unless `-n`."""
    shell: bool = False
    """`-s`: run the command with `$SHELL -c`, the changed file as `$0`, as entr does."""
    shell_program: str | None = None
    """The shell of `shell` instead, with nothing for `$0`: a Procfile's processes run with
    `/bin/sh -c`, as foreman and honcho run them."""
    exit_on_exit: bool = False
    """`-z`: exit when the target exits by itself, with its status."""
    build: str | None = None
    """`--build`: a shell command run before every start; the target starts only if it succeeds."""
    on_busy: OnBusy = OnBusy.RESTART
    on_exit: OnExit = OnExit.WAIT
    signal: Signals | None = None
    """`--signal`: send this to the running target instead of restarting it."""
    stop_signal: Signals = Signals.SIGTERM
    delay_run: float = 0.0
    """`--delay-run`: seconds to wait before each start of the target (watchexec's option)."""
    grace: float = 5.0
    """`--stop-timeout`: seconds between the stop signal and SIGKILL."""
    ready: Probe | None = None
    """When a started target counts as ready; without a probe, as soon as it is spawned."""
    sockets: tuple[SocketSpec, ...] = ()
    """`--socket`: bound once, passed to every start of the target as fds 3, 4, ..."""
    port_named: str = ""
    """A held socket's address whose port the command names itself (`runserver
    127.0.0.1:8000`): such a program binds the port itself, which reentr holds; "" if none."""
    fd_store: bool = False
    """`--fd-store`: keep what the target stores with `FDSTORE=1` on its notify socket, and
    pass it to each start after the sockets (systemd's file-descriptor store)."""
    handoff: bool = False
    """`--handoff`: start the new target beside the old one, stop the old once the new is
    ready, and keep the old if the new one fails."""
    quiet: bool = False
    verbose: bool = False
    """Also say what changed, and why a change did nothing."""
    notify: bool = False
    """`--notify`: a desktop notification after each restart and on a failed build."""
    loop_guard: bool = True
    """Stop reacting to a path that the runs keep rewriting (`loops.py`); `--no-loop-guard`."""
    stdout_to_stderr: bool = False
    """`--events -`: reentr's stdout is the event stream, so the children's stdout goes to
    its stderr and the stream stays pure JSON lines."""
    unwatched: frozenset[str] = frozenset()
    """Absolute paths that never count as changes: reentr's own files (the `--events` file, a
    `--socket` file) and, with `--build`, the target's executable, which the build writes."""
    gather_ms: int = 1600
    """The longest a burst of changes is gathered before reentr acts on it."""
    debounce_ms: int = 2
    """`--debounce`: a burst ends once no file event has come for this long. 2 ms is chosen
    from `benchmarks/latency.py` and `benchmarks/storm.py`: every detection waits this long,
    and an editor's save, a burst of writes and a 200-file checkout are still one change each
    (an event that leaves a file as it was never counts: `watch/contents.py`). 1 ms saves a
    millisecond a change but split a program's 50 writes in a row into two runs 2.5 % of the
    time on a quiet machine, against 0-1 % at 2 ms."""

    @property
    def runs_to_completion(self) -> bool:
        """entr without `-r` (nor `--signal`): the utility runs to its end, is never stopped by
        a change, and each start is a run rather than a restart."""
        return not self.restart and self.signal is None


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$")


def parse_duration(text: str, option: str) -> float:
    """Parse `500ms`, `2s`, `1.5` (seconds) or `1m` into seconds."""
    match = _DURATION.match(text)
    if match is None:
        raise UsageError(f"{option}: '{text}' is not a duration; write it as 500ms, 2s or 1m")
    value, unit = float(match.group(1)), match.group(2) or "s"
    return value * {"ms": 0.001, "s": 1.0, "m": 60.0}[unit]


def parse_signal(text: str, option: str) -> Signals:
    """Parse a signal given as `SIGHUP`, `hup`, `Hup` or `1`."""
    name = text.strip().upper()
    if name.isdigit():
        try:
            return Signals(int(name))
        except ValueError:
            pass
    else:
        if not name.startswith("SIG"):
            name = "SIG" + name
        found = getattr(Signals, name, None)
        if isinstance(found, Signals):
            return found
    raise UsageError(
        f"{option}: unknown signal '{text}'; use a name such as SIGHUP, HUP or a number such as 1"
    )


def parse_address(text: str, option: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """Parse `PORT`, `HOST:PORT` or `[IPV6]:PORT`; HOST defaults to `default_host`."""
    host, _, port = text.strip().rpartition(":")
    host = host.strip("[]") or default_host
    if port.isdigit() and 0 < int(port) < 65536:
        return host, int(port)
    raise UsageError(f"{option}: '{text}' is not an address; write PORT or HOST:PORT, e.g. 8000")


def parse_socket(text: str) -> SocketSpec:
    """Parse `--socket`: `[NAME=][HOST:]PORT` or `[NAME=]unix:PATH`."""
    name, _, address = text.partition("=") if "=" in text.split(":", 1)[0] else ("", "", text)
    if address.startswith("unix:"):
        path = address[len("unix:"):]
        if not path:
            raise UsageError(f"--socket: '{text}' has no path; write unix:PATH, e.g. unix:app.sock")
        absolute = str(Path(path).absolute())
        return SocketSpec(name or Path(path).name, path=absolute)
    host, port = parse_address(address, "--socket")
    return SocketSpec(name or str(port), host, port)


def check_readiness(
    probe: Probe | None, sockets: tuple[SocketSpec, ...], handoff: bool, *, signal: bool
) -> None:
    """Refuse a combination whose readiness could not come from the new process.

    reentr's own socket completes every connect to a `--socket` address, so a port probe of
    it proves nothing; during a handoff the old process answers too, so only the new process
    can say it is ready: a line it prints, `READY=1`, or an HTTP answer that names its PID.
    """
    if handoff and not sockets:
        raise UsageError("--handoff needs --socket: the old and the new target serve on the "
                         "socket reentr holds, e.g. --socket 8000 --handoff")
    if handoff and signal:
        raise UsageError("--handoff starts a new target; --signal keeps the old one: give one")
    if handoff and probe is None:
        raise UsageError("--handoff needs a readiness probe of the new target: --ready-line "
                         "REGEX, --ready-notify or --ready-url URL (an answer naming its PID)")
    if probe is not None and probe.kind is ProbeKind.PORT:
        address = parse_address(probe.text, "--ready-port")
        for spec in sockets:
            if spec.path is None and (spec.host, spec.port) == address:
                raise UsageError(
                    f"--ready-port {probe.text} would be answered by reentr's own socket "
                    f"(--socket {spec.describe()}); use --ready-line, --ready-notify or "
                    "--ready-url instead"
                )


def parse_probe(kind: ProbeKind, text: str, timeout: float) -> Probe:
    """Check a readiness probe's argument now, so a bad one is a usage error, not a hang."""
    option = f"--ready-{kind.value}"
    if kind is ProbeKind.PORT:
        parse_address(text, option)
    elif kind is ProbeKind.LINE:
        try:
            re.compile(text)
        except re.error as error:
            raise UsageError(f"{option}: '{text}' is not a regular expression: {error}") from None
    elif kind is ProbeKind.URL:
        import urllib.parse  # here: a start without --ready-url needs none of it

        url = urllib.parse.urlsplit(text)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise UsageError(f"{option}: '{text}' is not an http:// or https:// URL")
    return Probe(kind, text, timeout)


def signal_names() -> list[str]:
    """The signal names this platform knows, for help text and shell completion."""
    return sorted({s.name for s in Signals})


def shell_status(status: int) -> int:
    """A `Popen.returncode` as a shell reports it: the status, or 128+N for signal N."""
    return 128 - status if status < 0 else status


def port_named(command: tuple[str, ...], shell: bool, specs: tuple[SocketSpec, ...]) -> str:
    """The address of a held socket whose port the command names (`--port 8000`,
    `127.0.0.1:8000`, `PORT=8000`), or that Django's `runserver` takes by default (8000): a
    program told so binds that port itself, which reentr holds (see `Note.PORT_TAKEN`)."""
    words = command[0].split() if shell else list(command)
    for spec in specs:
        if spec.path is not None or not spec.port:
            continue
        port = str(spec.port)
        if any(w == port or w.endswith((f":{port}", f"={port}")) for w in words[1:]):
            return spec.describe()
        if port == "8000" and "runserver" in words and not any(
                w[:1].isdigit() or ":" in w for w in words[words.index("runserver") + 1:]):
            return spec.describe()
    return ""


_SHELL_SYNTAX = re.compile(r"[;&|`(){}<>\n*?\[\]~]|\$\(")
_BUILTINS = frozenset((
    "!", ".", ":", "[[", "alias", "bg", "break", "builtin", "case", "cd", "command", "continue",
    "coproc", "declare", "eval", "exec", "exit", "export", "fc", "fg", "for", "function",
    "getopts", "hash", "if", "jobs", "let", "local", "read", "readonly", "return", "select",
    "set", "shift", "source", "time", "times", "trap", "type", "typeset", "ulimit", "umask",
    "unalias", "unset", "until", "wait", "while", "{",
))
"""Shell keywords and builtins that only mean something inside the shell: `exec` cannot
precede them (some systems ship a /usr/bin/cd, which would run and change nothing)."""


def plain_program(command: str) -> str | None:
    """The program a shell command runs, if it is one program given plain words that no
    shell would read otherwise (no quote, expansion, glob, redirection, comment, escape or
    builtin); None for anything else. A build that is one is started without a shell
    (`runner._build_argv`), and one that cannot be run is refused up front."""
    words = command.split()
    if not words or _SHELL_SYNTAX.search(command) or "'" in command or '"' in command:
        return None
    if words[0] in _BUILTINS or "=" in words[0] or "$" in command:
        return None
    return words[0]


PORT_HINT_S = 5.0
"""A target under `--socket` that fails within this many seconds of its start may have been
refused the port it bound itself: said for sure when it names the port (`Note.PORT_TAKEN`),
as a possibility when the port is in its code."""
