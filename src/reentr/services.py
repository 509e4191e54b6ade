"""The decisions that concern more than one service (`reentr up`), as `policy.step` makes those
of one: which service an event is for, which change waits for a service it depends on to serve
again, when each service begins and when it is told to stop, the keys, quitting and the second
Ctrl-C. Pure: the runner says what happened (an event, and what each service's policy made of
it) and carries out the decisions returned. A single run is a crowd of one, to which every
event goes.

- A service begins once every service it depends on is ready (`graph.py`).
- A change for a service whose dependencies (directly or not) restart for it too is held: the
  service builds at once, beside them, and swaps its target only once they serve again; a
  restart asked (a key, `reentr restart`) waits whole. A change several services want so
  restarts them in dependency order, their builds side by side.
- On the way out, a service is told to stop once every service that depends on it is gone;
  after a second Ctrl-C, each is killed as soon as it is told.
- At most `cap` builds run at once (the machine's cores); the others wait their turn.
- Timers and processes are addressed by service: the runner names the service a process
  belongs to, and a timer carries its own.
"""

from __future__ import annotations

from collections.abc import Iterable

from reentr.errors import ExitStatus
from reentr.events import (
    Began,
    DirectoryAltered,
    Event,
    FilesChanged,
    GroupEmptied,
    KeyPressed,
    ProcessExited,
    ProcessStarted,
    ProcessStartFailed,
    ReadyTimedOut,
    Released,
    RestartAsked,
    Role,
    SignalReceived,
    Start,
    TargetReady,
    TargetServes,
    TimerFired,
    WatcherFailed,
)
from reentr.graph import Graph
from reentr.policy import quit_status
from reentr.records import evolve, record


@record
class Member:
    """What the decisions know of one service."""

    name: str
    probe: bool = False
    """It has a readiness probe: it is ready once the probe answered, not once it started."""
    began: bool = False
    ready: bool = False
    """Its target has served once: those that depend on it may begin."""
    told: bool = False
    """Told to stop."""
    done: bool = False
    """Its policy has ended: every process of it is gone."""
    restarting: bool = False
    """A restart of it is under way (`policy.restarting`)."""
    running: bool = False
    """Its target's process is there, or about to be."""
    waited: frozenset[str] = frozenset()
    """The services it was said to wait for."""


@record
class Crowd:
    graph: Graph
    members: tuple[Member, ...]
    """In dependency order, as `graph.order`."""
    several: bool = True
    """`reentr up`; False for a single run, to which every event goes."""
    deferred: tuple[tuple[str, RestartAsked], ...] = ()
    """Restarts asked for a service that waits for one it depends on to serve again."""
    holding: frozenset[str] = frozenset()
    """Services given a held change: each builds now, and swaps once `Released`."""
    cap: int = 2
    """How many builds may run at once (the machine's cores): the rest wait their turn."""
    building: tuple[str, ...] = ()
    """The service of each build that runs, or was let start, until its group is gone: a
    service may be in it twice, its last build's group not yet gone when its next is let start
    (the runner carries out a step's actions before it tells `stepped` of the step)."""
    queued: tuple[tuple[str, Start], ...] = ()
    """Builds waiting for one of those to end, in the order they were asked for."""
    quitting: int | None = None
    """The run's exit status, once something ended it."""
    stopping: Event | None = None
    """What each service is told once its dependents are gone (`q`, Ctrl-C)."""
    killing: Event | None = None
    """The second Ctrl-C: told at once after `stopping` from then on."""
    choosing: bool = False
    """`r` was pressed: the next digit names the service to restart."""

    def member(self, name: str) -> Member:
        return self.members[self.graph.order.index(name)]

    def names(self, **facts: bool) -> set[str]:
        """The names of the members whose facts are as given: `names(began=True)`."""
        return {m.name for m in self.members
                if all(getattr(m, fact) == value for fact, value in facts.items())}


@record
class Tell:
    """Give `event` to the service's policy now."""

    name: str
    event: Event


@record
class Again:
    """Put `event` back on the queue, before anything else."""

    event: Event


@record
class Run:
    """Start the process that service `name`'s policy asked for (a build let through)."""

    name: str
    start: Start


@record
class Waits:
    """Say, once, that service `name` waits for `other`, which is not running and was never
    ready."""

    name: str
    other: str


@record
class Finished:
    """Every service has ended: the run exits with `status`."""

    status: int


Decision = Tell | Again | Run | Waits | Finished


def crowd(graph: Graph, probes: Iterable[bool], *, several: bool = True, cap: int = 2) -> Crowd:
    """The crowd of `graph`'s services, none begun; `probes` says, in order, which has a
    readiness probe; `cap` how many builds may run at once."""
    members = tuple(Member(name, probe) for name, probe in zip(graph.order, probes, strict=True))
    return Crowd(graph, members, several, cap=max(cap, 1))


def build(c: Crowd, name: str, start: Start) -> tuple[Crowd, list[Decision]]:
    """Service `name`'s policy asks for a build: it runs now if fewer than `cap` do, else it
    waits its turn (its policy sees a slow start meanwhile)."""
    if not c.several or (len(c.building) < c.cap and not c.queued):
        return evolve(c, building=(*c.building, name)), [Run(name, start)]
    return evolve(c, queued=(*c.queued, (name, start))), []


def route(c: Crowd, event: Event, owner: str | None = None) -> tuple[Crowd, list[Decision]]:
    """The services an event is for, and what each is told; `owner` is the service whose
    process the event is about (a process event), if any."""
    if not c.several:
        return c, [Tell(c.members[0].name, event)]
    match event:
        case FilesChanged(scope=name) if name in c.graph.order and not c.member(name).began:
            # Not begun yet: its first start, once what it depends on is ready, takes the
            # files as they are then (given now, the change would start it too early).
            return c, []
        case FilesChanged(scope=name) if name in c.graph.order and _waits(c, name):
            # Its build runs beside theirs; only its swap waits (`advance` releases it).
            return evolve(c, holding=c.holding | {name}), [
                Tell(name, evolve(event, held=True))]
        case RestartAsked(service=name) if name in c.graph.order and _waits(c, name):
            return evolve(c, deferred=(*c.deferred, (name, event))), []
        case RestartAsked(service=name) if name in c.graph.order:
            return c, _restart(c, name, event)
        case FilesChanged(scope=name) | ProcessStartFailed(service=name) | Began(
                service=name) | TimerFired(service=name) if name in c.graph.order:
            return c, [Tell(name, event)]
        case (ProcessStarted() | ProcessExited() | GroupEmptied() | TargetReady()
              | TargetServes() | ReadyTimedOut()) if owner is not None:
            return c, [Tell(owner, event)]
        case KeyPressed() | SignalReceived():
            return _asked(c, event)
        case DirectoryAltered() | WatcherFailed():
            return c, [Tell(m.name, event) for m in c.members if not m.done]
    return c, []


def _asked(c: Crowd, event: KeyPressed | SignalReceived) -> tuple[Crowd, list[Decision]]:
    """A key, or a signal: restart all, one, or quit (a second Ctrl-C kills)."""
    match event:
        case KeyPressed(key=" "):
            # Every service in dependency order: each once those it needs serve again.
            return evolve(c, choosing=False), [
                Again(RestartAsked(name, by_key=True)) for name in c.graph.order]
        case KeyPressed(key="r"):
            return evolve(c, choosing=True), []
        case KeyPressed(key=key) if c.choosing and key.isdigit():
            c = evolve(c, choosing=False)
            number = int(key)
            if 1 <= number <= len(c.members):
                return c, _restart(c, c.graph.order[number - 1], KeyPressed(" "))
        case KeyPressed(key="q"):
            return _quit(c, ExitStatus.OK, event), []
        case SignalReceived(signum=signum):
            if c.quitting is not None:  # a second Ctrl-C: no more grace for anyone
                return evolve(c, killing=event), [
                    Tell(m.name, event) for m in c.members if m.told and not m.done]
            return _quit(c, quit_status(signum), event), []
    return c, []


def stepped(
    c: Crowd, name: str, event: Event, status: int | None, *, restarting: bool, running: bool
) -> tuple[Crowd, list[Decision]]:
    """What service `name`'s policy made of `event`: its exit status if it has ended, whether
    a restart of it is under way and whether its target runs."""
    if isinstance(event, GroupEmptied | ProcessStartFailed) and event.role is Role.BUILD:
        c = evolve(c, building=_without_one(c.building, name))
    m = evolve(c.member(name), restarting=restarting, running=running)
    if status is not None:
        m = evolve(m, done=True)
        if c.quitting is None:
            c = _quit(c, status, KeyPressed("q"))
    if not m.ready and (isinstance(event, TargetReady) or (
            isinstance(event, ProcessStarted) and event.role is Role.TARGET and not m.probe)):
        m = evolve(m, ready=True)
    c = _put(c, m)
    failed = isinstance(event, ProcessStartFailed) or (isinstance(event, ProcessExited) and (
        event.role is Role.TARGET or event.status != 0))
    if not failed or m.ready or m.running or c.quitting is not None:
        return c, []
    said: list[Decision] = []
    for other in c.graph.blocked(name, c.names(began=True)):
        waiting = c.member(other)
        if name not in waiting.waited:
            c = _put(c, evolve(waiting, waited=waiting.waited | {name}))
            said.append(Waits(other, name))
    return c, said


def _without_one(names: tuple[str, ...], name: str) -> tuple[str, ...]:
    """`names` less one `name` (the build whose group is gone), if it is there."""
    if name not in names:
        return names
    at = names.index(name)
    return names[:at] + names[at + 1:]


def advance(c: Crowd, now_ns: int) -> tuple[Crowd, list[Decision]]:
    """What is due once the decisions so far are carried out: the changes whose wait is over,
    the services that may begin, the next to be told to stop, or the end of the run."""
    out: list[Decision] = []
    released = [(name, e) for name, e in c.deferred if not _waits(c, name)]
    if released:
        c = evolve(c, deferred=tuple(d for d in c.deferred if d not in released))
        out.extend(Again(e) for _, e in released)
    while c.queued and (len(c.building) < c.cap or c.quitting is not None):
        # In turn; all at once on the way out, where each is stopped as it starts.
        (name, start), rest = c.queued[0], c.queued[1:]
        c = evolve(c, queued=rest, building=(*c.building, name))
        out.append(Run(name, start))
    free = {name for name in c.holding if not _waits(c, name)}
    if free:
        c = evolve(c, holding=c.holding - free)
        out.extend(Tell(name, Released(name, now_ns)) for name in c.graph.order if name in free)
    for name in c.graph.startable(c.names(began=True), c.names(ready=True), c.names(told=True)):
        c = _put(c, evolve(c.member(name), began=True))
        out.append(Tell(name, Began(name if c.several else None)))
    if c.stopping is not None:
        told = [c.stopping] if c.killing is None else [c.stopping, c.killing]
        for name in c.graph.stoppable(c.names(told=True), c.names(done=True)):
            c = _put(c, evolve(c.member(name), told=True))
            if not c.member(name).done:
                out.extend(Tell(name, event) for event in told)
    if not out and all(m.done for m in c.members):
        assert c.quitting is not None, "a service ends only once the run does"
        out.append(Finished(c.quitting))
    return c, out


def _waits(c: Crowd, name: str) -> bool:
    """Whether a change for `name` waits for a service it depends on to serve again."""
    return c.graph.waits(name, {m.name for m in c.members if not m.done and m.restarting})


def _restart(c: Crowd, name: str, asked: Event) -> list[Decision]:
    """`asked` (a key, or `RestartAsked`) for the service, if it runs."""
    m = c.member(name)
    return [Tell(name, asked)] if m.began and not m.told else []


def _quit(c: Crowd, status: int, event: Event) -> Crowd:
    """End the run with `status`: each service is told `event` once every service that
    depends on it is gone."""
    return evolve(c, quitting=status, stopping=event)


def _put(c: Crowd, m: Member) -> Crowd:
    index = c.graph.order.index(m.name)
    return evolve(c, members=(*c.members[:index], m, *c.members[index + 1:]))
