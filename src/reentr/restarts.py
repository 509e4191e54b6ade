"""Which start is a restart, and its timeline: pure, fed by `policy.step` with each event, the
actions decided for it, and the time the event was taken.

The rules (the README's latency section says them to users):
- A restart belongs to the newest change whose content the started program holds: the
  newest change accepted before the build that made it started (with `--build`), or before
  the start itself. Its edit time starts the timeline.
- The first start that serves is never a restart, whatever changes came while it was made
  (with `-p` nothing starts before a change, and the first start, which answers one, counts).
- Every later start that serves (ready, or spawned when there is no probe, or the signal
  sent with `--signal`) is exactly one restart. Under `--handoff` its report waits for the
  first connection the new target takes (`TargetServes`), which is when clients meet the new
  version, or until it is stopped or exits first.
- A start replaced before it served is no restart of its own: the start that replaces it
  counts it (`superseded`); a build stopped by a newer change is counted by the build that
  replaces it (`cancelled`).

Several timelines may be open at once: the newest change not yet in any build or start
(`pending`), the content a build is making (`building`), and the content of each started
target that has not served yet (`starting`): a build for a newer change may run while the
previous content is still starting, and under `--handoff` a new target starts beside an old
one that may itself not be ready yet.
"""

from __future__ import annotations

from reentr.config import Config
from reentr.events import (
    Action,
    Began,
    Event,
    FilesChanged,
    GroupEmptied,
    Note,
    ProcessExited,
    ProcessStarted,
    ProcessStartFailed,
    ReadyTimedOut,
    Released,
    RestartAsked,
    Restarted,
    Role,
    Say,
    SignalGroup,
    Start,
    TargetReady,
    TargetServes,
    Triggered,
)
from reentr.records import evolve, record
from reentr.timing import Timeline


@record
class Starting:
    pid: int | None
    """None until it is spawned (targets are spawned in the order they are started)."""
    timeline: Timeline | None
    """The content it holds; None when no change asked for it (the first start, or a start
    after the target exited by itself)."""
    ready_at: int | None = None
    """`--handoff`: when it became ready; its restart is reported once it takes connections."""


@record
class Clock:
    served: bool = False
    """A start has served: every start that serves from now on is a restart."""
    pending: Timeline | None = None
    building: Timeline | None = None
    starting: tuple[Starting, ...] = ()
    """The targets started that have not served yet, oldest first."""
    stopped_pid: int | None = None
    """The serving target stopped so that the next content can start."""
    builds: int = 0
    """Builds run for the content to come and given up (stopped, or their result unused)."""
    cancelled: int = 0
    superseded: int = 0
    number: int = 0
    """Restarts reported so far."""


def observe(
    config: Config, clock: Clock, event: Event, actions: list[Action], now: int
) -> tuple[Clock, list[Action]]:
    """The clock after `event` and the `actions` decided for it, and those actions with a
    `Restarted` for each restart completed: before them when the event completes it (the
    target became ready), after the action that does (`--signal`'s signal)."""
    reported: list[Action] = []
    clock = _event(config, clock, event, now, reported)
    for action in actions:
        reported.append(action)
        clock = _action(config, clock, event, action, now=now, done=reported)
    return clock, reported


def _event(config: Config, c: Clock, event: Event, now: int, done: list[Action]) -> Clock:
    match event:
        case Began() if config.postpone:
            # Nothing starts before the first change: every start answers one, and is counted.
            return evolve(c, served=True)
        case ProcessStarted(role=Role.TARGET):
            return _spawned(config, c, event, done)
        case ProcessStartFailed(role=Role.TARGET):
            # The program could not be started: that start holds nothing any more.
            waiting = _unspawned(c)
            return c if waiting is None else _replace_starting(c, waiting, None)
        case TargetReady(pid=pid, at_ns=at):
            return _ready(config, c, pid, at, done)
        case TargetServes(pid=pid, at_ns=at):
            entry = _find(c, pid)
            return c if entry is None or entry.ready_at is None else _switched(c, entry, at, done)
        case ReadyTimedOut(pid=pid) | ProcessExited(role=Role.TARGET, pid=pid):
            return _ended(c, pid, done)
        case Released(at_ns=at):
            # What it waited for serves again: its swap may go on (the build may be done).
            return evolve(
                c, pending=None if c.pending is None else evolve(
                    c.pending, taken=at),
                building=None if c.building is None else evolve(
                    c.building, taken=at))
        case ProcessExited(role=Role.BUILD, status=0, at_ns=at) if c.building is not None:
            return evolve(c, building=evolve(
                c.building, build_done=at or now))
        case GroupEmptied(role=Role.TARGET, pid=pid) if pid == c.stopped_pid:
            return _old_gone(config, c, now)
    return c


def _spawned(config: Config, c: Clock, started: ProcessStarted, done: list[Action]) -> Clock:
    """The oldest start waiting for its process has it: stamped, and served at once when
    there is no probe."""
    waiting = _unspawned(c)
    if waiting is None:
        return c
    timeline = waiting.timeline
    spawned = Starting(started.pid, None if timeline is None else evolve(
        timeline, spawned=started.at_ns, kept=started.kept))
    c = _replace_starting(c, waiting, spawned)
    return _served(c, spawned, started.at_ns, done) if config.ready is None else c


def _ready(config: Config, c: Clock, pid: int, at: int, done: list[Action]) -> Clock:
    entry = _find(c, pid)
    if entry is None:
        return c
    if config.handoff and c.served and entry.timeline is not None:
        # A restart, reported once it takes connections (the old target stops now).
        return _replace_starting(c, entry, evolve(entry, ready_at=at))
    return _served(c, entry, at, done)


def _ended(c: Clock, pid: int, done: list[Action]) -> Clock:
    """A start's process exited, or was never ready in time."""
    entry = _find(c, pid)
    if entry is not None and entry.ready_at is not None:
        return _switched(c, entry, None, done)  # it served, though not for long
    # Never ready: no restart, and left out of the figures.
    return c if entry is None else _replace_starting(c, entry, None)


def _old_gone(config: Config, c: Clock, now: int) -> Clock:
    """The stopped target's group is gone: the next start's `old exited` stamp."""
    following = _following(config, c)
    c = evolve(c, stopped_pid=None)
    if following is not None and following.old_exited is None:
        c = _put_following(config, c, evolve(following, old_exited=now))
    return c


def _action(
    config: Config, c: Clock, event: Event, action: Action, *, now: int, done: list[Action]
) -> Clock:
    match action:
        case Triggered(change=files, let_through=let_through):
            c = _triggered(c, event, files, now)
            if let_through and c.pending is not None:
                c = evolve(c, pending=evolve(c.pending, taken=now))
            return c
        case Start(role=Role.BUILD):
            return _build_started(c, now)
        case SignalGroup(role=Role.BUILD, stop=True) if c.building is not None:
            return evolve(c, building=None, builds=c.builds + c.building.builds,
                                       cancelled=c.cancelled + c.building.cancelled + 1)
        case Say(what=Note.BUILD_FAILED):
            return evolve(c, building=None, builds=0, cancelled=0)
        case Start(role=Role.TARGET):
            return _target_started(config, c, now)
        case SignalGroup(role=Role.TARGET, pid=pid, stop=True):
            return _target_stopped(config, c, pid, now, done)
        case SignalGroup(role=Role.TARGET, signum=signum, stop=False) if (
                signum == config.signal and c.served):
            return _signalled(config, c, now, done)
    return c


def _triggered(c: Clock, event: Event, files: FilesChanged | None, now: int) -> Clock:
    """A change (or a key, or `reentr restart`) starts a restart's timeline."""
    if files is not None:
        # Timed from the first path that counts (not one the loop guard mutes).
        change = Timeline(files.written()[0], files.detected_ns, files.paths[0])
    else:
        asked = ("reentr restart" if isinstance(event, RestartAsked) and not event.by_key
                 else "key")
        change = Timeline(now, now, asked=asked)
    if c.pending is not None:  # a stop already on its way serves the newer change too
        change = evolve(change, stop_sent=c.pending.stop_sent,
                                     old_exited=c.pending.old_exited)
    return evolve(c, pending=change)


def _build_started(c: Clock, now: int) -> Clock:
    builds, cancelled = c.builds, c.cancelled
    if c.building is not None:  # built, and never started: a newer build replaces it
        builds, cancelled = builds + c.building.builds, cancelled + c.building.cancelled
    content = c.pending
    if content is None:
        return evolve(c, building=None, builds=builds, cancelled=cancelled)
    # Work given up for older changes was being done when this change was seen, or, for one
    # the loop guard held, let through (the hold is its wait).
    began = max(content.detected, content.taken or 0) if builds else now
    return evolve(c, pending=None, builds=0, cancelled=0, building=(
        evolve(content, build_started=began, builds=builds + 1,
                            cancelled=cancelled)))


def _target_started(config: Config, c: Clock, now: int) -> Clock:
    if config.build is not None:
        content, c = c.building, evolve(c, building=None)
    else:
        content, c = c.pending, evolve(c, pending=None)
    if content is not None:
        content = evolve(content, start=now,
                                      superseded=content.superseded + c.superseded)
    return evolve(c, starting=(*c.starting, Starting(None, content)), superseded=0)


def _target_stopped(config: Config, c: Clock, pid: int, now: int, done: list[Action]) -> Clock:
    entry = _find(c, pid)
    if entry is not None and entry.ready_at is not None:
        # Ready, and told to stop before a connection of its own was seen: a restart as of
        # its readiness.
        return _switched(c, entry, None, done)
    if entry is not None:
        # Stopped before it served: the start that replaces it counts it.
        replaced = 0 if entry.timeline is None else 1 + entry.timeline.superseded
        c = evolve(_replace_starting(c, entry, None),
                                superseded=c.superseded + replaced)
    following = _following(config, c)
    if config.handoff or following is None:
        return c  # under --handoff the old target stops after the new one serves
    if following.stop_sent is None:
        c = _put_following(config, c, evolve(following, stop_sent=now))
    return evolve(c, stopped_pid=pid)


def _signalled(config: Config, c: Clock, now: int, done: list[Action]) -> Clock:
    """--signal: the restart is the signal, sent once the build (if any) is done."""
    content = c.building if config.build is not None else c.pending
    if content is None:
        return c
    c = evolve(c, building=None) if config.build is not None else \
        evolve(c, pending=None)
    return _report(c, evolve(content, ready=now), done)


def _following(config: Config, c: Clock) -> Timeline | None:
    """The content that starts next, once the serving target has stopped: what a finished
    build made, or, without a build, the newest change."""
    if config.build is not None:
        return c.building if c.building is not None and c.building.build_done else None
    return c.pending


def _put_following(config: Config, c: Clock, timeline: Timeline) -> Clock:
    if config.build is not None:
        return evolve(c, building=timeline)
    return evolve(c, pending=timeline)


def _unspawned(c: Clock) -> Starting | None:
    """The oldest start whose process has not been spawned yet (they spawn in order)."""
    return next((entry for entry in c.starting if entry.pid is None), None)


def _find(c: Clock, pid: int) -> Starting | None:
    return next((entry for entry in c.starting if entry.pid == pid), None)


def _replace_starting(c: Clock, old: Starting, new: Starting | None) -> Clock:
    entries = (new if entry is old else entry for entry in c.starting)
    return evolve(c, starting=tuple(e for e in entries if e is not None))


def _served(c: Clock, entry: Starting, at: int, done: list[Action]) -> Clock:
    """A start has served: the first to serve is not a restart, nor is one that holds no
    new change; any other is."""
    first = not c.served
    c = evolve(_replace_starting(c, entry, None), served=True)
    if first or entry.timeline is None:
        return c
    return _report(c, evolve(entry.timeline, ready=at), done)


def _switched(c: Clock, entry: Starting, at: int | None, done: list[Action]) -> Clock:
    """`--handoff`: the restart of a target that became ready, reported as of the first
    connection it took (`at`), or as of its readiness when none was seen."""
    assert entry.timeline is not None and entry.ready_at is not None
    c = _replace_starting(c, entry, None)
    return _report(c, evolve(entry.timeline, ready=entry.ready_at, served=at), done)


def _report(c: Clock, timeline: Timeline, done: list[Action]) -> Clock:
    number = c.number + 1
    done.append(Restarted(number, timeline))
    return evolve(c, number=number)
