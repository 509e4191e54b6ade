"""The loop: owns the one event queue (timers included), feeds `policy.step`, and carries out
its actions.

It is the one place that blocks, and it blocks only on the queue. Every thread (watcher, keys,
reapers) and every signal handler only puts events on that queue.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import queue
import shutil
import signal
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, ExitStack
from dataclasses import field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from reentr import (
    changelist,
    configfile,
    dotenv,
    policy,
    process,
    services,
    signals,
    terminal,
    watch,
)
from reentr.config import Config, ProbeKind, WatchList, WatchTree, plain_program
from reentr.errors import ReentrError
from reentr.events import (
    Action,
    ClearScreen,
    Event,
    Exit,
    FilesChanged,
    GroupEmptied,
    JobStopped,
    Note,
    ProcessExited,
    ProcessStarted,
    ProcessStartFailed,
    Queue,
    ReadyTimedOut,
    Restarted,
    Role,
    Say,
    SetTimer,
    SignalGroup,
    SignalReceived,
    Start,
    TargetReady,
    TargetServes,
    TimerFired,
    Warned,
)
from reentr.graph import Graph
from reentr.records import record
from reentr.report import Kind, Reporter
from reentr.timing import Summary

if TYPE_CHECKING:  # what only a run with sockets, a store or a probe imports
    from reentr import ready
    from reentr.sockets import Held, Slots, Store

PLACEHOLDER = "/_"
_CONFIG_TREE = "\0config"
"""The name of `reentr up`'s watch of its configuration file: no service's (`services.route`
passes a change of a tree that is no service's to nobody)."""


class EventQueue:
    """The loop's one queue: events put by threads and signal handlers, events the loop puts
    for itself, and timers. The loop waits on it without ever missing a wakeup.

    Every `put`, and every signal (through `signal.set_wakeup_fd`, in `signals.py`), writes a
    byte to a pipe the loop `select`s on. Blocking in `queue.get` instead would lose a signal
    that arrives just before the wait begins: Python runs its handler only at the next
    bytecode, which would come when the wait times out, possibly a whole stop timeout later.
    """

    def __init__(self) -> None:
        self._items: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._next: deque[Event] = deque()
        """What the loop itself put (a start's outcome, a held batch): taken before anything
        else, so that the loop sees the consequences of an event before the next one."""
        self._timers: list[tuple[float, int, Event]] = []
        self._count = itertools.count()  # orders timers due at the same moment
        self._wake_r, self.wake_fd = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self.wake_fd, False)

    def put(self, item: Event) -> None:
        """From any thread, or a signal handler."""
        self._items.put(item)
        with contextlib.suppress(BlockingIOError):  # a full pipe is enough of a wakeup
            os.write(self.wake_fd, b"\0")

    def put_next(self, item: Event) -> None:
        """From the loop only: `item` comes before every other event, in the order given."""
        self._next.append(item)

    def put_after(self, seconds: float, item: Event) -> None:
        """From the loop only: `item` comes once `seconds` have passed."""
        heapq.heappush(self._timers, (time.monotonic() + seconds, next(self._count), item))

    def get(self) -> Event:
        """The next event, waiting for one: the loop's own first, then a timer that is due,
        then what threads and signal handlers put."""
        while True:
            if self._next:
                return self._next.popleft()
            now = time.monotonic()
            if self._timers and self._timers[0][0] <= now:
                return heapq.heappop(self._timers)[2]
            try:
                return self._items.get_nowait()
            except queue.Empty:
                pass
            left = self._timers[0][0] - now if self._timers else None
            ready = signals.readable([self._wake_r], left)
            if ready:
                with contextlib.suppress(BlockingIOError):
                    while os.read(self._wake_r, 4096):
                        pass

    def close(self) -> None:
        os.close(self._wake_r)
        os.close(self.wake_fd)


@record
class Service:
    """One program reentr runs and restarts, with its build: a single run's, or one of the
    services of `reentr up`."""

    config: Config
    reporter: Reporter
    environ: Mapping[str, str]
    sockets: Held | None = None
    """Its `--socket` sockets, already bound, which every start of its target inherits."""
    store: Store | None = None
    """`--fd-store`: what its targets store, which every start gets after the sockets."""
    slots: Slots | None = None
    """Where each start finds its sockets and stored descriptors (3, 4, ...): with a store,
    or under `reentr up`."""
    name: str | None = None
    """The service's name under `reentr up`; None for a single run."""
    depends_on: tuple[str, ...] = ()
    """Services that must be ready before it starts, and that stop after it."""
    cwd: str | None = None
    """Where its build and target run; None: reentr's own working directory."""
    label: bytes = b""
    """What each line of its output begins with (`reentr up`): its name, padded."""
    env: Mapping[str, str] = field(default_factory=dict)
    """`reentr up`: its `env` table, as written (`${NAME}` expanded at each start)."""
    env_file: Path | None = None
    """`reentr up`: its `.env` file, read again at each start (an edit of it takes effect at
    the restart it causes)."""


def run(
    config: Config, reporter: Reporter, environ: Mapping[str, str] | None = None,
    sockets: Held | None = None, *, store: Store | None = None, slots: Slots | None = None,
) -> int:
    """Watch, run and restart as `config` says, until something ends the run; return the
    exit status. On the way out every child's process group is gone. `sockets` are the
    `--socket` sockets, already bound, which every start of the target inherits, then what
    `store` keeps (`--fd-store`), placed on `slots`."""
    service = Service(config, reporter, dict(os.environ if environ is None else environ),
                      sockets, store=store, slots=slots)
    return _Loop([service], config, reporter).run()


def run_services(
    listed: list[Service], config: Config, reporter: Reporter,
    control: Callable[[Queue], AbstractContextManager[object]] | None = None,
    read_from: str | None = None,
) -> int:
    """`reentr up`: run every service, each started once those it depends on are ready, with
    one watch for all (`config` gives its settings), until something ends the run; then stop
    them, dependents first. `control` opens the socket of `reentr restart`; `read_from` is the
    configuration file (or Procfile), whose edits take effect only at the next `reentr up`.
    Returns the exit status; on the way out every process of every service is gone."""
    return _Loop(listed, config, reporter, control, read_from).run()


class _Unit:
    """What the loop knows of one service while it runs."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.name = service.name or ""
        self.config = service.config
        self.reporter = service.reporter
        self.state = policy.initial()
        self.waiters: dict[int, ready.Waiter] = {}
        self.summary = Summary()
        self.notifier: ready.Notifier | None = None
        self.warned_ignores = False
        self.dotenv: dict[str, str] = {}
        """The variables of its `.env` file as last read well."""
        config = service.config
        self.build_argv = None if config.build is None else _build_argv(
            config.build, service.environ.get("PATH"))
        """The build's command, worked out once (it looks the program up on PATH)."""

    def environment(self) -> Mapping[str, str]:
        """Its environment for a start: reentr's, then its `.env` file's, read again now (a
        file that cannot be read or has a bad line is said, and the last good one kept), then
        its `env` table."""
        service = self.service
        if service.env_file is None and not service.env:
            return service.environ
        if service.env_file is not None:
            try:
                self.dotenv = configfile.read_env(service.env_file)
            except ReentrError as error:
                self.reporter.error(f"{error}; this start keeps its values as last read")
        known = {**service.environ, **self.dotenv}
        return {**known, **dotenv.expand(service.env, known)}

    def target_running(self) -> bool:
        """Whether its target's process is there (started, or about to be)."""
        return any(slot.starting or slot.leader_alive
                   for slot in (self.state.target, self.state.incoming))


class _Loop:
    def __init__(
        self, listed: list[Service], config: Config, reporter: Reporter,
        control: Callable[[Queue], AbstractContextManager[object]] | None = None,
        read_from: str | None = None,
    ):
        self.units = [_Unit(service) for service in listed]
        self.by_name = {unit.name: unit for unit in self.units}
        self.graph = Graph.of([(unit.name, unit.service.depends_on) for unit in self.units])
        self.config = config
        """The settings of the run as a whole: the watch's, the terminal's."""
        self.reporter = reporter
        self.control = control
        self.read_from = read_from
        """`reentr up`'s configuration file: an edit of it is said (`_loop`)."""
        self.said_edit = 0
        self.said_outputs: set[tuple[str, ...]] = set()
        """The outputs already said, by any service (`_carry_out`)."""
        """When the last edit of it that was said was seen (one line for several services)."""
        self.several = len(listed) > 1 or listed[0].name is not None
        self.events = EventQueue()
        self.lists = changelist.Lists()
        self.children: dict[int, tuple[_Unit, process.Child]] = {}
        """Each live child, with the service it belongs to, by its pid."""
        self.exits_seen: set[int] = set()
        """The children whose leader's `ProcessExited` the loop has processed."""
        self.term: terminal.Terminal | None = None
        self.guardian = process.Guardian(lambda text: self.events.put(Warned(text)))
        for speaker in (reporter, *(unit.reporter for unit in self.units)):
            speaker.desktop = partial(process.notify_desktop, self.guardian)
        self.crowd = services.crowd(self.graph, [unit.config.ready is not None
                                                 for unit in self.units], several=self.several,
                                    cap=_cores())
        """What concerns more than one service: who begins, waits, stops (`services.py`)."""

    def run(self) -> int:
        process.own_descriptors()
        process.become_subreaper()
        with ExitStack() as stack:
            stack.callback(self.events.close)
            stack.callback(self.lists.close)
            stack.callback(self.guardian.close)
            stack.callback(self._stop_strays, wait=True)
            for unit in self.units:
                stack.callback(unit.reporter.summary, unit.summary)
                probe = unit.config.ready
                if (probe is not None and probe.kind is ProbeKind.NOTIFY) or (
                        unit.service.store is not None):
                    from reentr import ready

                    unit.notifier = ready.Notifier(unit.service.store, partial(
                        self._warn, unit.service.name))
                    stack.callback(unit.notifier.close)
            stack.enter_context(signals.forwarded(self.events, self.events.wake_fd))
            trees = [(unit.service.name or "", unit.config.watch) for unit in self.units
                     if isinstance(unit.config.watch, WatchTree)] if self.several else []
            if trees and self.read_from is not None:
                # The configuration file, watched for itself alone, so that an edit of it is
                # said (`_loop`) even where no service watches it; it is no service's change.
                trees.append((_CONFIG_TREE, WatchTree((), always=(Path(self.read_from),))))
            stack.enter_context(watch.watching(self.config, self.events, self.reporter, trees))
            self.term = stack.enter_context(
                terminal.opened(self.events, self.config.interactive))
            if self.control is not None:
                stack.enter_context(self.control(self.events))
            try:
                return self._loop()
            finally:
                # Reached with children only when something went wrong (policy exits only
                # once every group is gone): never leave one behind.
                for pid in list(self.children):
                    process.signal_group(pid, signal.SIGKILL)
        raise AssertionError("unreachable")  # pragma: no cover (ExitStack swallows nothing)

    def _loop(self) -> int:
        status = self._decide([])
        held: list[Event] = []
        while status is None:
            event = self.events.get()
            if isinstance(event, Warned):  # a thread's line, said by the loop
                unit = self.by_name.get(event.service or "")
                (unit.reporter if unit is not None else self.reporter).error(event.text)
                continue
            if isinstance(event, JobStopped) or event == SignalReceived(signal.SIGTSTP):
                self._suspend()  # Ctrl-Z: job control, which decides nothing
                continue
            if isinstance(event, FilesChanged) and self._exit_in_flight() and any(
                    unit.config.loop_guard for unit in self.units):
                # A program that wrote and exited at once: its exit, on its way from the
                # reaper, happened before this batch was seen, and the loop guard must know
                # of it to tell the program's own write from the user's.
                held.append(event)
                continue
            if isinstance(event, ProcessExited):
                self.exits_seen.add(event.pid)
                if self.term is not None and self.term.holder == event.pid:
                    self.term.take_back()
                    if self.term.interrupted() or event.status == -signal.SIGINT:
                        # Ctrl-C went to the utility, which held the terminal: as in entr,
                        # reentr quits once it has ended, whatever its status (pytest
                        # catches it and exits 2).
                        self.events.put_next(SignalReceived(signal.SIGINT))
                if held and not self._exit_in_flight():
                    for waiting in held:
                        self.events.put_next(waiting)
                    held.clear()
            if isinstance(event, FilesChanged) and self.read_from in event.paths:
                rest = self._configuration_edited(event)
                if rest is None:
                    continue
                event = rest
            self.crowd, decisions = services.route(self.crowd, event, self._owner(event))
            status = self._decide(decisions)
        return status

    def _configuration_edited(self, event: FilesChanged) -> FilesChanged | None:
        """Say, once per batch, that the configuration file changed, which `reentr up` reads
        at its start alone; the change less that file, or None if nothing else is left.
        reentr.toml or the Procfile is reentr's alone: no service reads it, and a restart
        would look like the edit taken in. pyproject.toml is the project's too (its builds
        read it): it stays a change for the services that watch it."""
        assert self.read_from is not None
        if event.detected_ns != self.said_edit:
            self.said_edit = event.detected_ns
            self.reporter.line(f"{os.path.basename(self.read_from)} changed: its services and "
                               "their keys are read when reentr up starts; restart reentr up "
                               "to take the edit in")
        if os.path.basename(self.read_from) == "pyproject.toml":
            return event
        rest = tuple(p for p in event.paths if p != self.read_from)
        return event.only(rest) if rest else None

    def _run(self, unit: _Unit, start: Start) -> None:
        self.events.put_next(self._start(unit, start.role, start.trigger, start.changed))

    def _owner(self, event: Event) -> str | None:
        """The service whose process a process event is about (a fact of the OS: the child
        it started), if any."""
        match event:
            case (ProcessStarted(pid=pid) | ProcessExited(pid=pid) | GroupEmptied(pid=pid)
                  | TargetReady(pid=pid) | TargetServes(pid=pid) | ReadyTimedOut(pid=pid)):
                owner = self.children.get(pid)
                return None if owner is None else owner[0].name
        return None

    def _decide(self, decisions: list[services.Decision]) -> int | None:
        """Carry out the decisions of `services`, and those due after them, until none is
        left; the run's exit status once every service has ended."""
        todo = deque(decisions)
        while True:
            while todo:
                match todo.popleft():
                    case services.Tell(name=name, event=event):
                        unit = self.by_name[name]
                        status = self._step(unit, event)
                        self.crowd, more = services.stepped(
                            self.crowd, name, event, status,
                            restarting=policy.restarting(unit.state),
                            running=unit.target_running())
                        todo.extend(more)
                    case services.Again(event=event):
                        self.events.put_next(event)
                    case services.Run(name=name, start=start):
                        self._run(self.by_name[name], start)
                    case services.Waits(name=name, other=other):
                        self.by_name[name].reporter.error(
                            f"waits for {other}, which is not running and was never ready; "
                            f"{name} starts once {other} is ready")
                    case services.Finished(status=status):
                        return status
            self.crowd, due = services.advance(self.crowd, time.monotonic_ns())
            if not due:
                return None
            todo.extend(due)

    def _step(self, unit: _Unit, event: Event) -> int | None:
        """Feed `event` to the service's policy and carry out what it decides; its exit
        status once it has ended, else None."""
        unit.state, actions = policy.step(unit.config, unit.state, event, time.monotonic_ns())
        if isinstance(event, GroupEmptied):
            # Before the actions: an Exit among them must not leave a gone group here,
            # where the cleanup below would signal a process group id that may be reused.
            self.children.pop(event.pid, None)
            self.exits_seen.discard(event.pid)
        self._record_event(unit, event)
        for action in actions:
            self._record_action(unit, action)
            if isinstance(action, Exit):
                return action.status
            self._carry_out(unit, action)
        if isinstance(event, GroupEmptied):
            # After the actions, so that the next start does not wait for this look.
            self._stop_strays(wait=False)
            if event.role is Role.TARGET:
                self._say_kept(unit)
        return None

    def _carry_out(self, unit: _Unit, action: Action) -> None:
        """One action the service's policy decided (`Exit` aside)."""
        match action:
            case Start(role=Role.BUILD):
                # A build waits its turn while `cap` others run (`services.build`).
                self.crowd, let = services.build(self.crowd, unit.name, action)
                for decision in let:
                    assert isinstance(decision, services.Run)
                    self._run(unit, decision.start)
            case Start():
                self._run(unit, action)
            case SignalGroup(role=role, pid=pid, signum=signum, stop=stop):
                self._signal(unit, role, pid, signum, stop)
            case SetTimer(name=name, pid=pid, seconds=seconds):
                self.events.put_after(seconds, TimerFired(name, pid, unit.service.name))
            case ClearScreen(level=level):
                terminal.clear_screen(level)
            case Say():
                if action.what is Note.OUTPUTS:
                    if action.paths in self.said_outputs:
                        return  # several services watch one tree (a Procfile's): said once
                    self.said_outputs.add(action.paths)
                unit.reporter.say(action)
            case Restarted(number=number, timeline=timeline):
                unit.summary.add(timeline)
                unit.reporter.restarted(number, timeline)

    def _warn(self, service: str | None, text: str) -> None:
        """From a thread: a line for the user, which the loop says (`Warned`)."""
        self.events.put(Warned(text, service))

    def _say_kept(self, unit: _Unit) -> None:
        """After a target's end with no start to follow (it exited by itself): what the fd
        store keeps waits for the next start, and its clients with it; say so."""
        store = unit.service.store
        state = unit.state
        if store is None or state.quitting is not None or state.want_start \
                or policy.restarting(state) or unit.target_running():
            return
        names = Counter(store.names())
        if names:
            kept = ", ".join(f"{count} {name}" for name, count in names.items())
            total = sum(names.values())
            unit.reporter.line(f"the fd store keeps {total} descriptor{'s' * (total != 1)} "
                               f"({kept}) for the next start; until then their clients wait")

    def _record_event(self, unit: _Unit, event: Event) -> None:
        """Write what `event` says happened to the event stream, and let a probe go once its
        target is gone."""
        reporter = unit.reporter
        match event:
            case ProcessStarted(role=role, pid=pid):
                reporter.event(Kind.SPAWNED, role=role.value, pid=pid)
            case TargetReady(pid=pid):
                reporter.event(Kind.READY, role=Role.TARGET.value, pid=pid)
            case TargetServes(pid=pid, at_ns=at_ns):
                reporter.event(Kind.SERVES, role=Role.TARGET.value, pid=pid, seen=at_ns is not None)
            case ReadyTimedOut(pid=pid):
                assert unit.config.ready is not None
                reporter.event(Kind.READY_TIMEOUT, role=Role.TARGET.value, pid=pid)
                reporter.not_ready(pid, unit.config.ready)
            case ProcessExited(role=role, pid=pid, status=status):
                reporter.event(Kind.EXITED, role=role.value, pid=pid, status=status)
                if pid in unit.waiters:
                    unit.waiters[pid].cancel()
            case GroupEmptied(role=Role.TARGET, pid=pid):
                unit.waiters.pop(pid, None)
                if unit.notifier is not None:
                    unit.notifier.ended(pid)  # before the next start: it may be made now

    def _record_action(self, unit: _Unit, action: Action) -> None:
        match action:
            case Say(what=Note.CHANGED, paths=paths):
                # What counted: not the runs' outputs, nor what the loop guard muted.
                unit.reporter.event(Kind.CHANGE, paths=list(paths))
            case Start(role=role):
                unit.reporter.event(Kind.START, role=role.value)
            case SignalGroup(role=role, pid=pid, signum=signum, stop=stop):
                unit.reporter.event(Kind.SIGNAL, role=role.value, pid=pid, signal=signum.name,
                                    stop=stop)
                if stop and pid in unit.waiters:
                    unit.waiters[pid].cancel()

    def _start(
        self, unit: _Unit, role: Role, trigger: str | None, changed: tuple[str, ...]
    ) -> Event:
        service, config = unit.service, unit.config
        argv = self._argv(unit, role, trigger)
        probe = config.ready if role is Role.TARGET else None
        waiter = None
        if probe is not None:
            held = service.sockets if config.handoff else None
            from reentr import ready

            waiter = ready.Waiter(probe, self.events, handoff=config.handoff,
                                  address=held.address() if held is not None else None,
                                  notifier=unit.notifier)
        # Always set, so a value reentr itself inherited never reaches the command.
        extra = self._changed(unit, role, changed)
        if (waiter is not None and waiter.probe.kind is ProbeKind.LINE) or service.label:
            # Through a pipe, Python would hold the line back in its buffer (README).
            extra["PYTHONUNBUFFERED"] = service.environ.get("PYTHONUNBUFFERED", "1")
        if role is Role.TARGET and unit.notifier is not None:
            extra["NOTIFY_SOCKET"] = unit.notifier.path
        passed, names, kept = self._descriptors(unit, role)
        if names:
            from reentr.sockets import listen_env, wrap

            extra.update(listen_env(names))
        env = process.child_env(unit.environment(), extra)
        tty = self._terminal_for(unit, role)
        if tty is not None and self.term is not None:
            self.term.hand_over()  # before the child exists: it takes the terminal at once
        try:
            if names:
                argv = wrap(argv, env, service.cwd)
            if tty is not None and self.term is not None:
                argv = self.term.interruptible(argv)
            child = process.start(
                role, argv, self.events, env, self.guardian,
                to_stderr=role is Role.BUILD or config.stdout_to_stderr,
                on_line=waiter.line if waiter and waiter.probe.kind is ProbeKind.LINE else None,
                pass_fds=passed,
                tty=tty, foreground=None if tty is None else partial(terminal.in_foreground, tty),
                cwd=service.cwd, label=service.label,
            )
        except OSError as error:
            self._lent(unit, None, kept)
            if tty is not None and self.term is not None:
                self.term.take_back()  # it may have taken the terminal before its exec failed
            return ProcessStartFailed(role, f"{argv[0]}: {error.strerror or error}",
                                      service.name)
        self._lent(unit, child.pid, kept)
        if role is Role.TARGET and unit.notifier is not None:
            unit.notifier.admit(child.pid)
        self.children[child.pid] = (unit, child)
        if tty is not None and self.term is not None:
            self.term.holder = child.pid
        if waiter is not None:
            waiter.started(child.pid)
            unit.waiters[child.pid] = waiter
        unit.reporter.started(role, child.pid)
        return ProcessStarted(role, child.pid, child.started_ns, kept=len(kept))

    def _descriptors(
        self, unit: _Unit, role: Role
    ) -> tuple[tuple[int, ...], list[str], tuple[int, ...]]:
        """What a start of the target inherits at 3, 4, ...: the held sockets, then what the
        store keeps that no running target holds; their names; and the numbers of the
        stored ones."""
        service = unit.service
        if role is not Role.TARGET:
            return (), [], ()
        held = service.sockets
        passed = held.lend() if held is not None else ()
        names = held.names() if held is not None else []
        if service.store is None or service.slots is None or unit.notifier is None:
            return passed, names, ()
        # What the old target stored as it stopped was read when its group ended
        # (`Notifier.ended`, before the policy's start).
        kept, stored = service.store.lend(service.slots, len(passed))
        return (*passed, *kept), [*names, *stored], kept

    def _lent(self, unit: _Unit, pid: int | None, kept: tuple[int, ...]) -> None:
        """After a start (`pid`, or None when it failed): the store notes who holds what it
        lent, and the slots let their copies go."""
        service = unit.service
        if service.store is not None and service.slots is not None:
            service.store.lent(pid)
            service.slots.release(kept)

    def _changed(self, unit: _Unit, role: Role, paths: tuple[str, ...]) -> dict[str, str]:
        """`REENTR_CHANGED` and `REENTR_CHANGED_FILE` for a start (see `changelist.py`)."""
        key = f"{self.units.index(unit)}-{role.value}"
        try:
            return self.lists.env(key, paths)
        except OSError as error:
            unit.reporter.error(f"cannot write the list of changed files: {error}; "
                                f"{changelist.FILE_VARIABLE} is empty for this run")
            return {changelist.VARIABLE: changelist.bounded(paths), changelist.FILE_VARIABLE: ""}

    def _terminal_for(self, unit: _Unit, role: Role) -> int | None:
        """The terminal, for a utility that runs to completion while reentr holds it: it gets
        the terminal as its stdin and as the foreground, as in a shell (and as in entr). With
        -r or --signal its stdin stays /dev/null, as in entr; so it does for services."""
        term, config = self.term, unit.config
        if (role is not Role.TARGET or not config.runs_to_completion or self.several
                or term is None or term.holder is not None or not term.foreground()):
            return None
        return term.fd

    def _argv(self, unit: _Unit, role: Role, trigger: str | None) -> list[str]:
        config = unit.config
        if role is Role.BUILD:
            assert unit.build_argv is not None
            return unit.build_argv
        watch = config.watch
        if isinstance(watch, WatchList):  # as entr: the first entry, a -d directory if alone
            first = trigger or str((*watch.files, *watch.dirs)[0])
        else:
            first = trigger or str(watch.paths[0])
        if config.shell and config.shell_program is not None:
            return [config.shell_program, "-c", config.command[0]]
        if config.shell:
            shell = unit.service.environ.get("SHELL") or "/bin/sh"
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
                   for pid, (_, child) in self.children.items())

    def _stop_strays(self, *, wait: bool) -> None:
        """Stop the processes that left their group and outlived the run they belong to."""
        for _ in range(5 if wait else 1):  # on the way out, those they leave behind too
            found = process.strays(set(self.children), self.guardian)
            if not found:
                return
            self.reporter.strays(found)
            process.stop_strays(found, self.config.grace, wait=wait)

    def _signal(self, unit: _Unit, role: Role, pid: int, signum: int, stop: bool) -> None:
        process.signal_group(pid, signum)
        # Looked at once the signal is on its way (a read of /proc, which the stop need not
        # wait for): a target that ignores it is still there to be asked.
        if (
            role is Role.TARGET and stop and not unit.warned_ignores
            and process.ignores_signal(pid, signum)
        ):
            unit.warned_ignores = True
            unit.reporter.ignores_stop_signal(pid, signal.Signals(signum).name)


def _cores() -> int:
    """The cores reentr may run on (its CPU affinity, as `taskset` or a container sets it):
    how many builds of `reentr up` run at once."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _build_argv(command: str, path: str | None) -> list[str]:
    """How a build is started. A single external program given plain words, none that a
    shell would read otherwise (no quote, expansion, glob, redirection, comment or escape),
    is started directly: the shell's own start is half a millisecond of every build. Any
    other command (builtins such as `exit 3`, `cd x && make`, globs, a script without `#!`,
    which only a shell runs) goes to /bin/sh exactly as written, `exec` before a single
    program, which saves the shell's fork and leaves the program as the group's leader."""
    program = plain_program(command)
    if program is None:
        return ["/bin/sh", "-c", command]
    found = shutil.which(program, path=path)
    if found is None:  # a function, an alias or a missing program: the shell says which
        return ["/bin/sh", "-c", command]
    if "#" in command or "\\" in command or not _executable_file(found):
        return ["/bin/sh", "-c", "exec " + command]
    return command.split()


def _executable_file(path: str) -> bool:
    """Whether the kernel runs `path` itself (a binary, or a script with `#!`): a file without
    either is run by a shell, as a shell script."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head == b"\x7fELF" or head.startswith(b"#!")
