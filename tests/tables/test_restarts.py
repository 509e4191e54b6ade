"""Which start is a restart, and its timeline, as tables of interleavings through the pure
policy (no OS at all), then random interleavings checked against the invariants."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reentr import loops, policy
from reentr.config import Config, OnBusy, Probe, ProbeKind, WatchList
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
    Restarted,
    Role,
    SetTimer,
    SignalGroup,
    Start,
    TargetReady,
    TargetServes,
    Timer,
    TimerFired,
    Triggered,
)
from reentr.timing import Timeline

B, T = Role.BUILD, Role.TARGET
LINE = Probe(ProbeKind.LINE, "ready", 30.0)
BASE = Config(command=("app",), watch=WatchList((Path("/p/a"),)), restart=True, ready=LINE)
MS = 1_000_000


def cfg(**changes: object) -> Config:
    return dataclasses.replace(BASE, **changes)  # type: ignore[arg-type]


def change(at_ms: int, path: str = "/p/a", written_ms: int | None = None) -> FilesChanged:
    written = at_ms - 2 if written_ms is None else written_ms
    return FilesChanged((path,), at_ms * MS, (written * MS,))


def play(config: Config, timed: Sequence[tuple[int, Event]]) -> tuple[list[Timeline], list[Action]]:
    """Feed (ms, event) pairs to the policy; the restarts it reports, and every action."""
    state, done, actions = policy.initial(), [], []
    for at_ms, event in timed:
        state, step = policy.step(config, state, event, at_ms * MS)
        actions += step
        done += [a.timeline for a in step if isinstance(a, Restarted)]
    return done, actions


def served(pid: int, at_ms: int) -> list[tuple[int, Event]]:
    return [(at_ms, TargetReady(pid, at_ms * MS))]


def ended(role: Role, pid: int, at_ms: int, status: int = 0) -> list[tuple[int, Event]]:
    return [(at_ms, ProcessExited(role, pid, status, at_ns=at_ms * MS)),
            (at_ms, GroupEmptied(role, pid))]


def spawned(role: Role, pid: int, at_ms: int) -> list[tuple[int, Event]]:
    return [(at_ms, ProcessStarted(role, pid, at_ms * MS))]


def stages(timeline: Timeline) -> dict[str, int]:
    return {stage: round(ms) for stage, ms in timeline.stages_ms().items()}


# A first start that serves (pid 10), the loop then waits for changes.
FIRST = [(0, Began()), *spawned(T, 10, 1), *served(10, 50)]
FIRST_BUILT = [(0, Began()), *spawned(B, 1, 1), *ended(B, 1, 100), *spawned(T, 10, 101),
               *served(10, 150)]


def test_a_plain_restart_is_timed_from_the_edit_to_ready() -> None:
    done, _ = play(BASE, [*FIRST, (1000, change(1000)), *ended(T, 10, 1010),
                          *spawned(T, 11, 1012), *served(11, 1100)])
    assert len(done) == 1
    assert stages(done[0]) == {"detect": 2, "wait": 0, "build": 0, "stop": 10, "spawn": 2,
                               "ready": 88, "switch": 0, "other": 0}
    assert done[0].total_ms() == 102


def test_the_first_start_is_never_a_restart_even_when_changes_come_during_its_build() -> None:
    # Cargo writes Cargo.lock during the first build: the build is run again, and what
    # finally serves is still the first start.
    config = cfg(build="cargo build")
    done, _ = play(config, [(0, Began()), *spawned(B, 1, 1), (300, change(300, "/p/Cargo.lock")),
                            *ended(B, 1, 305, -15), *spawned(B, 2, 306), *ended(B, 2, 900),
                            *spawned(T, 10, 901), *served(10, 950)])
    assert done == []
    # The next change is restart #1.
    done, _ = play(config, [(0, Began()), *spawned(B, 1, 1), (300, change(300)),
                            *ended(B, 1, 305, -15), *spawned(B, 2, 306), *ended(B, 2, 900),
                            *spawned(T, 10, 901), *served(10, 950), (2000, change(2000)),
                            *spawned(B, 3, 2001), *ended(B, 3, 2500), *ended(T, 10, 2510),
                            *spawned(T, 11, 2511), *served(11, 2600)])
    assert len(done) == 1 and done[0].edit == 1998 * MS


def test_a_change_while_the_new_program_starts_is_a_restart_of_its_own() -> None:
    # The reproduction: a 1 s build, a program that takes 0.5 s to be ready, and a
    # second edit while the first edit's program is starting. Two restarts, each with its
    # own build; neither reports build 0.
    config = cfg(build="sleep 1")
    done, _ = play(config, [
        *FIRST_BUILT,
        (3000, change(3000)), *spawned(B, 2, 3001), *ended(B, 2, 4001),
        *ended(T, 10, 4010), *spawned(T, 11, 4011),
        (4200, change(4200)), *spawned(B, 3, 4201),   # built beside the starting program
        *served(11, 4511),                             # the first edit's program serves
        *ended(B, 3, 5201), *ended(T, 11, 5210), *spawned(T, 12, 5211), *served(12, 5711),
    ])
    assert [t.edit for t in done] == [2998 * MS, 4198 * MS]
    assert [stages(t)["build"] for t in done] == [1001, 1001]
    assert [round(t.total_ms()) for t in done] == [1513, 1513]


def test_a_start_replaced_before_it_served_is_counted_by_the_one_that_replaces_it() -> None:
    done, _ = play(BASE, [*FIRST, (1000, change(1000)), *ended(T, 10, 1010),
                          *spawned(T, 11, 1012),
                          (1030, change(1030)),                   # 11 is stopped, not ready
                          *ended(T, 11, 1040), *spawned(T, 12, 1041), *served(12, 1141)])
    assert len(done) == 1
    assert done[0].superseded == 1 and done[0].edit == 1028 * MS
    assert round(done[0].total_ms()) == 113


def test_a_cancelled_build_is_counted_in_the_build_of_the_newest_change() -> None:
    config = cfg(build="go build")
    done, actions = play(config, [
        *FIRST_BUILT, (1000, change(1000)), *spawned(B, 2, 1001),
        (1400, change(1400)),                     # stops build 2
        *ended(B, 2, 1410, -15), *spawned(B, 3, 1411), *ended(B, 3, 1900),
        *ended(T, 10, 1905), *spawned(T, 11, 1906), *served(11, 1950),
    ])
    assert SignalGroup(B, 2, __import__("signal").SIGTERM, stop=True) in actions
    (restart,) = done
    assert (restart.builds, restart.cancelled) == (2, 1)
    assert restart.edit == 1398 * MS  # the program holds the newest change
    # The stop of the cancelled build is building: from the change's detection on.
    assert stages(restart) == {"detect": 2, "wait": 0, "build": 500, "stop": 5, "spawn": 1,
                               "ready": 44, "switch": 0, "other": 0}


def test_queued_changes_during_a_build_are_two_restarts() -> None:
    config = cfg(build="make", on_busy=OnBusy.QUEUE)
    done, _ = play(config, [
        *FIRST_BUILT, (1000, change(1000)), *spawned(B, 2, 1001), (1200, change(1200)),
        *ended(B, 2, 1500), *ended(T, 10, 1505), *spawned(T, 11, 1506),
        *spawned(B, 3, 1507), *served(11, 1550),
        *ended(B, 3, 2000), *ended(T, 11, 2005), *spawned(T, 12, 2006), *served(12, 2050),
    ])
    assert [t.edit for t in done] == [998 * MS, 1198 * MS]


def test_a_handoff_is_timed_to_the_first_connection_the_new_target_takes() -> None:
    # Ready at 1100; the old target, told to stop then, takes connections until 1104.
    config = cfg(handoff=True)
    done, _ = play(config, [*FIRST, (1000, change(1000)), *spawned(T, 11, 1001),
                            *served(11, 1100), (1104, TargetServes(11, 1104 * MS)),
                            *ended(T, 10, 1150)])
    (restart,) = done
    assert stages(restart)["stop"] == 0 and stages(restart)["switch"] == 4
    assert round(restart.total_ms()) == 106


@pytest.mark.parametrize("after", [
    [(1104, TargetServes(11, None))],  # not seen (a Unix socket, or not in time)
    ended(T, 11, 1104),  # it exited
    # A newer change's target is ready, so 11 is stopped before a connection of its own.
    [(1102, change(1102)), *spawned(T, 12, 1103), *served(12, 1200)],
])
def test_a_handoff_whose_first_connection_is_not_seen_is_timed_to_ready(
    after: list[tuple[int, Event]]
) -> None:
    config = cfg(handoff=True)
    ready = [*FIRST, (1000, change(1000)), *spawned(T, 11, 1001), *served(11, 1100)]
    assert play(config, ready)[0] == []  # the old target may still take every connection
    done, _ = play(config, [*ready, *after])
    restart = done[0]
    assert restart.served is None and stages(restart)["switch"] == 0
    assert round(restart.total_ms()) == 102


def test_a_path_the_loop_guard_mutes_is_neither_the_trigger_nor_the_edit() -> None:
    # out.txt, which the runs rewrite, is found to loop (and its write came while a run could
    # make it); a batch that holds it first, then an edit of a.txt, is a.txt's change, timed
    # from a.txt's write.
    state = policy.initial()
    state = dataclasses.replace(state, guard=dataclasses.replace(
        state.guard, muted=frozenset({"/p/out.txt"}), looping=frozenset({"/p/out.txt"}),
        runs=(loops.Run(99, loops.Span.LIFE, 900 * MS, 1005 * MS),)))
    done: list[Timeline] = []
    for at_ms, event in [*FIRST, (1000, FilesChanged(("/p/out.txt", "/p/a"), 1000 * MS,
                                                       (990 * MS, 995 * MS))),
                         *ended(T, 10, 1010), *spawned(T, 11, 1012), *served(11, 1100)]:
        state, step = policy.step(BASE, state, event, at_ms * MS)
        done += [a.timeline for a in step if isinstance(a, Restarted)]
    (restart,) = done
    assert restart.trigger == "/p/a" and restart.edit == 995 * MS


def test_a_failed_build_is_no_restart_and_the_next_change_is_timed_from_itself() -> None:
    config = cfg(build="make")
    done, _ = play(config, [*FIRST_BUILT, (1000, change(1000)), *spawned(B, 2, 1001),
                            *ended(B, 2, 1300, 2),                     # fails: 10 serves on
                            (5000, change(5000)), *spawned(B, 3, 5001), *ended(B, 3, 5300),
                            *ended(T, 10, 5310), *spawned(T, 11, 5311), *served(11, 5400)])
    (restart,) = done
    assert restart.edit == 4998 * MS and restart.builds == 1
    assert round(restart.total_ms()) == 402


def test_a_rolled_back_handoff_is_no_restart() -> None:
    config = cfg(handoff=True)
    done, actions = play(config, [*FIRST, (1000, change(1000)), *spawned(T, 11, 1001),
                                  (31001, ReadyTimedOut(11)), *ended(T, 11, 31010),
                                  (40000, change(40000)), *spawned(T, 12, 40001),
                                  *served(12, 40100), (40101, TargetServes(12, 40101 * MS))])
    assert any(getattr(a, "what", None) is Note.ROLLED_BACK for a in actions)
    (restart,) = done
    assert restart.edit == 39998 * MS and restart.superseded == 0


def test_a_start_that_fails_holds_nothing_for_the_next_one() -> None:
    # A build that does not make the program: the start fails; the next change's start is
    # timed from that change, not from the failed one's.
    config = cfg(build="make")
    done, _ = play(config, [*FIRST_BUILT, (1000, change(1000)), *spawned(B, 2, 1001),
                            *ended(B, 2, 1300), *ended(T, 10, 1310),
                            (1311, ProcessStartFailed(T, "no such file")),
                            (5000, change(5000)), *spawned(B, 3, 5001), *ended(B, 3, 5300),
                            *spawned(T, 11, 5311), *served(11, 5400)])
    (restart,) = done
    assert restart.edit == 4998 * MS


def test_a_start_that_is_never_ready_is_no_restart() -> None:
    done, _ = play(BASE, [*FIRST, (1000, change(1000)), *ended(T, 10, 1010),
                          *spawned(T, 11, 1012), (31012, ReadyTimedOut(11)),
                          (32000, change(32000)), *ended(T, 11, 32010), *spawned(T, 12, 32011),
                          *served(12, 32100)])
    assert len(done) == 1 and done[0].edit == 31998 * MS


def test_signal_mode_counts_each_signal_after_the_first_start() -> None:
    import signal

    config = cfg(restart=False, signal=signal.SIGHUP, ready=None)
    done, _ = play(config, [(0, Began()), *spawned(T, 10, 1), (1000, change(1000)),
                            (2000, change(2000))])
    assert [round(t.total_ms()) for t in done] == [2, 2]


# Random interleavings ---------------------------------------------------------------------


class World:
    """Processes as the policy's actions ask for them, with random timing: which events may
    happen next, and what each start's program holds."""

    def __init__(self, config: Config):
        self.config = config
        self.state = policy.initial()
        self.now = 0
        self.next_pid = 100
        self.starts: list[Role] = []
        self.live: dict[int, Role] = {}
        self.stopping: set[int] = set()
        self.unready: set[int] = set()
        self.exited: list[tuple[Role, int]] = []
        """Leaders gone whose group has not emptied yet."""
        self.newest_edit: int | None = None
        self.build_holds: dict[int, int | None] = {}
        self.built: int | None = None
        self.holds: dict[int, int | None] = {}
        self.served_holds: list[int | None] = []
        self.reported: list[tuple[Timeline, int | None]] = []
        self.changes = 0
        self.pending_hold: int | None = None
        self.target_hold: int | None = None
        self.switching: set[int] = set()
        """--handoff: ready targets whose restart waits for their first connection."""
        self.apply(Began())

    def apply(self, event: Event) -> None:
        self.now += 1 + (self.now % 7)
        if isinstance(event, TargetReady | ProcessStarted) or (
                isinstance(event, TargetServes) and event.at_ns is not None):
            event = dataclasses.replace(event, at_ns=self.now)
        if isinstance(event, FilesChanged):
            event = FilesChanged(event.paths, self.now, (self.now - 1,))
        self.state, actions = policy.step(self.config, self.state, event, self.now)
        if isinstance(event, TargetReady):
            self.unready.discard(event.pid)
            if self.config.handoff and self.served_holds and self.holds[event.pid] is not None:
                self.switching.add(event.pid)
            # Offered only for a live target not being stopped: it serves (under --handoff
            # the old target too, beside the new one).
            self.served_holds.append(self.holds[event.pid])
        stopped: int | None = None
        for action in actions:
            match action:
                case Triggered():
                    assert isinstance(event, FilesChanged)
                    self.newest_edit = event.written()[0]
                case Start(role=role):
                    self.starts.append(role)
                    if role is B:
                        self.pending_hold = self.newest_edit
                    elif self.config.build is not None:
                        self.target_hold = self.built
                    else:
                        self.target_hold = self.newest_edit
                case SignalGroup(pid=pid, stop=True):
                    self.stopping.add(pid)
                    self.unready.discard(pid)
                    stopped = pid if pid in self.switching else None
                case Restarted(timeline=timeline):
                    # Whose: a handoff's target told to stop before its first connection was
                    # seen, or the one the event is about.
                    served = stopped or (event.pid if isinstance(
                        event, TargetReady | ProcessStarted | TargetServes | ProcessExited)
                        else None)
                    stopped = None
                    self.switching.discard(served or 0)
                    self.reported.append((timeline, self.holds.get(served) if served else None))

    def choices(self) -> list[Event]:
        found: list[Event] = []
        if self.changes < 6:
            found.append(FilesChanged(("/p/a",), 0))
        if self.starts:
            found.append(ProcessStarted(self.starts[0], self.next_pid, 0))
        for pid, role in self.live.items():
            if pid in self.stopping:
                found.append(ProcessExited(role, pid, -15))
            elif role is B:
                found += [ProcessExited(B, pid, 0), ProcessExited(B, pid, 1)]
            elif pid in self.unready:
                found += [TargetReady(pid, 0), ReadyTimedOut(pid)]
            if pid in self.switching:
                found += [TargetServes(pid, 0), TargetServes(pid, None)]
        found += [GroupEmptied(role, pid) for role, pid in self.exited]
        return found

    def take(self, event: Event) -> None:
        match event:
            case FilesChanged():
                self.changes += 1
            case ReadyTimedOut(pid=pid):
                self.unready.discard(pid)
            case ProcessStarted(role=role):
                self.starts.pop(0)
                pid = self.next_pid
                self.next_pid += 1
                self.live[pid] = role
                if role is B:
                    self.build_holds[pid] = self.pending_hold
                else:
                    self.holds[pid] = self.target_hold
                    self.unready.add(pid)
            case ProcessExited(role=role, pid=pid, status=status):
                del self.live[pid]
                self.unready.discard(pid)
                self.exited.append((role, pid))
                if role is B and status == 0 and pid not in self.stopping:
                    self.built = self.build_holds[pid]
            case GroupEmptied(role=role, pid=pid):
                self.exited.remove((role, pid))
        self.apply(event)


# The loop guard would mute a path that changes during every run: off, so that every
# interleaving keeps its changes.
CONFIGS = {
    "restart": cfg(loop_guard=False),
    "build": cfg(build="make", loop_guard=False),
    "queue": cfg(build="make", on_busy=OnBusy.QUEUE, loop_guard=False),
    "ignore": cfg(build="make", on_busy=OnBusy.IGNORE, loop_guard=False),
    "handoff": cfg(handoff=True, loop_guard=False),
    "handoff-build": cfg(handoff=True, build="make", loop_guard=False),
}


@pytest.mark.parametrize("name", CONFIGS)
@settings(max_examples=300, deadline=None)
@given(picks=st.lists(st.integers(0, 10_000), min_size=1, max_size=80))
def test_random_interleavings_keep_the_invariants(name: str, picks: list[int]) -> None:
    world = World(CONFIGS[name])
    for pick in picks:
        options = world.choices()
        if not options:
            break
        world.take(options[pick % len(options)])
    # Restarts = starts that served after the first (under --handoff, once each took its
    # first connection, was stopped or exited).
    assert len(world.reported) == max(len(world.served_holds) - 1, 0) - len(world.switching)
    for timeline, holds in world.reported:
        stages = timeline.stages_ms()
        # The stages add up to the total.
        assert abs(sum(stages.values()) - timeline.total_ms()) < 1e-6
        assert sum(v for k, v in stages.items() if k != "other") <= timeline.total_ms() + 1e-6
        # Timed from the newest change its program holds, never an older one.
        assert holds is not None and timeline.edit == holds


def test_a_save_the_loop_guard_held_is_built_and_its_hold_is_a_wait() -> None:
    """Saves made one after another, each during the build the one before started: the
    third such change is held, the build under way (for an older content) is stopped, and
    once nothing runs and a quiet wait has passed, the held save is built and served. Its
    restart is timed from its write; the hold is its wait, not its detection."""
    config = cfg(build="make", ready=None)
    state, actions = policy.initial(), []

    def feed(at_ms: int, event: Event) -> list[Action]:
        nonlocal state
        state, step = policy.step(config, state, event, at_ms * MS)
        actions.extend(step)
        return step

    for at_ms, event in FIRST_BUILT[:-1]:
        feed(at_ms, event)
    feed(1000, change(1000))  # nothing runs: the user's, a build
    feed(1001, ProcessStarted(B, 2, 1001 * MS))
    for pid, at_ms in ((2, 1100), (3, 1200)):  # made during the build: the runs' own, twice
        assert any(isinstance(a, SignalGroup) for a in feed(at_ms, change(at_ms)))
        feed(at_ms + 5, ProcessExited(B, pid, -15, at_ns=(at_ms + 5) * MS))
        feed(at_ms + 5, GroupEmptied(B, pid))
        feed(at_ms + 6, ProcessStarted(B, pid + 1, (at_ms + 6) * MS))
    held = feed(1300, change(1300))  # a third: held, and the older content's build stopped
    assert [a for a in held if isinstance(a, (Start, Triggered))] == []
    assert any(isinstance(a, SignalGroup) and a.role is B for a in held)
    feed(1305, ProcessExited(B, 4, -15, at_ns=1305 * MS))
    waits = [a for a in feed(1305, GroupEmptied(B, 4)) if isinstance(a, SetTimer)]
    assert [(a.name, a.seconds) for a in waits] == [(Timer.LOOP_HOLD, 0.5)]
    let = feed(1805, TimerFired(Timer.LOOP_HOLD, waits[0].pid))
    assert any(isinstance(a, Start) and a.role is B for a in let)
    feed(1806, ProcessStarted(B, 5, 1806 * MS))
    feed(2300, ProcessExited(B, 5, 0, at_ns=2300 * MS))
    feed(2300, GroupEmptied(B, 5))
    feed(2310, ProcessExited(T, 10, -15, at_ns=2310 * MS))
    feed(2310, GroupEmptied(T, 10))
    done = [a.timeline for a in feed(2311, ProcessStarted(T, 11, 2311 * MS))
            if isinstance(a, Restarted)]
    (restart,) = done
    assert restart.edit == 1298 * MS and restart.trigger == "/p/a"
    assert stages(restart)["detect"] == 2 and stages(restart)["wait"] == 505
    assert stages(restart)["build"] == 495
