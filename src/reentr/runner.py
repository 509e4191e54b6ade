"""The loop: owns the event queue and the timers, feeds `policy.step`, carries out its actions.

It is the one place that blocks, and it blocks only on the queue. Every thread (watcher, keys,
reapers) and every signal handler only puts events on that queue.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import queue
import re
import select
import shutil
import signal
import time
from collections import deque
from collections.abc import Mapping
from contextlib import ExitStack
from functools import partial

from reentr import policy, process, ready, signals, terminal, watch
from reentr.config import Config, ProbeKind, WatchList
from reentr.events import (
    Action,
    Began,
    ClearScreen,
    Event,
    Exit,
    FilesChanged,
    GroupEmptied,
    JobStopped,
    ProcessExited,
    ProcessStarted,
    ProcessStartFailed,
    ReadyTimedOut,
    Restarted,
    Role,
    Say,
    SetTimer,
    SignalGroup,
    SignalReceived,
    Start,
    TargetReady,
    TimerFired,
)
from reentr.report import Reporter
from reentr.sockets import Held
from reentr.timing import Summary

PLACEHOLDER = "/_"
CHANGED = "REENTR_CHANGED"
"""The environment variable that gives the command every file changed since its last start:
absolute paths, one per line, the first written first (README)."""
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


class EventQueue:
    """The loop's queue, which it can wait on without ever missing a wakeup.

    Every `put`, and every signal (through `signal.set_wakeup_fd`, in `signals.py`), writes a
    byte to a pipe the loop `select`s on. Blocking in `queue.get` instead would lose a signal
    that arrives just before the wait begins: Python runs its handler only at the next
    bytecode, which would come when the wait times out, possibly a whole stop timeout later.
    """

    def __init__(self) -> None:
        self._items: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._wake_r, self.wake_fd = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self.wake_fd, False)

    def put(self, item: Event) -> None:
        self._items.put(item)
        with contextlib.suppress(BlockingIOError):  # a full pipe is enough of a wakeup
            os.write(self.wake_fd, b"\0")

    def get(self, timeout: float | None) -> Event | None:
        """The next event, or None once `timeout` seconds have passed without one."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                return self._items.get_nowait()
            except queue.Empty:
                pass
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            ready, _, _ = select.select([self._wake_r], [], [], left)
            if ready:
                with contextlib.suppress(BlockingIOError):
                    while os.read(self._wake_r, 4096):
                        pass

    def close(self) -> None:
        os.close(self._wake_r)
        os.close(self.wake_fd)


def run(
    config: Config, reporter: Reporter, environ: Mapping[str, str] | None = None,
    sockets: Held | None = None,
) -> int:
    """Watch, run and restart as `config` says, until something ends the run; return the
    exit status. On the way out every child's process group is gone. `sockets` are the
    `--socket` sockets, already bound, which every start of the target inherits."""
    loop = _Loop(config, reporter, dict(os.environ if environ is None else environ), sockets)
    return loop.run()


class _Loop:
    def __init__(
        self, config: Config, reporter: Reporter, environ: dict[str, str], sockets: Held | None
    ):
        self.config = config
        self.reporter = reporter
        self.environ = environ
        self.sockets = sockets
        self.notifier: ready.Notifier | None = None
        self.events = EventQueue()
        self.timers: list[tuple[float, int, TimerFired]] = []
        self.children: dict[int, process.Child] = {}
        self.exits_seen: set[int] = set()
        """The children whose leader's `ProcessExited` the loop has processed."""
        self.warned_ignores = False
        self.term: terminal.Terminal | None = None
        self.guardian = process.Guardian(reporter.error)
        self.waiters: dict[int, ready.Waiter] = {}
        self.summary = Summary()
        self.build_argv = None if config.build is None else [
            "/bin/sh", "-c", _exec_form(config.build, environ.get("PATH"))]
        """The build's command, worked out once (it looks the program up on PATH)."""

    def run(self) -> int:
        process.become_subreaper()
        with ExitStack() as stack:
            stack.callback(self.events.close)
            stack.callback(self.guardian.close)
            stack.callback(self._stop_strays, wait=True)
            stack.callback(self.reporter.summary, self.summary)
            if self.config.ready is not None and self.config.ready.kind is ProbeKind.NOTIFY:
                self.notifier = ready.Notifier()
                stack.callback(self.notifier.close)
            stack.enter_context(signals.forwarded(self.events, self.events.wake_fd))
            stack.enter_context(watch.watching(self.config, self.events, self.reporter))
            self.term = stack.enter_context(
                terminal.opened(self.events, self.config.interactive))
            try:
                return self._loop()
            finally:
                # Reached with children only when something went wrong (policy exits only
                # once every group is gone): never leave one behind.
                for pid in list(self.children):
                    process.signal_group(pid, signal.SIGKILL)
        raise AssertionError("unreachable")  # pragma: no cover (ExitStack swallows nothing)

    def _loop(self) -> int:
        state = policy.initial()
        immediate: deque[Event] = deque([Began()])
        held: list[Event] = []
        while True:
            event = immediate.popleft() if immediate else self._next_event()
            if isinstance(event, JobStopped) or event == SignalReceived(signal.SIGTSTP):
                self._suspend()  # Ctrl-Z: job control, which decides nothing
                continue
            if (isinstance(event, FilesChanged) and self.config.loop_guard
                    and self._exit_in_flight()):
                # A program that wrote and exited at once: its exit, on its way from the
                # reaper, happened before this batch was seen, and the loop guard must know
                # of it to tell the program's own write from the user's.
                held.append(event)
                continue
            state, actions = policy.step(self.config, state, event, time.monotonic_ns())
            if isinstance(event, ProcessExited):
                self.exits_seen.add(event.pid)
                if self.term is not None and self.term.holder == event.pid:
                    self.term.take_back()
                    if event.status == -signal.SIGINT:
                        # Ctrl-C went to the utility, which held the terminal: as in entr,
                        # reentr quits once it has ended.
                        immediate.append(SignalReceived(signal.SIGINT))
                if held and not self._exit_in_flight():
                    immediate.extend(held)
                    held.clear()
            if isinstance(event, GroupEmptied):
                # Before the actions: an Exit among them must not leave a gone group here,
                # where the cleanup below would signal a process group id that may be reused.
                self.children.pop(event.pid, None)
                self.exits_seen.discard(event.pid)
            self._record_event(event)
            for action in actions:
                self._record_action(action)
                match action:
                    case Exit(status=status):
                        return status
                    case Start(role=role, trigger=trigger, changed=changed):
                        immediate.append(self._start(role, trigger, changed))
                    case SignalGroup(role=role, pid=pid, signum=signum, stop=stop):
                        self._signal(role, pid, signum, stop)
                    case SetTimer(name=name, pid=pid, seconds=seconds):
                        deadline = time.monotonic() + seconds
                        heapq.heappush(
                            self.timers, (deadline, id(action), TimerFired(name, pid))
                        )
                    case ClearScreen(level=level):
                        terminal.clear_screen(level)
                    case Say():
                        self.reporter.say(action)
                    case Restarted(number=number, timeline=timeline):
                        self.summary.add(timeline)
                        self.reporter.restarted(number, timeline)
            if isinstance(event, GroupEmptied):
                # After the actions, so that the next start does not wait for this look.
                self._stop_strays(wait=False)

    def _record_event(self, event: Event) -> None:
        """Write what `event` says happened to the event stream, and let a probe go once its
        target is gone."""
        match event:
            case FilesChanged(paths=paths):
                self.reporter.event("change", paths=list(paths))
            case ProcessStarted(role=role, pid=pid):
                self.reporter.event("spawned", role=role.value, pid=pid)
            case TargetReady(pid=pid):
                self.reporter.event("ready", role=Role.TARGET.value, pid=pid)
            case ReadyTimedOut(pid=pid):
                assert self.config.ready is not None
                self.reporter.event("ready_timeout", role=Role.TARGET.value, pid=pid)
                self.reporter.not_ready(pid, self.config.ready)
            case ProcessExited(role=role, pid=pid, status=status):
                self.reporter.event("exited", role=role.value, pid=pid, status=status)
                if pid in self.waiters:
                    self.waiters[pid].cancel()
            case GroupEmptied(pid=pid):
                self.waiters.pop(pid, None)

    def _record_action(self, action: Action) -> None:
        match action:
            case Start(role=role):
                self.reporter.event("start", role=role.value)
            case SignalGroup(role=role, pid=pid, signum=signum, stop=stop):
                self.reporter.event("signal", role=role.value, pid=pid, signal=signum.name,
                                    stop=stop)
                if stop and pid in self.waiters:
                    self.waiters[pid].cancel()

    def _next_event(self) -> Event:
        while True:
            timeout = None
            if self.timers:
                timeout = self.timers[0][0] - time.monotonic()
                if timeout <= 0:
                    return heapq.heappop(self.timers)[2]
            event = self.events.get(timeout)
            if event is not None:
                return event

    def _start(self, role: Role, trigger: str | None, changed: tuple[str, ...]) -> Event:
        argv = self._argv(role, trigger)
        probe = self.config.ready if role is Role.TARGET else None
        waiter = None
        if probe is not None:
            waiter = ready.Waiter(probe, self.events, names_pid=self.config.handoff,
                                  notifier=self.notifier)
        # Always set, so a value reentr itself inherited never reaches the command.
        extra = {CHANGED: "\n".join(changed)}
        if waiter is not None and waiter.probe.kind is ProbeKind.LINE:
            # Through a pipe, Python would hold the line back in its buffer (README).
            extra["PYTHONUNBUFFERED"] = self.environ.get("PYTHONUNBUFFERED", "1")
        if role is Role.TARGET and self.notifier is not None:
            extra["NOTIFY_SOCKET"] = self.notifier.path
        sockets = self.sockets if role is Role.TARGET else None
        if sockets is not None:
            extra.update(sockets.env())
        env = process.child_env(self.environ, extra)
        tty = self._terminal_for(role)
        if tty is not None and self.term is not None:
            self.term.hand_over()  # before the child exists: it takes the terminal at once
        try:
            if sockets is not None:
                argv = sockets.wrap(argv, env)
            child = process.start(
                role, argv, self.events, env, self.guardian,
                to_stderr=role is Role.BUILD or self.config.stdout_to_stderr,
                on_line=waiter.line if waiter and waiter.probe.kind is ProbeKind.LINE else None,
                pass_fds=sockets.fds if sockets is not None else (),
                tty=tty, foreground=None if tty is None else partial(terminal.in_foreground, tty),
            )
        except OSError as error:
            if tty is not None and self.term is not None:
                self.term.take_back()  # it may have taken the terminal before its exec failed
            return ProcessStartFailed(role, f"{argv[0]}: {error.strerror or error}")
        self.children[child.pid] = child
        if tty is not None and self.term is not None:
            self.term.holder = child.pid
        if waiter is not None:
            waiter.started(child.pid)
            self.waiters[child.pid] = waiter
        self.reporter.started(role, child.pid)
        return ProcessStarted(role, child.pid, child.started_ns)

    def _terminal_for(self, role: Role) -> int | None:
        """The terminal, for a utility that runs to completion while reentr holds it: it gets
        the terminal as its stdin and as the foreground, as in a shell (and as in entr). With
        -r or --signal its stdin stays /dev/null, as in entr."""
        term = self.term
        if (role is not Role.TARGET or self.config.restart or self.config.signal is not None
                or term is None or term.holder is not None or not term.foreground()):
            return None
        return term.fd

    def _argv(self, role: Role, trigger: str | None) -> list[str]:
        config = self.config
        if role is Role.BUILD:
            assert self.build_argv is not None
            return self.build_argv
        watch = config.watch
        if isinstance(watch, WatchList):  # as entr: the first entry, a -d directory if alone
            first = trigger or str((*watch.files, *watch.dirs)[0])
        else:
            first = trigger or str(watch.paths[0])
        if config.shell:
            shell = self.environ.get("SHELL") or "/bin/sh"
            # Exactly as entr -s: the text as written, and the changed file as the shell's $0.
            return [shell, "-c", config.command[0], os.path.realpath(first)]
        argv = list(config.command)
        if PLACEHOLDER in argv:
            # Only the first word that is exactly "/_" is replaced (entr(1)).
            argv[argv.index(PLACEHOLDER)] = os.path.realpath(first)
        return argv

    def _suspend(self) -> None:
        """Ctrl-Z: stop every process of the job, reentr last, as a shell stops a job; once
        continued (`fg`), continue them and give the terminal back to whoever had it."""
        term = self.term
        if term is not None:
            term.keys_off()
        for pid in self.children:
            process.signal_group(pid, signal.SIGSTOP)
        process.suspend_self()
        if term is not None:
            term.give_again()
        for pid in self.children:
            process.signal_group(pid, signal.SIGCONT)
        if term is not None and term.holder is None:
            term.keys_on()

    def _exit_in_flight(self) -> bool:
        """Whether a child's leader has exited but its `ProcessExited` is not processed yet."""
        return any(pid not in self.exits_seen and process.leader_exited(child)
                   for pid, child in self.children.items())

    def _stop_strays(self, *, wait: bool) -> None:
        """Stop the processes that left their group and outlived the run they belong to."""
        for _ in range(5 if wait else 1):  # on the way out, those they leave behind too
            found = process.strays(set(self.children))
            if not found:
                return
            self.reporter.strays(found)
            process.stop_strays(found, self.config.grace, wait=wait)

    def _signal(self, role: Role, pid: int, signum: int, stop: bool) -> None:
        if (
            role is Role.TARGET and stop and not self.warned_ignores
            and process.ignores_signal(pid, signum)
        ):
            self.warned_ignores = True
            self.reporter.ignores_stop_signal(pid, signal.Signals(signum).name)
        process.signal_group(pid, signum)


def _exec_form(command: str, path: str | None) -> str:
    """`exec` before a build that is a single external program, which saves the shell's fork
    and leaves the program as the group's leader; any other command (builtins such as
    `exit 3`, `cd x && make`, redirections, globs) is given to the shell exactly as written."""
    words = command.split()
    if not words or _SHELL_SYNTAX.search(command) or "'" in command or '"' in command:
        return command
    program = words[0]
    if program in _BUILTINS or "=" in program or "$" in command:
        return command
    if shutil.which(program, path=path) is None:
        return command  # a function, an alias or a missing program: the shell says which
    return "exec " + command
