"""The decisions that concern several services (`services.py`) as tables, then random
interleavings of several services' events, each service with its real policy, checked against
the invariants of `reentr up`."""

from __future__ import annotations

import dataclasses
import signal
from collections import deque
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reentr import policy, services
from reentr.config import Config, Probe, ProbeKind, WatchTree
from reentr.errors import ExitStatus
from reentr.events import (
    Began,
    Event,
    Exit,
    FilesChanged,
    GroupEmptied,
    KeyPressed,
    ProcessExited,
    ProcessStarted,
    Released,
    RestartAsked,
    Role,
    SetTimer,
    SignalGroup,
    SignalReceived,
    Start,
    TargetReady,
    TimerFired,
)
from reentr.graph import Graph
from reentr.services import Again, Crowd, Finished, Run, Tell, Waits
from reentr.timing import Timeline

T = Role.TARGET
CAP = 2
INT = SignalReceived(signal.SIGINT)


def chain(*probes: bool) -> Crowd:
    """Services a, b, c...: each depends on the one before."""
    names = "abcdef"[:len(probes)]
    graph = Graph.of([(n, (names[i - 1],) if i else ()) for i, n in enumerate(names)])
    return services.crowd(graph, probes)


def after(c: Crowd, name: str, event: Event, status: int | None = None, *,
          restarting: bool = False, running: bool = True
          ) -> tuple[Crowd, list[services.Decision]]:
    c, said = services.stepped(c, name, event, status, restarting=restarting, running=running)
    c, due = services.advance(c, 1)
    return c, [*said, *due]


def test_a_service_begins_once_what_it_depends_on_is_ready() -> None:
    c, due = services.advance(chain(False, True, False), 1)
    assert due == [Tell("a", Began("a"))]
    c, due = after(c, "a", ProcessStarted(T, 10, 0))  # no probe: started is ready
    assert due == [Tell("b", Began("b"))]
    c, due = after(c, "b", ProcessStarted(T, 11, 0))  # a probe: not yet
    assert due == []
    c, due = after(c, "b", TargetReady(11, 0))
    assert due == [Tell("c", Began("c"))]


def test_a_change_builds_at_once_and_swaps_once_what_it_depends_on_serves_again() -> None:
    c, _ = services.advance(chain(False, False), 1)
    c, _ = after(c, "a", ProcessStarted(T, 10, 0))
    c, _ = after(c, "a", FilesChanged(("/p/x",), 5, scope="a"), restarting=True)
    change = FilesChanged(("/p/x",), 5, scope="b")
    c, told = services.route(c, change, None)
    # Held: b builds beside a now, and swaps only once a serves again.
    assert told == [Tell("b", FilesChanged(("/p/x",), 5, scope="b", held=True))]
    assert c.holding == frozenset({"b"})
    c, due = after(c, "a", TargetReady(12, 0), restarting=False)
    assert due == [Tell("b", Released("b", 1))]
    assert c.holding == frozenset()


def test_a_restart_asked_waits_whole_while_what_it_depends_on_restarts() -> None:
    c, _ = services.advance(chain(False, False), 1)
    c, _ = after(c, "a", ProcessStarted(T, 10, 0))
    c, _ = after(c, "b", ProcessStarted(T, 11, 0))
    c, _ = after(c, "a", FilesChanged(("/p/x",), 5, scope="a"), restarting=True)
    asked = RestartAsked("b")
    c, told = services.route(c, asked, None)
    assert told == [] and c.deferred == (("b", asked),)
    c, due = after(c, "a", TargetReady(12, 0), restarting=False)
    assert due == [Again(asked)]


def test_keys_restart_all_in_order_or_one_by_its_number() -> None:
    c, _ = services.advance(chain(False, False), 1)
    c, _ = after(c, "a", ProcessStarted(T, 10, 0))
    c, told = services.route(c, KeyPressed(" "))
    assert told == [Again(RestartAsked("a", by_key=True)), Again(RestartAsked("b", by_key=True))]
    c, told = services.route(c, KeyPressed("r"))
    c, told = services.route(c, KeyPressed("2"))
    assert told == [Tell("b", KeyPressed(" "))]
    c, _ = services.route(c, KeyPressed("r"))
    c, told = services.route(c, KeyPressed("9"))
    assert told == [] and not c.choosing


def test_quitting_stops_dependents_first_and_a_second_ctrl_c_kills_those_after_too() -> None:
    c, _ = services.advance(chain(False, False, False), 1)
    for name, pid in (("a", 10), ("b", 11)):
        c, _ = after(c, name, ProcessStarted(T, pid, 0))
    c, told = services.route(c, INT)
    assert told == [] and c.quitting == ExitStatus.INTERRUPTED
    c, due = services.advance(c, 1)
    assert due == [Tell("c", INT)]
    c, told = services.route(c, INT)  # the second: to those told, and from now on at once
    assert told == [Tell("c", INT)]
    c, due = after(c, "c", GroupEmptied(T, 12), ExitStatus.INTERRUPTED)
    assert due == [Tell("b", INT), Tell("b", INT)]
    c, due = after(c, "b", GroupEmptied(T, 11), ExitStatus.INTERRUPTED)
    c, due = after(c, "a", GroupEmptied(T, 10), ExitStatus.INTERRUPTED)
    assert due == [Finished(ExitStatus.INTERRUPTED)]


def test_a_service_that_waits_for_one_that_never_came_up_is_said_once() -> None:
    c, _ = services.advance(chain(True, False), 1)
    c, said = after(c, "a", ProcessExited(T, 10, 1), running=False)
    assert said == [Waits("b", "a")]
    c, said = after(c, "a", ProcessExited(T, 11, 1), running=False)
    assert said == []


def test_a_single_run_gets_every_event() -> None:
    c = services.crowd(Graph.of([("", ())]), [False], several=False)
    c, due = services.advance(c, 1)
    assert due == [Tell("", Began(None))]
    for event in (KeyPressed(" "), INT, FilesChanged(("/p/x",), 1)):
        assert services.route(c, event)[1] == [Tell("", event)]


# Random interleavings ---------------------------------------------------------------------


class Town:
    """Several services, each with its real policy, driven as the runner drives them; their
    processes come and go at random, and obey SIGTERM only until the second Ctrl-C."""

    def __init__(self, deps: Sequence[tuple[str, tuple[str, ...]]], probes: Sequence[bool]):
        graph = Graph.of(list(deps))
        self.crowd = services.crowd(graph, probes, cap=CAP)
        self.configs = {name: Config(
            command=("x",), watch=WatchTree((Path("/p"),)), restart=True, loop_guard=False,
            ready=Probe(ProbeKind.LINE, "ready") if probe else None, build="make")
            for name, probe in zip(graph.order, probes, strict=True)}
        self.states = {name: policy.initial() for name in graph.order}
        self.queue: deque[Event] = deque()
        self.starts: list[tuple[str, Role]] = []
        self.live: dict[int, tuple[str, Role]] = {}
        self.signalled: dict[int, int] = {}
        self.exited: list[tuple[str, Role, int]] = []
        self.unready: set[int] = set()
        self.timers: list[tuple[str, TimerFired]] = []
        self.ready: set[str] = set()
        self.finished: int | None = None
        self.killing = False
        self.next_pid = 100
        self.decide([])

    def decide(self, decisions: list[services.Decision]) -> None:
        todo = deque(decisions)
        while True:
            while todo:
                match todo.popleft():
                    case Tell(name=name, event=event):
                        todo.extend(self.tell(name, event))
                    case Again(event=event):
                        self.queue.append(event)
                    case Run(name=name, start=start):
                        self.starts.append((name, start.role))
                    case Finished(status=status):
                        self.finished = status
                        return
            self.crowd, due = services.advance(self.crowd, 0)
            if not due:
                return
            todo.extend(due)

    def tell(self, name: str, event: Event) -> list[services.Decision]:
        if isinstance(event, Began):
            # A dependant never begins before what it depends on has served.
            assert set(self.crowd.graph.upstream(name)) <= self.ready
        config, status = self.configs[name], None
        self.states[name], actions = policy.step(config, self.states[name], event, 0)
        for action in actions:
            match action:
                case Start(role=Role.BUILD):
                    self.crowd, let = services.build(self.crowd, name, action)
                    self.starts += [(name, Role.BUILD) for _ in let]
                case Start(role=role):
                    self.starts.append((name, role))
                case SignalGroup(pid=pid, signum=signum):
                    self.signalled[pid] = signum
                case SetTimer(name=timer, pid=pid):
                    self.timers.append((name, TimerFired(timer, pid, name)))
                case Exit(status=code):
                    status = code
        state = self.states[name]
        running = any(s.starting or s.leader_alive for s in (state.target, state.incoming))
        if isinstance(event, TargetReady) or (isinstance(event, ProcessStarted)
                                               and event.role is T and not config.ready):
            self.ready.add(name)
        self.crowd, said = services.stepped(self.crowd, name, event, status,
                                            restarting=policy.restarting(state), running=running)
        return said

    def feed(self, event: Event, owner: str | None = None) -> None:
        if event == INT and self.crowd.quitting is not None:
            self.killing = True
        self.crowd, decisions = services.route(self.crowd, event, owner)
        self.decide(decisions)
        while self.queue and self.finished is None:
            self.crowd, decisions = services.route(self.crowd, self.queue.popleft())
            self.decide(decisions)

    def choices(self, outside: bool) -> list[tuple[Event, str | None]]:
        found: list[tuple[Event, str | None]] = []
        if outside:
            found += [(FilesChanged(("/p/x",), 0, scope=n), None)
                      for n in self.crowd.graph.order]
            found += [(KeyPressed(" "), None), (INT, None)]
            found += [(timer, None) for _, timer in self.timers]
        if self.starts:
            name, role = self.starts[0]
            found.append((ProcessStarted(role, self.next_pid, 0), name))
        for pid, (name, role) in self.live.items():
            signum = self.signalled.get(pid)
            if signum == signal.SIGKILL or (signum is not None and not self.killing):
                found.append((ProcessExited(role, pid, -signum), name))
            elif outside and signum is None:
                found.append((ProcessExited(role, pid, 0 if role is Role.BUILD else 1), name))
                if pid in self.unready:
                    found.append((TargetReady(pid, 0), name))
        found += [(GroupEmptied(role, pid), name) for name, role, pid in self.exited]
        return found

    def take(self, event: Event, owner: str | None) -> None:
        match event:
            case ProcessStarted(role=role, pid=pid):
                self.starts.pop(0)
                self.next_pid += 1
                assert owner is not None
                self.live[pid] = (owner, role)
                if self.crowd.quitting is None:  # at most CAP builds at once
                    groups = {n for n, r, _ in self.exited if r is Role.BUILD}
                    groups |= {n for n, r in self.live.values() if r is Role.BUILD}
                    assert len(groups) <= CAP
                if role is T and self.configs[owner].ready is not None:
                    self.unready.add(pid)
            case ProcessExited(role=role, pid=pid):
                del self.live[pid]
                self.unready.discard(pid)
                self.exited.append((self.routed(owner), role, pid))
            case GroupEmptied(role=role, pid=pid):
                self.exited.remove((self.routed(owner), role, pid))
            case TargetReady(pid=pid):
                self.unready.discard(pid)
            case TimerFired():
                self.timers = [t for t in self.timers if t[1] is not event]
        self.feed(event, owner)

    @staticmethod
    def routed(owner: str | None) -> str:
        assert owner is not None
        return owner


SHAPES = {
    "chain": ([("a", ()), ("b", ("a",)), ("c", ("b",))], [True, False, True]),
    "fork": ([("db", ()), ("api", ("db",)), ("web", ("db",)), ("all", ("api", "web"))],
             [False, True, True, False]),
}


@pytest.mark.parametrize("shape", SHAPES)
@settings(max_examples=200, deadline=None)
@given(picks=st.lists(st.integers(0, 10_000), min_size=1, max_size=120))
@example(picks=[20, 2050, 0, 6, 6, 6, 141, 1086])  # fork: three builds at once, found by CI
def test_random_interleavings_of_several_services_keep_the_invariants(
    shape: str, picks: list[int]
) -> None:
    town = Town(*SHAPES[shape])
    for pick in picks:
        options = town.choices(outside=True)
        if not options or town.finished is not None:
            break
        town.take(*options[pick % len(options)])
    # A change is held back only while a service it depends on restarts.
    restarting = {m.name for m in town.crowd.members if m.restarting and not m.done}
    assert all(town.crowd.graph.waits(name, restarting) for name, _ in town.crowd.deferred)
    # Two Ctrl-C, then only what the kernel does: the processes stopped by SIGKILL end, and
    # no grace ever runs out (no timer fires).
    for _ in range(2):
        if town.finished is None:
            town.feed(INT)
    while town.finished is None and (options := town.choices(outside=False)):
        town.take(*options[0])
    # Every service ends when reentr ends, every process with it.
    assert town.finished is not None, (town.live, town.starts, town.crowd)
    assert all(m.done for m in town.crowd.members)
    assert not town.live and not town.exited


@pytest.mark.parametrize(("build", "taken", "wait", "built"), [
    # Built while it waited: the build is the build's, the wait only what was left of it.
    ((10, 60), 100, 40, 50),
    # Built longer than it waited: no wait at all.
    ((10, 160), 100, 0, 150),
    # Waited, then built (a restart asked waits whole): the wait, then the build.
    ((110, 160), 100, 90, 50),
])
def test_a_held_restarts_wait_is_what_its_build_did_not_fill(
    build: tuple[int, int], taken: int, wait: int, built: int
) -> None:
    ms = 1_000_000
    timeline = Timeline(edit=0, detected=10 * ms, trigger="/p/x", build_started=build[0] * ms,
                        build_done=build[1] * ms, taken=taken * ms, start=200 * ms,
                        spawned=201 * ms, ready=201 * ms)
    stages = timeline.stages_ms()
    assert (stages["wait"], stages["build"]) == (wait, built)
    assert abs(sum(stages.values()) - timeline.total_ms()) < 1e-6


def test_builds_beyond_the_cap_wait_their_turn() -> None:
    c = chain(False, False, False)
    starts = [Start(Role.BUILD, "/p/x") for _ in range(3)]
    c, first = services.build(c, "a", starts[0])
    c, second = services.build(c, "b", starts[1])
    c, third = services.build(dataclasses.replace(c, cap=2), "c", starts[2])
    assert first == [Run("a", starts[0])] and second == [Run("b", starts[1])] and third == []
    c, _ = services.stepped(c, "a", GroupEmptied(Role.BUILD, 5), None, restarting=True,
                            running=True)
    c, due = services.advance(c, 1)
    assert [d for d in due if isinstance(d, Run)] == [Run("c", starts[2])]
    assert c.building == ("b", "c") and c.queued == ()


def test_a_services_next_build_let_start_before_its_last_builds_group_is_gone_keeps_its_slot(
) -> None:
    # The runner carries out a step's actions (a new build of `a`, for a change made while
    # its last build ran) before it tells `stepped` that the last build's group is gone:
    # counting services rather than builds, that end freed the slot the new build holds, and
    # a third build ran beside two (found by the random interleavings below).
    c = chain(False, False, False)
    start = Start(Role.BUILD, "/p/x")
    c, _ = services.build(dataclasses.replace(c, cap=2), "a", start)
    c, again = services.build(c, "a", start)  # the last one's group not yet gone
    c, _ = services.stepped(c, "a", GroupEmptied(Role.BUILD, 5), None, restarting=True,
                            running=True)
    c, other = services.build(c, "b", start)
    c, third = services.build(c, "c", start)
    assert again == [Run("a", start)] and other == [Run("b", start)] and third == []
    assert c.building == ("a", "b")
