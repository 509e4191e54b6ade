"""The pure decision function: `step(config, state, event) -> (state, actions)`.

Every choice reentr makes lives here: when to build, when to stop and start the target,
what a change during a build or a run does, when to escalate to SIGKILL, and when to exit.
Nothing here touches the operating system, so the whole lifecycle is tested as tables.

Two rules hold everywhere:
- A new process of a role starts only when the previous group of that role is gone.
- No change is lost: a change either starts work now or leaves a `want_*` flag that is
  honoured as soon as the processes in the way are gone.
"""

from __future__ import annotations

import dataclasses
import enum
import signal

from reentr import loops, outputs, restarts
from reentr.config import PORT_HINT_S, Config, OnBusy, OnExit, shell_status
from reentr.errors import ExitStatus
from reentr.events import (
    Action,
    Began,
    ClearScreen,
    DirectoryAltered,
    Event,
    Exit,
    FilesChanged,
    GroupEmptied,
    KeyPressed,
    Note,
    ProcessExited,
    ProcessStarted,
    ProcessStartFailed,
    ReadyTimedOut,
    Released,
    RestartAsked,
    Role,
    Say,
    SetTimer,
    SignalGroup,
    SignalReceived,
    Start,
    TargetReady,
    Timer,
    TimerFired,
    Triggered,
    WatcherFailed,
)
from reentr.records import evolve, record

BACKOFF_FIRST = 0.1
"""Seconds before the first `--on-exit restart`; doubles per exit in a row, up to BACKOFF_MAX."""
BACKOFF_MAX = 5.0
STABLE_RUN = 10.0
"""A target that ran this many seconds before exiting is not in a crash loop."""
STATUS_NOT_RUN = 127
"""The status reported for a command that could not be started, as a shell reports it."""


class Phase(enum.Enum):
    """Where a role's process group is in its life."""

    EMPTY = "empty"
    STARTING = "starting"
    """`Start` was issued and its `ProcessStarted` has not arrived yet."""
    RUNNING = "running"
    """The leader is alive (and so is its group)."""
    LEFT = "left"
    """The leader has exited; other processes of its group are still there."""


class Stop(enum.Enum):
    """How far reentr has gone in stopping a group."""

    NONE = "none"
    SENT = "sent"
    """The stop signal was sent: its exit is ours, not news."""
    KILLED = "killed"
    """SIGKILL was sent."""


class Delay(enum.Enum):
    """`--delay-run`'s wait before a start."""

    NONE = "none"
    """No wait has begun for the next start."""
    WAITING = "waiting"
    DONE = "done"
    """The wait is over: the start may go."""


@record
class Slot:
    """The process group of one role: at most one at a time. A phase and a stop, so that no
    impossible state (a group alive without a pid, a start in flight with one) can be written."""

    pid: int | None = None
    phase: Phase = Phase.EMPTY
    stop: Stop = Stop.NONE

    @property
    def starting(self) -> bool:
        return self.phase is Phase.STARTING

    @property
    def leader_alive(self) -> bool:
        return self.phase is Phase.RUNNING

    @property
    def group_alive(self) -> bool:
        return self.phase in (Phase.RUNNING, Phase.LEFT)

    @property
    def stopping(self) -> bool:
        return self.stop is not Stop.NONE

    @property
    def killed(self) -> bool:
        return self.stop is Stop.KILLED

    @property
    def busy(self) -> bool:
        """A process of this role exists or is about to."""
        return self.phase is not Phase.EMPTY


@record
class State:
    target: Slot = Slot()
    """The target that serves."""
    build: Slot = Slot()
    incoming: Slot = Slot()
    """`--handoff`: the new target, started beside the old one and not yet ready."""
    retiring: tuple[Slot, ...] = ()
    """`--handoff`: old targets being stopped because their successor is ready."""
    want_build: bool = False
    """A build of the current files must run once the build slot is free."""
    want_start: bool = False
    """The target must (re)start, or be signalled, once nothing is in the way."""
    build_stale: bool = False
    """Files changed during the running build: its result is not started (`--on-busy` not queue)."""
    trigger: str | None = None
    """The leading-edge file of the newest change, for `/_`."""
    changed: tuple[str, ...] = ()
    """Every file changed since the target last started, for `REENTR_CHANGED`."""
    quitting: int | None = None
    """The exit status, once reentr is shutting down."""
    killing: bool = False
    """A second Ctrl-C came: every group is killed, one that starts later too."""
    held: bool = False
    """`reentr up`: a change builds now, but the target is swapped only once the services it
    depends on serve again (`Released`)."""
    exit_after_run: int | None = None
    """`-d` without `-r`: run once more, then exit with this status."""
    exits_in_a_row: int = 0
    delay: Delay = Delay.NONE
    """`--delay-run`: where the wait before the next start is."""
    guard: loops.Guard = dataclasses.field(default_factory=loops.Guard)
    """The feedback-loop guard: paths the runs keep rewriting stop counting as changes."""
    made: outputs.Outputs = dataclasses.field(default_factory=outputs.Outputs)
    """What the runs made (a build's outputs, a program's first files): never a change."""
    unsaid: tuple[str, ...] = ()
    """Outputs found while a build runs, said in one line once it has ended."""
    loop_hold: int = -1
    """The loop guard's holding whose quiet wait is under way (`Timer.LOOP_HOLD`)."""
    loop_check: int = -1
    """The loop guard's asking whose wait is under way (`Timer.LOOP_CHECK`)."""
    said_port: bool = False
    """`Note.PORT_TAKEN` was said: once is enough."""
    clock: restarts.Clock = dataclasses.field(default_factory=restarts.Clock)
    """Which start is a restart, and the timelines of those under way."""


def initial() -> State:
    return State()


def restarting(state: State) -> bool:
    """A restart is under way: a change waits, a build runs for it, or a start has not
    served yet."""
    clock = state.clock
    return clock.pending is not None or clock.building is not None or bool(clock.starting)


def step(
    config: Config, state: State, event: Event, now: int = 0
) -> tuple[State, list[Action]]:
    """Decide what `event`, taken at `now` (monotonic ns), means: the next state, and the
    actions for the runner to carry out, the report of a restart that it completes included."""
    actions: list[Action] = []
    state = evolve(state, guard=_observe(config, state, event))
    state = _apply(config, state, event, actions)
    state = _held_changes(config, state, actions)
    state = _advance(config, state, actions)
    clock, actions = restarts.observe(config, state.clock, event, actions, now)
    return evolve(state, clock=clock), actions


def _apply(config: Config, s: State, event: Event, out: list[Action]) -> State:
    """Record what the event says happened; `_advance` then decides what to do next."""
    if isinstance(event, _PROCESS_EVENTS):
        return _process_event(config, s, event, out)
    return _request(config, s, event, out)


def _request(config: Config, s: State, event: Event, out: list[Action]) -> State:
    """What the user, the watcher or a signal asks: run, restart, quit."""
    match event:
        case Began():
            return s if config.postpone else _want(config, s, ())
        case FilesChanged():
            return _files_changed(config, s, event, out)
        case KeyPressed(key=" ") | RestartAsked():
            # entr reads keys only while it waits: a key during a (non -r) run is not queued.
            if config.runs_to_completion and s.target.busy:
                return s
            return _changed(config, s, (), out)
        case KeyPressed(key="q"):
            return _quit(s, ExitStatus.OK, out)
        case SignalReceived(signum=signum):
            return _quit(s, quit_status(signum), out)
        case DirectoryAltered():
            return _directory_altered(config, s, out)
        case WatcherFailed(reason=reason):
            out.append(Say(Note.WATCHER_FAILED, detail=reason))
            return evolve(s, quitting=ExitStatus.ERROR)
    return s  # another key


def _files_changed(config: Config, s: State, event: FilesChanged, out: list[Action]) -> State:
    """A batch of changes, less what the runs made and what the loop guard mutes."""
    if config.loop_guard:
        s, event = _without_outputs(s, event, out)
    paths = event.paths
    if not paths:
        return s
    if _drops_changes(config, s):
        # entr drops a change made while the utility runs: nothing to guard, or hold for a
        # run after it (that run would be one entr never makes).
        out.append(Say(Note.CHANGED, detail=" (dropped: a run is in progress)", paths=paths))
        return s
    if config.loop_guard:
        guard, paths, looping = loops.sift(s.guard, paths, event.written(), event.detected_ns)
        stormed = sorted(guard.stormed - s.guard.stormed)
        if guard.hold != s.guard.hold and s.build.busy and config.on_busy is not OnBusy.QUEUE:
            # A held change: the build under way is for an older content, as for any change
            # (`--on-busy`): its result is not started, and with `restart` it is stopped (make
            # would take what it writes for newer than the save).
            s = evolve(s, build_stale=True)
            if config.on_busy is OnBusy.RESTART:
                s = _stop(config, s, Role.BUILD, out)
        s = evolve(s, guard=guard)
        out.extend(Say(Note.LOOP, detail=path) for path in looping)
        out.extend(Say(Note.STORM, detail=path) for path in stormed)
        if not paths:
            return s
        event = event.only(paths)
    out.append(Say(Note.CHANGED, paths=paths))
    return _changed(config, s, paths, out, event)


def _idle(s: State) -> bool:
    """Nothing runs or waits to (a target that keeps running aside)."""
    return not (s.quitting is not None or s.want_build or s.want_start or s.build.busy
                or s.target.starting or s.incoming.busy or s.held
                or s.delay is not Delay.NONE or loops.running(s.guard))


def _held_changes(config: Config, s: State, out: list[Action]) -> State:
    """Once nothing runs or waits to: the quiet wait before the loop guard's held changes get
    a run of their own, and once such a run is over, the wait for its writes (`loops.py`)."""
    if not config.loop_guard or not _idle(s):
        return s
    guard = s.guard
    if guard.held and s.loop_hold != guard.hold:
        out.append(SetTimer(Timer.LOOP_HOLD, guard.hold, loops.QUIET_S))
        return evolve(s, loop_hold=guard.hold)
    if guard.checking and guard.check_ran and s.loop_check != guard.check:
        out.append(SetTimer(Timer.LOOP_CHECK, guard.check, loops.SETTLE_S))
        return evolve(s, loop_check=guard.check)
    return s


def _held_run(config: Config, s: State, hold: int, out: list[Action]) -> State:
    """The quiet wait is over: the held paths' run of their own, timed from their writes,
    the hold counted as a wait (the change was seen at once)."""
    if not _idle(s):
        return evolve(s, loop_hold=-1)  # waited for again once idle
    guard, held = loops.due(s.guard, hold)
    s = evolve(s, guard=guard)
    if not held:
        return s
    paths = tuple(path for path, _, _ in held)
    change = FilesChanged(paths, min(seen for _, _, seen in held),
                          tuple(written for _, written, _ in held))
    out.append(Say(Note.CHANGED, paths=paths))
    return _changed(config, s, paths, out, change, let_through=True)


def _directory_altered(config: Config, s: State, out: list[Action]) -> State:
    """`-d`: a watched directory gained or lost a file."""
    if s.quitting is not None:
        return s
    out.append(Say(Note.DIRECTORY_ALTERED))
    if config.runs_to_completion:
        # entr runs the utility once more, then exits 2 (entr(1), -d).
        return _want(config, evolve(
            s, exit_after_run=ExitStatus.DIRECTORY_ALTERED), ())
    return evolve(s, quitting=ExitStatus.DIRECTORY_ALTERED)


_PROCESS_EVENTS = (ProcessStarted, ProcessStartFailed, ProcessExited, GroupEmptied, TargetReady,
                   ReadyTimedOut, TimerFired, Released)


def _process_event(config: Config, s: State, event: Event, out: list[Action]) -> State:
    """What a process did (started, failed to, exited, became ready), or a timer's end."""
    match event:
        case ProcessStarted(role=role, pid=pid):
            started = Slot(pid, Phase.RUNNING)
            if role is Role.TARGET and s.incoming.starting:
                return evolve(s, incoming=started)
            return _set(s, role, started)
        case ProcessStartFailed(role=role, reason=reason):
            return _start_failed(config, s, role, reason, out)
        case ProcessExited(role=Role.TARGET, pid=pid, status=status) if s.target.pid != pid:
            return _handoff_exited(config, s, pid, status, out)
        case ProcessExited(role=role, pid=pid, status=status, ran_s=ran_s):
            slot = _get(s, role)
            if slot.pid != pid:
                return s
            ours = slot.stopping or s.quitting is not None
            s = _set(s, role, evolve(slot, phase=Phase.LEFT))
            return _exited(config, s, role, status, out, ran_s=ran_s, ours=ours)
        case GroupEmptied(role=role, pid=pid):
            return _group_emptied(s, role, pid, out)
        case TargetReady(pid=pid) if pid == s.incoming.pid and not s.incoming.stopping:
            return _handed_off(config, s, out)
        case ReadyTimedOut(pid=pid) if pid == s.incoming.pid and not s.incoming.stopping:
            out.append(Say(Note.ROLLED_BACK, role=Role.TARGET, pid=_serving(s)))
            return _stop_slot(config, s, s.incoming, out)
        case TimerFired(name=name, pid=pid):
            return _timer(config, s, name, pid, out)
        case Released():
            return evolve(s, held=False)
    return s


def _start_failed(config: Config, s: State, role: Role, reason: str, out: list[Action]) -> State:
    out.append(Say(Note.START_FAILED, role=role, detail=reason))
    if role is Role.TARGET and s.incoming.starting:
        out.append(Say(Note.ROLLED_BACK, role=role, pid=_serving(s)))
        return evolve(s, incoming=Slot())
    return _exited(config, _set(s, role, Slot()), role, STATUS_NOT_RUN, out, said=True)


def _group_emptied(s: State, role: Role, pid: int, out: list[Action]) -> State:
    """The last process of a group is gone: its slot is free."""
    if role is Role.TARGET and s.incoming.pid == pid:
        return evolve(s, incoming=Slot())
    if role is Role.TARGET and s.target.pid != pid:
        return evolve(s, retiring=tuple(
            slot for slot in s.retiring if slot.pid != pid))
    if _get(s, role).pid != pid:
        return s
    if role is Role.BUILD:
        s = _say_outputs(s, out)
    return _set(s, role, Slot())


def _handed_off(config: Config, s: State, out: list[Action]) -> State:
    """The handoff: the new target is ready and serves; the old one is stopped."""
    old = s.target
    out.append(Say(Note.HANDED_OFF, role=Role.TARGET, pid=_serving(s)))
    s = evolve(s, target=s.incoming, incoming=Slot())
    if old.group_alive and old.pid is not None:
        s = evolve(s, retiring=(*s.retiring, old))
        s = _stop_slot(config, s, old, out)
    return s


def _without_outputs(
    s: State, event: FilesChanged, out: list[Action]
) -> tuple[State, FilesChanged]:
    """The change less what reentr's runs made (see `outputs.py`), said once per find."""
    made, kept, new = outputs.sift(s.made, s.guard, event.paths, event.written(),
                                   event.traits)
    s = evolve(s, made=made, unsaid=(*s.unsaid, *new))
    if not s.build.busy:
        s = _say_outputs(s, out)
    if len(kept) == len(event.paths):
        return s, event
    counted = set(kept)
    out.append(Say(Note.NOT_CHANGES, paths=tuple(
        p for i, p in enumerate(event.paths) if i not in counted)))
    return s, event.only(tuple(event.paths[i] for i in kept))


def _say_outputs(s: State, out: list[Action]) -> State:
    """Say, in one line, the outputs found and not said yet."""
    if not s.unsaid:
        return s
    out.append(Say(Note.OUTPUTS, paths=s.unsaid))
    return evolve(s, unsaid=())


def _observe(config: Config, s: State, event: Event) -> loops.Guard:
    """The loop guard after `event`: when each process started, became ready, and ended."""
    guard = s.guard
    match event:
        case ProcessStarted(role=role, pid=pid, at_ns=at_ns):
            if role is Role.BUILD or config.runs_to_completion:
                span = loops.Span.LIFE
            elif config.ready is not None:
                span = loops.Span.STARTUP
            else:
                span = loops.Span.SELF_EXIT
            return loops.started(guard, pid, span, at_ns)
        case TargetReady(pid=pid, at_ns=at_ns):
            return loops.ready(guard, pid, at_ns)
        case ProcessExited(pid=pid, at_ns=at_ns):
            stopped = s.quitting is not None or any(
                slot.pid == pid and slot.stopping for _, slot in _slots(s))
            return loops.ended(guard, pid, at_ns, by_itself=not stopped)
    return guard


def _want(config: Config, s: State, paths: tuple[str, ...]) -> State:
    if paths:
        changed = tuple(dict.fromkeys((*s.changed, *paths)))
        s = evolve(s, trigger=paths[0], changed=changed)
    if config.build is not None:
        return evolve(s, want_build=True)
    return evolve(s, want_start=True)


def _drops_changes(config: Config, s: State) -> bool:
    """entr drains the events of a run and throws them away; `-a` keeps them (entr(1), -a).

    The run is the utility itself, as for entr, which drains once `waitpid` returns: a change
    after the utility exited is kept, even while processes it left in its group are still
    being waited for (the next run starts once they are gone)."""
    target = s.target
    return (config.runs_to_completion and (target.starting or target.leader_alive)
            and not config.all_events)


def _changed(
    config: Config, s: State, paths: tuple[str, ...], out: list[Action],
    change: FilesChanged | None = None, *, let_through: bool = False,
) -> State:
    if s.quitting is not None or _drops_changes(config, s):
        return s
    out.append(Triggered(change, let_through))
    if change is not None and change.held:
        s = evolve(s, held=True)
    if s.build.busy and config.on_busy is not OnBusy.QUEUE:
        s = evolve(s, build_stale=True)
    return _want(config, evolve(s, exits_in_a_row=0), paths)


def quit_status(signum: int) -> ExitStatus:
    """The exit status of a run that the signal `signum` ended (SIGINT, SIGTERM or SIGHUP)."""
    if signum == signal.SIGINT:
        return ExitStatus.INTERRUPTED
    return ExitStatus.TERMINATED if signum == signal.SIGTERM else ExitStatus.OK


def _quit(s: State, status: int, out: list[Action]) -> State:
    if s.quitting is not None:
        # A second Ctrl-C: no more grace for anyone, nor for a process still to start.
        s = evolve(s, killing=True)
        for role, slot in _slots(s):
            if slot.group_alive and not slot.killed and slot.pid is not None:
                out.append(SignalGroup(role, slot.pid, signal.SIGKILL))
                s = _put(s, slot, evolve(slot, stop=Stop.KILLED))
        return s
    return evolve(s, quitting=status)


def _exited(
    config: Config, s: State, role: Role, status: int, out: list[Action], *,
    ran_s: float = 0.0, ours: bool = False, said: bool = False,
) -> State:
    """`role` ended with `status` (`ours`: stopped by reentr; `said`: it never started, and
    that was said: no line says it exited)."""
    if role is Role.BUILD:
        if ours or s.build_stale:
            return evolve(s, build_stale=False)
        if status != 0:
            out.append(Say(Note.BUILD_FAILED, role=role, status=status))
            return s
        out.append(Say(Note.BUILD_SUCCEEDED, role=role, status=status))
        return evolve(s, want_start=True)
    if ours:
        return s
    if not said:
        out.append(Say(Note.EXITED, role=role, status=status, seconds=ran_s))
    if config.port_named and status != 0 and ran_s < PORT_HINT_S and not s.said_port:
        out.append(Say(Note.PORT_TAKEN, role=role, detail=config.port_named))
        s = evolve(s, said_port=True)
    if s.exit_after_run is not None and not s.want_start:
        return evolve(s, quitting=s.exit_after_run)
    if config.exit_on_exit or config.on_exit is OnExit.QUIT:
        return evolve(s, quitting=shell_status(status))
    if config.on_exit is OnExit.RESTART and not s.want_start:
        in_a_row = 0 if ran_s >= STABLE_RUN else s.exits_in_a_row
        delay = min(BACKOFF_FIRST * 2**in_a_row, BACKOFF_MAX)
        out.append(SetTimer(Timer.BACKOFF, _get(s, role).pid or 0, delay))
        return evolve(s, exits_in_a_row=in_a_row + 1)
    return s


def _timer(config: Config, s: State, name: Timer, pid: int, out: list[Action]) -> State:
    if name is Timer.GRACE:
        for role, slot in _slots(s):
            if slot.pid == pid and slot.group_alive and not slot.killed:
                out.append(Say(Note.KILLED, role=role, seconds=config.grace))
                out.append(SignalGroup(role, pid, signal.SIGKILL))
                return _put(s, slot, evolve(slot, stop=Stop.KILLED))
        return s
    if name is Timer.BACKOFF and s.quitting is None and not s.target.busy:
        return evolve(s, want_start=True)
    if name is Timer.DELAY:
        return evolve(s, delay=Delay.DONE)
    if name is Timer.LOOP_HOLD:
        return _held_run(config, s, pid, out)
    if name is Timer.LOOP_CHECK:
        if not _idle(s):
            return evolve(s, loop_check=-1)  # set again once idle
        return evolve(s, guard=loops.settled(s.guard, pid))
    return s


def _advance(config: Config, s: State, out: list[Action]) -> State:
    """Move towards what the state wants, starting nothing while its predecessor lives."""
    quitting = s.quitting
    if quitting is not None:
        for _, slot in _slots(s):
            s = _stop_slot(config, s, slot, out)
        if not any(slot.busy for _, slot in _slots(s)):
            out.append(Exit(quitting))
        return s
    if s.want_start and not s.build.busy and not s.held:
        s = _swap_target(config, s, out)
    if s.want_build and not s.want_start:
        if not s.build.busy:
            out.append(Start(Role.BUILD, s.trigger, s.changed))
            s = evolve(
                s, want_build=False, build=Slot(phase=Phase.STARTING), build_stale=False
            )
        elif config.on_busy is OnBusy.RESTART:
            s = _stop(config, s, Role.BUILD, out)
    return s


def _swap_target(config: Config, s: State, out: list[Action]) -> State:
    t = s.target
    if config.signal is not None and t.leader_alive and t.pid is not None:
        if not t.stopping:
            out.append(SignalGroup(Role.TARGET, t.pid, config.signal))
            out.append(Say(Note.SIGNALLED, role=Role.TARGET, signum=config.signal))
        return evolve(s, want_start=False, changed=())
    if config.handoff:
        if s.incoming.busy:
            # A newer change: the new target that is still starting is already out of date.
            return _stop_slot(config, s, s.incoming, out)
        if t.leader_alive and not t.stopping:
            # The old target keeps serving until the new one is ready.
            if _delaying(config, s, out):
                return evolve(s, delay=Delay.WAITING)
            out.append(Start(Role.TARGET, s.trigger, s.changed))
            return evolve(s, want_start=False, incoming=Slot(phase=Phase.STARTING),
                                       changed=(), delay=Delay.NONE)
    if t.busy:
        if not config.runs_to_completion:
            s = _stop(config, s, Role.TARGET, out)
        return s
    if _delaying(config, s, out):
        return evolve(s, delay=Delay.WAITING)
    if config.clear:
        out.append(ClearScreen(config.clear))
    out.append(Start(Role.TARGET, s.trigger, s.changed))
    return evolve(s, want_start=False, target=Slot(phase=Phase.STARTING), changed=(),
                               delay=Delay.NONE)


def _delaying(config: Config, s: State, out: list[Action]) -> bool:
    """Whether the start must wait for `--delay-run` first (its timer set once)."""
    if not config.delay_run or s.delay is Delay.DONE:
        return False
    if s.delay is Delay.NONE:
        out.append(SetTimer(Timer.DELAY, 0, config.delay_run))
    return True


def _handoff_exited(
    config: Config, s: State, pid: int, status: int, out: list[Action]
) -> State:
    """A target that is not the serving one exited: a retiring one (as asked), or the new one
    of a handoff before it was ready, which is a rollback: the old one keeps serving."""
    incoming = s.incoming
    if incoming.pid == pid:
        rollback = not incoming.stopping and s.quitting is None
        if rollback:
            out.append(Say(Note.EXITED, role=Role.TARGET, status=status))
            out.append(Say(Note.ROLLED_BACK, role=Role.TARGET, pid=_serving(s)))
        s = evolve(s, incoming=evolve(incoming, phase=Phase.LEFT))
        # Whatever it started goes with it.
        return _stop_slot(config, s, s.incoming, out) if rollback else s
    return evolve(s, retiring=tuple(
        evolve(slot, phase=Phase.LEFT) if slot.pid == pid else slot
        for slot in s.retiring))


def _serving(s: State) -> int | None:
    """The PID of the target that serves, for the handoff lines."""
    return s.target.pid if s.target.leader_alive and s.target.pid else None


def _stop(config: Config, s: State, role: Role, out: list[Action]) -> State:
    return _stop_slot(config, s, _get(s, role), out)


def _stop_slot(config: Config, s: State, slot: Slot, out: list[Action]) -> State:
    """Send the stop signal to the slot's group once, and arm the SIGKILL escalation."""
    if not slot.group_alive or slot.stopping or slot.pid is None:
        return s
    role = Role.BUILD if slot.pid == s.build.pid else Role.TARGET
    if s.killing:
        out.append(SignalGroup(role, slot.pid, signal.SIGKILL))
        return _put(s, slot, evolve(slot, stop=Stop.KILLED))
    signum = config.stop_signal if role is Role.TARGET else signal.SIGTERM
    out.append(SignalGroup(role, slot.pid, signum, stop=True))
    out.append(SetTimer(Timer.GRACE, slot.pid, config.grace))
    return _put(s, slot, evolve(slot, stop=Stop.SENT))


def _slots(s: State) -> list[tuple[Role, Slot]]:
    """Every process group reentr may have: the build, the target, and a handoff's others."""
    targets = [s.target, s.incoming, *s.retiring]
    return [(Role.BUILD, s.build), *((Role.TARGET, slot) for slot in targets)]


def _put(s: State, old: Slot, new: Slot) -> State:
    """`s` with the live slot `old` (found by its group's pid, which no other slot has)
    replaced by `new`."""
    assert old.pid is not None, "only a slot with a process is ever replaced"
    if old.pid == s.build.pid:
        return evolve(s, build=new)
    if old.pid == s.target.pid:
        return evolve(s, target=new)
    if old.pid == s.incoming.pid:
        return evolve(s, incoming=new)
    return evolve(s, retiring=tuple(
        new if r.pid == old.pid else r for r in s.retiring))


def _get(s: State, role: Role) -> Slot:
    return s.build if role is Role.BUILD else s.target


def _set(s: State, role: Role, slot: Slot) -> State:
    if role is Role.BUILD:
        return evolve(s, build=slot)
    return evolve(s, target=slot)
