"""Every status line the user reads from reentr: on stderr behind a stable `reentr:` prefix,
and entr's `-s` status line on stdout. The target's own output is never touched."""

from __future__ import annotations

import os
import shlex
import signal
import sys
import time
from collections.abc import Callable
from typing import TextIO

from reentr import loops
from reentr.config import PORT_HINT_S, Config, Probe, ProbeKind, WatchTree
from reentr.events import Note, Role, Say
from reentr.report.stream import EventStream, Kind
from reentr.timing import Summary, Timeline

PREFIX = "reentr: "
_WATCH_NOTES = frozenset((Note.CHANGED, Note.NOT_CHANGES, Note.OUTPUTS, Note.STORM, Note.LOOP,
                          Note.DIRECTORY_ALTERED, Note.WATCHER_FAILED))
"""What the watch saw; every other note is of a build or a target."""
_BOLD, _RED, _RESET = "\x1b[1m", "\x1b[31m", "\x1b[0m"


def use_colour(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    return not os.environ.get("NO_COLOR") and stream.isatty()


class Reporter:
    """Words the policy's `Say` actions, and remembers what a later line needs to say."""

    def __init__(
        self,
        config: Config,
        err: TextIO | None = None,
        out: TextIO | None = None,
        events: TextIO | None = None,
        *,
        service: str | None = None,
        label: str = "",
    ):
        self._config = config
        self._err = err or sys.stderr
        self._out = out or sys.stdout
        self._stream = EventStream(events, service)
        """`reentr up`: every event names the service it speaks for."""
        self._service = service
        self._label = label
        """`reentr up`: what each of its lines begins with (the service's name, padded)."""
        self._serving_since: str | None = None
        self._colour = use_colour(self._err)
        self.desktop: Callable[[str, str], None] = lambda title, body: None
        """`--notify`: sends a desktop notification (the runner gives it one that starts
        notify-send as one of reentr's own processes)."""

    def event(self, kind: Kind, **fields: object) -> None:
        """One object of the `--events` stream (`stream.py`)."""
        self._stream.write(kind, **fields)

    def restarted(self, number: int, timeline: Timeline) -> None:
        """The line after each restart, and its `restart` event."""
        stages = timeline.stages_ms()
        total = timeline.total_ms()
        self.event(Kind.RESTART, number=number, trigger=timeline.trigger, asked=timeline.asked,
                   total_ms=round(total, 3), **{f"{k}_ms": round(v, 3) for k, v in stages.items()},
                   builds=timeline.builds, cancelled_builds=timeline.cancelled,
                   superseded=timeline.superseded, kept_fds=timeline.kept)
        config = self._config
        what = self._what()
        shown: tuple[str, ...] = ("detect", "wait", "build", "stop", "spawn", "ready")
        done, note = "ready", ""
        if config.signal is not None:
            done, shown = f"signalled ({config.signal.name})", ("detect", "wait", "build")
        elif config.ready is None:
            done, shown, note = "spawned", shown[:-1], "; no readiness probe"
        elif config.handoff:
            # The old target is stopped after the new one is ready: not part of the restart;
            # `switch` is from then until the new one took a connection (when it was seen).
            shown = ("detect", "wait", "build", "spawn", "ready", "switch")
            if timeline.served is not None:
                done = "served"
        whole = _whole_ms({stage: stages[stage] for stage in (*shown, "other")}, total)
        other = whole.pop("other")
        # `wait` (for a dependency's restart, under `reentr up`) only when there was one, and
        # `switch` only when it was seen.
        shown = tuple(stage for stage in shown if (
            stage != "wait" or whole[stage]) and (stage != "switch" or timeline.served))
        parts = [f"{stage} {whole[stage]}" for stage in shown]
        if timeline.builds > 1:
            index = shown.index("build")
            parts[index] += (f" ({timeline.builds} runs, {timeline.cancelled} cancelled)"
                             if timeline.cancelled else f" ({timeline.builds} runs)")
        if other:
            parts.append(f"other {other}")
        if timeline.superseded:
            # Starts replaced by this one before they were ready: no restarts of their own.
            note += f"; {timeline.superseded} superseded"
        if config.fd_store:
            note += f"; kept {timeline.kept} fd{'s' * (timeline.kept != 1)}"
        where = (f" {_relative(timeline.trigger)}" if timeline.trigger
                 else f", asked by {timeline.asked}" if timeline.asked else "")
        self.line(f"{what} #{number} {done} in {round(total)} ms ({', '.join(parts)}{note})"
                  f"{where}")
        if config.notify:
            self.desktop(f"reentr: {what} #{number} {done}", f"in {total:.0f} ms{where}")

    def not_ready(self, pid: int, probe: Probe) -> None:
        if self._config.handoff:
            # A new target of a handoff is then stopped (the `rolled-back` line says so).
            hint = "; with --handoff, the answer must name the new PID" * (
                probe.kind is ProbeKind.URL)
            self.error(f"the target (pid {pid}) was not ready within {probe.timeout:g}s "
                       f"({probe.describe()}{hint})")
            return
        self.error(
            f"warning: the target (pid {pid}) was not ready within {probe.timeout:g}s "
            f"({probe.describe()}); it keeps running, and this restart is left out of the "
            "figures (see --ready-timeout)"
        )

    def summary(self, summary: Summary) -> None:
        """The table printed on exit: p50, p95 and max of each stage, in milliseconds."""
        if not summary.restarts:
            return
        count = len(summary.restarts)
        what = self._what()
        title = f"{count} {what}{'s' * (count != 1)}, in ms:"
        self.line(f"{title:<24}{'p50':>6}  {'p95':>6}  {'max':>6}")  # over the columns
        for stage, p50, p95, high in summary.rows():
            self.line(f"  {stage:<22}{p50:>6.0f}  {p95:>6.0f}  {high:>6.0f}")

    def line(self, text: str, *, always: bool = False) -> None:
        """Print one status line, unless `--quiet` (errors are `always`)."""
        if always or not self._config.quiet:
            prefix = f"{_BOLD}{PREFIX}{_RESET}" if self._colour else PREFIX
            self._err.write(self._label + prefix + text + "\n")
            self._err.flush()

    def error(self, text: str) -> None:
        self.line(f"{_RED}{text}{_RESET}" if self._colour else text, always=True)

    def watching(self, files: int, dirs: int) -> None:
        what = f"{files} file{'s' * (files != 1)}"
        if self._config.dir_watch:
            what += f" and {dirs} director{'ies' if dirs != 1 else 'y'}"
        self.line(f"watching {what}")

    def watching_tree(self, dirs: int, poll: float | None) -> None:
        how = f"polling every {poll:g}s" if poll is not None else "inotify"
        self.line(f"watching {dirs} director{'ies' if dirs != 1 else 'y'} ({how}; ignored "
                  "directories are not watched)")

    def started(self, role: Role, pid: int) -> None:
        if role is Role.TARGET:
            self._serving_since = time.strftime("%H:%M:%S")

    def strays(self, found: list[tuple[int, str]]) -> None:
        """Processes that had left their run's process group and outlived it: stopped."""
        count = len(found)
        names = ", ".join(f"{pid} ({shown(name)})" for pid, name in found)
        self.error(f"stopping {count} process{'es' * (count != 1)} that had left "
                   f"{'their' if count != 1 else 'its'} process group and outlived the run: "
                   f"{names}")

    def ignores_stop_signal(self, pid: int, signal_name: str) -> None:
        self.error(
            f"warning: the target (pid {pid}) ignores {signal_name}; it will be killed with "
            f"SIGKILL after {self._config.grace:g}s (choose another with --stop-signal)"
        )

    def say(self, note: Say) -> None:
        """The words of a `Say` the policy decided."""
        if note.what in _WATCH_NOTES:
            self._say_watch(note)
        else:
            self._say_process(note, self._name(note.role))

    def _say_watch(self, note: Say) -> None:
        """What the watch saw: changes, what was not one, feedback loops, a failed watch."""
        match note.what:
            case Note.CHANGED:
                if self._config.verbose:
                    self.line(f"changed: {_some_paths(note.paths)}{note.detail}")
            case Note.NOT_CHANGES:
                if self._config.verbose:
                    self.line(f"not changes (what the runs made, or a temporary gone again): "
                              f"{_some_paths(note.paths)}")
            case Note.OUTPUTS:
                self.line(_outputs(note.paths, isinstance(self._config.watch, WatchTree)))
            case Note.STORM:
                path = _relative(note.detail)
                self.error(f"{path} changed just as the program started, {loops.STORM_ROUNDS} "
                           "times in a row, restarting it each time. If the program writes it, "
                           f"{self._ignore_fix(path)}; or give the program a readiness probe, "
                           "and what it writes as it starts is its own")
            case Note.LOOP:
                path = _relative(note.detail)
                fix = self._ignore_fix(path)
                self.error(f"{path} is written again by every run, even one made for it alone: "
                           "no longer reacting to its changes while a run could write it (an "
                           f"edit made while nothing runs still counts). If it is an output, "
                           f"{fix}; if it is an input, run with --no-loop-guard")
            case Note.DIRECTORY_ALTERED:
                self.error("directory altered")
            case Note.WATCHER_FAILED:
                self.error(f"watching failed: {note.detail}")

    def _say_process(self, note: Say, name: str) -> None:
        """What became of a build or a target: exited, failed, stopped, handed off."""
        match note.what:
            case Note.EXITED:
                self._exited(name, note.status or 0, held=note.role is Role.TARGET,
                             ran_s=note.seconds)
            case Note.BUILD_FAILED:
                self._build_failed(note.status or 0)
            case Note.START_FAILED if note.role is Role.TARGET and self._config.build is not None:
                self.error(f"cannot start {name} after the build: {note.detail}; does the "
                           "build write it? The next change builds again")
            case Note.START_FAILED:
                self.error(f"cannot start {name}: {note.detail}")
            case Note.PORT_TAKEN:
                self.error(
                    f"{name} would use the port of the socket reentr holds ({note.detail}) and "
                    "exited: a program that binds the port itself is refused it (address "
                    "already in use), and clients wait on reentr's socket. Give it the socket "
                    "(fd 3, LISTEN_FDS=1: uvicorn --fd 3, gunicorn --bind fd://3), or run it "
                    "without --socket")
            case Note.KILLED:
                self.error(
                    f"{name} did not stop within {note.seconds:g}s of "
                    f"{self._config.stop_signal.name if note.role is Role.TARGET else 'SIGTERM'}"
                    "; sent SIGKILL to its process group"
                )
            case Note.SIGNALLED:
                self.line(f"sent {signal.Signals(note.signum or 0).name} to {name}")
            case Note.HANDED_OFF:
                if self._config.verbose and note.pid:
                    self.line(f"handed off: stopping the old target (pid {note.pid})")
            case Note.ROLLED_BACK:
                serving = (f"the old target (pid {note.pid}) keeps serving" if note.pid
                           else "nothing is serving")
                self.error(f"rolled back: the new target is stopped; {serving}; the next "
                           "change tries again")

    def _build_failed(self, status: int) -> None:
        self.event(Kind.BUILD_FAILED)
        # Its output has just been shown, once, as it came (process.start).
        since = (f"still serving the build from {self._serving_since}"
                 if self._serving_since else "nothing is running yet")
        self.error(f"build failed ({describe_status(status)}); {since}; the next change "
                   "builds again")
        if self._config.notify:
            self.desktop("reentr: build failed", describe_status(status))

    def _ignore_fix(self, path: str) -> str:
        """How the user says for good that `path` is not to be watched."""
        if not isinstance(self._config.watch, WatchTree):
            return "leave it off the list"
        if self._service is not None:
            return f'ignore = ["{path}"] in the service\'s table, or a .gitignore line'
        return f"--ignore {path}, or a .gitignore line"

    def _exited(
        self, name: str, status: int, *, held: bool = False, ran_s: float | None = None
    ) -> None:
        """A process ended by itself after `ran_s`; `held`: the target, whose socket reentr
        still holds."""
        config = self._config
        if config.shell and config.runs_to_completion:
            # entr -s prints this on stdout after each run (entr.c, print_child_status).
            shell = os.path.basename(os.environ.get("SHELL", "/bin/sh"))
            verdict = (
                f"returned exit code {status}" if status >= 0
                else f"terminated by signal {-status}"
            )
            self._out.write(f"{shell} {verdict}\n")
            self._out.flush()
        elif not config.runs_to_completion or status != 0:
            waits = ""
            if held and config.sockets and not config.runs_to_completion:
                # Nothing takes the connections now: they wait, and a client seems to hang.
                waits = (f"; connections to {', '.join(s.describe() for s in config.sockets)} "
                         "wait on the socket reentr holds until it starts again")
                if status != 0 and ran_s is not None and ran_s < PORT_HINT_S \
                        and not config.port_named:
                    # Failed as it started: perhaps it bound the port itself (EADDRINUSE),
                    # its port set in its code, where reentr cannot see it (`PORT_TAKEN`).
                    waits += (" (a program that binds the port itself fails so: it must take "
                              "the socket as fd 3, LISTEN_FDS)")
            self.line(f"{name} exited ({describe_status(status)}){waits}")

    def _what(self) -> str:
        """What one start of the target is called: a restart, or (entr without -r) a run."""
        return "run" if self._config.runs_to_completion else "restart"

    def _name(self, role: Role | None) -> str:
        if role is Role.BUILD:
            return f"the build '{self._config.build}'"
        command = self._config.command
        text = command[0] if self._config.shell else shlex.join(command)
        return f"'{text}'"


def _whole_ms(parts: dict[str, float], total: float) -> dict[str, int]:
    """Whole milliseconds that add up to the rounded total, each within 1 ms of its value:
    every part rounded down, then the milliseconds still missing go to the largest remainders.
    (A stage that is hidden from the line, such as `stop` with --handoff, counts in `other`.)"""
    parts = {**parts, "other": parts["other"] + total - sum(parts.values())}
    whole = {name: int(value) for name, value in parts.items()}
    missing = round(total) - sum(whole.values())
    for name in sorted(parts, key=lambda n: whole[n] - parts[n])[:max(missing, 0)]:
        whole[name] += 1
    return whole


_LISTED = 5
"""How many paths of a batch `-v` names; a larger batch is a count and the first ones."""


def _some_paths(paths: tuple[str, ...]) -> str:
    named = some([_relative(p) for p in paths], _LISTED)
    return named if len(paths) <= _LISTED else f"{len(paths)} files: {named}"


_COMMITTED = (".lock", "-lock.json", ".lock.json", "-lock.yaml", ".sum")
"""Generated files that projects commit (Cargo.lock, package-lock.json, go.sum): no .gitignore
line is offered for them."""


def _outputs(paths: tuple[str, ...], tree: bool) -> str:
    """The line that says, once, what reentr took as the runs' outputs, and how to make it
    lasting."""
    names = [_relative(p.rstrip("/")) + ("/" if p.endswith("/") else "") for p in paths]
    line = f"taking these as the runs' outputs, not changes: {some(names, _LISTED)}"
    ignorable = [n if n.startswith("/") else "/" + n for n in names
                 if n.endswith("/") or not n.endswith(_COMMITTED)]
    if not tree or not ignorable:
        return line
    listed = " ".join(ignorable[:_LISTED]) + (
        f" and {len(ignorable) - _LISTED} more" if len(ignorable) > _LISTED else "")
    # One pattern a line in the file: a comma between them would be read as part of one.
    return f"{line} (to say it for good, in .gitignore: {listed})"


def some(names: list[str], most: int) -> str:
    """The first `most` names, and how many more there are: `a, b and 3 more`."""
    listed = ", ".join(names[:most])
    return listed + (f" and {len(names) - most} more" if len(names) > most else "")


def _relative(path: str) -> str:
    """A path relative to the working directory when it is inside it, as `shown`."""
    relative = os.path.relpath(path)
    return shown(path if relative.startswith("..") else relative)


def shown(name: str) -> str:
    """A file name as a status line prints it: a byte that is not UTF-8 as `\\xff`, a control
    character escaped (`\\n`, `\\x1b`), so no name can break a line or drive the terminal."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape(char) for char in text)


def _escape(char: str) -> str:
    special = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
    if char in special:
        return special[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def describe_status(status: int) -> str:
    """Say how a process ended, from a `Popen.returncode` (negative: killed by a signal)."""
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"


_NODE_FIX = "run the program itself, as in -- node server.js"
_LAUNCHERS = (
    ("go", "run", "build, then run the binary, as in --build 'go build -o app .' -- ./app"),
    ("npm", None, _NODE_FIX), ("yarn", None, _NODE_FIX), ("pnpm", None, _NODE_FIX),
)
"""Commands that run the program as a child of their own (`go run` after building it, a
package manager's script through a shell): the command, the subcommand that does it (None:
any), and what to run instead."""


def launcher_note(config: Config) -> str | None:
    """What to say when the command runs the program as a child of its own while reentr holds
    sockets: the program's PID is then not LISTEN_PID, and a server that checks it (as
    sd_listen_fds does) ignores the sockets and binds the port itself, which reentr holds."""
    words = config.command[0].split() if config.shell else list(config.command)
    if not config.sockets or len(words) < 2:
        return None
    name = os.path.basename(words[0])
    fix = next((fix for launcher, subcommand, fix in _LAUNCHERS
                if launcher == name and subcommand in (None, words[1])), None)
    if fix is None:
        return None
    return (f"note: `{name} {words[1]}` runs your program as a child of its own, so "
            f"LISTEN_PID names {name}, not your program; a server that checks it ignores the "
            f"socket and binds the port itself (address already in use): {fix}")
