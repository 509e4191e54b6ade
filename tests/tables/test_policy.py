"""Tables for the pure decision function: (config, events) -> actions, with no OS at all."""

from __future__ import annotations

import dataclasses
import signal
from collections.abc import Sequence
from pathlib import Path

import pytest

from reentr import policy
from reentr.config import Config, OnBusy, OnExit, WatchList
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
    Restarted,
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
)

B, T = Role.BUILD, Role.TARGET
BASE = Config(command=("app",), watch=WatchList((Path("/p/a"),)))


def cfg(**changes: object) -> Config:
    return dataclasses.replace(BASE, **changes)  # type: ignore[arg-type]


def changed(path: str = "/p/a") -> FilesChanged:
    return FilesChanged((path,), 0)


def run(config: Config, events: Sequence[Event]) -> tuple[policy.State, list[list[Action]]]:
    state = policy.initial()
    steps = []
    for event in events:
        state, actions = policy.step(config, state, event)
        steps.append([a for a in actions if not _noise(a)])
    return state, steps


def _noise(action: Action) -> bool:
    """What these tables leave to their own tests: verbose lines and timeline markers."""
    return isinstance(action, Triggered | Restarted) or (
        isinstance(action, Say) and action.what is Note.CHANGED)


def started(role: Role, pid: int) -> list[Event]:
    return [ProcessStarted(role, pid, 0)]


def gone(role: Role, pid: int, status: int = 0) -> list[Event]:
    return [ProcessExited(role, pid, status), GroupEmptied(role, pid)]


running: list[Event] = [Began(), *started(T, 10)]
STOP = [SignalGroup(T, 10, signal.SIGTERM, stop=True), SetTimer(Timer.GRACE, 10, 5.0)]


@pytest.mark.parametrize(
    ("config", "events", "last"),
    [
        (cfg(), [Began()], [Start(T, None)]),
        (cfg(postpone=True), [Began()], []),
        (cfg(postpone=True), [Began(), changed()], [Start(T, "/p/a", ("/p/a",))]),
        (cfg(clear=2), [Began()], [ClearScreen(2), Start(T, None)]),
        # -r: stop the group, start again only once the group is gone.
        (cfg(restart=True), [Began(), *started(T, 10), changed()], STOP),
        (cfg(restart=True), [Began(), *started(T, 10), changed(), ProcessExited(T, 10, -15)],
         []),
        (cfg(restart=True), [Began(), *started(T, 10), changed(), *gone(T, 10, -15)],
         [Start(T, "/p/a", ("/p/a",))]),
        # Changes while stopping are coalesced into the one start; the newest trigger wins,
        # and the start is told about every file changed since the last one.
        (cfg(restart=True), [Began(), *started(T, 10), changed(), changed("/p/b"),
                             *gone(T, 10, -15)], [Start(T, "/p/b", ("/p/a", "/p/b"))]),
        # Grace expired: SIGKILL the group, once.
        (cfg(restart=True), [Began(), *started(T, 10), changed(), TimerFired(Timer.GRACE, 10)],
         [Say(Note.KILLED, role=T, seconds=5.0), SignalGroup(T, 10, signal.SIGKILL)]),
        (cfg(restart=True), [Began(), *started(T, 10), changed(), *gone(T, 10),
                             TimerFired(Timer.GRACE, 10)], []),
        # Without -r a change during a run is dropped; with -a it leads to one more run.
        (cfg(), [Began(), *started(T, 10), changed(), *gone(T, 10)], []),
        (cfg(all_events=True), [Began(), *started(T, 10), changed(), *gone(T, 10)],
         [Start(T, "/p/a", ("/p/a",))]),
        # --signal: signal the running target, start it if it is not running.
        (cfg(signal=signal.SIGHUP), [Began(), *started(T, 10), changed()],
         [SignalGroup(T, 10, signal.SIGHUP), Say(Note.SIGNALLED, role=T, signum=signal.SIGHUP)]),
        (cfg(signal=signal.SIGHUP), [Began(), *started(T, 10), *gone(T, 10, 1), changed()],
         [Start(T, "/p/a", ("/p/a",))]),
        # Keys.
        (cfg(restart=True), [Began(), *started(T, 10), KeyPressed(" ")], STOP),
        (cfg(), [Began(), *started(T, 10), KeyPressed(" "), *gone(T, 10)], []),
        (cfg(), [Began(), *started(T, 10), *gone(T, 10), KeyPressed(" ")], [Start(T, None)]),
        (cfg(), [Began(), KeyPressed("x")], []),
        # --delay-run: the wait comes before each start, after the old target is gone.
        (cfg(delay_run=0.5), [Began()], [SetTimer(Timer.DELAY, 0, 0.5)]),
        (cfg(delay_run=0.5), [Began(), TimerFired(Timer.DELAY, 0)], [Start(T, None)]),
        (cfg(restart=True, delay_run=0.5),
         [Began(), TimerFired(Timer.DELAY, 0), *started(T, 10), changed()], STOP),
        (cfg(restart=True, delay_run=0.5),
         [Began(), TimerFired(Timer.DELAY, 0), *started(T, 10), changed(), *gone(T, 10)],
         [SetTimer(Timer.DELAY, 0, 0.5)]),
        (cfg(restart=True, delay_run=0.5),
         [Began(), TimerFired(Timer.DELAY, 0), *started(T, 10), changed(), *gone(T, 10),
          changed(), TimerFired(Timer.DELAY, 0)], [Start(T, "/p/a", ("/p/a",))]),
    ],
    ids=["start", "postpone", "postpone-then-change", "clear", "r-stops", "r-waits-for-group",
         "r-starts-when-gone", "r-coalesces", "grace-kills", "grace-after-exit",
         "non-r-drops", "a-keeps", "signal", "signal-starts", "space-restarts",
         "space-during-run", "space-reruns", "other-key", "delay-first", "delay-then-start",
         "delay-stop-first", "delay-after-stop", "delay-coalesces"],
)
def test_lifecycle(config: Config, events: list[Event], last: list[Action]) -> None:
    _, steps = run(config, events)
    assert steps[-1] == last
    _every_step_keeps_the_rules(events, steps)


def _every_step_keeps_the_rules(events: Sequence[Event], steps: list[list[Action]]) -> None:
    """Not only the last step: at every step a role starts only once its previous group is
    gone (and its previous start has spawned), and only a live group is signalled."""
    live: dict[int, Role] = {}
    pending: list[Role] = []
    for event, actions in zip(events, steps, strict=True):
        match event:
            case ProcessStarted(role=role, pid=pid):
                pending.remove(role)
                live[pid] = role
            case GroupEmptied(pid=pid):
                live.pop(pid, None)
        for action in actions:
            match action:
                case Start(role=role):
                    assert role not in live.values() and role not in pending, (event, action)
                    pending.append(role)
                case SignalGroup(pid=pid):
                    assert pid in live, (event, action)


@pytest.mark.parametrize(
    ("config", "events", "status"),
    [
        (cfg(), [*running, SignalReceived(signal.SIGINT), *gone(T, 10, -15)], 130),
        (cfg(), [*running, SignalReceived(signal.SIGHUP), *gone(T, 10, -15)], 0),
        (cfg(), [*running, SignalReceived(signal.SIGTERM), *gone(T, 10, -15)], 143),
        (cfg(), [*running, KeyPressed("q"), *gone(T, 10, -15)], 0),
        (cfg(postpone=True), [Began(), SignalReceived(signal.SIGINT)], 130),
        (cfg(exit_on_exit=True), [Began(), *started(T, 10), *gone(T, 10, 3)], 3),
        (cfg(exit_on_exit=True), [Began(), *started(T, 10), *gone(T, 10, -9)], 137),
        (cfg(on_exit=OnExit.QUIT), [Began(), *started(T, 10), *gone(T, 10, 4)], 4),
        (cfg(restart=True), [Began(), *started(T, 10), DirectoryAltered(), *gone(T, 10, -15)],
         2),
        (cfg(), [Began(), ProcessStartFailed(T, "nope")], None),
        (cfg(exit_on_exit=True), [Began(), ProcessStartFailed(T, "nope")], 127),
    ],
    ids=["INT", "HUP", "TERM", "q", "INT-idle", "z", "z-signal", "on-exit-quit", "d-with-r",
         "start-failed", "z-start-failed"],
)
def test_exit_status(config: Config, events: list[Event], status: int | None) -> None:
    _, steps = run(config, events)
    exits = [a.status for a in steps[-1] if isinstance(a, Exit)]
    assert exits == ([] if status is None else [status])


def test_a_program_that_could_not_start_is_said_once_not_also_to_have_exited() -> None:
    # The line that it could not start says why; an exit status of 127 after it said the
    # opposite (that it had run) of a program that never did.
    _, steps = run(cfg(build="make"), [Began(), *started(B, 5), *gone(B, 5, 0),
                                       ProcessStartFailed(T, "./app: No such file")])
    said = [a.what for a in steps[-1] if isinstance(a, Say)]
    assert said == [Note.START_FAILED]


def test_quitting_stops_everything_first_and_a_second_signal_kills() -> None:
    config = cfg(restart=True, build="make")
    events: list[Event] = [Began(), *started(B, 5), SignalReceived(signal.SIGINT)]
    state, steps = run(config, events)
    assert steps[-1] == [SignalGroup(B, 5, signal.SIGTERM, stop=True),
                         SetTimer(Timer.GRACE, 5, 5.0)]
    state, actions = policy.step(config, state, SignalReceived(signal.SIGINT))
    assert actions == [SignalGroup(B, 5, signal.SIGKILL)]
    state, actions = policy.step(config, state, ProcessExited(B, 5, -9))
    assert actions == []
    _, actions = policy.step(config, state, GroupEmptied(B, 5))
    assert actions == [Exit(ExitStatus.INTERRUPTED)]


def test_a_process_that_starts_after_the_second_signal_is_killed_at_once() -> None:
    # Its start was under way: without this it got the stop signal and the whole grace.
    config = cfg(restart=True)
    state, _ = run(config, [Began()])
    for _ in range(2):
        state, _ = policy.step(config, state, SignalReceived(signal.SIGINT))
    _, actions = policy.step(config, state, ProcessStarted(T, 7, 0))
    assert [a for a in actions if isinstance(a, SignalGroup)] == [
        SignalGroup(T, 7, signal.SIGKILL)]


def test_d_without_r_runs_once_more_then_exits_2() -> None:
    events: list[Event] = [Began(), *started(T, 10), *gone(T, 10), DirectoryAltered()]
    state, steps = run(cfg(), events)
    assert steps[-1] == [Say(Note.DIRECTORY_ALTERED), Start(T, None)]
    for event in [*started(T, 11), *gone(T, 11)]:
        state, actions = policy.step(cfg(), state, event)
    assert Exit(2) in actions


# Build step ------------------------------------------------------------------------------------


def build_then_target(config: Config) -> list[Event]:
    return [Began(), *started(B, 5), *gone(B, 5), *started(T, 10)]


def test_build_runs_first_and_the_target_starts_on_success() -> None:
    config = cfg(build="make", restart=True)
    _, steps = run(config, [Began(), *started(B, 5), ProcessExited(B, 5, 0), GroupEmptied(B, 5)])
    assert steps[0] == [Start(B, None)]
    assert steps[2] == [Say(Note.BUILD_SUCCEEDED, role=B, status=0)]
    assert steps[3] == [Start(T, None)]


def test_failed_build_leaves_the_target_alone() -> None:
    config = cfg(build="make", restart=True)
    events = [*build_then_target(config), changed(), *started(B, 6),
              ProcessExited(B, 6, 2, 0.1), GroupEmptied(B, 6)]
    state, steps = run(config, events)
    assert steps[-2] == [Say(Note.BUILD_FAILED, role=B, status=2)]
    assert steps[-1] == []
    assert state.target.pid == 10 and state.target.leader_alive
    # The next change builds again, and a good build replaces the target.
    for event in [changed(), *started(B, 7), *gone(B, 7)]:
        state, actions = policy.step(config, state, event)
    assert actions == STOP
    _, actions = policy.step(config, state, ProcessExited(T, 10, -15))
    _, actions = policy.step(config, state, GroupEmptied(T, 10))
    assert actions == [Start(T, "/p/a", ("/p/a",))]


@pytest.mark.parametrize(
    ("on_busy", "during_build", "after_build"),
    [
        # restart: stop the build; its result is discarded; build again once it is gone.
        (OnBusy.RESTART, [SignalGroup(B, 6, signal.SIGTERM, stop=True),
                          SetTimer(Timer.GRACE, 6, 5.0)], [Start(B, "/p/b", ("/p/a", "/p/b"))]),
        # queue: let it finish and start its result (the target restarts), then build again.
        (OnBusy.QUEUE, [], [SignalGroup(T, 10, signal.SIGTERM, stop=True),
                            SetTimer(Timer.GRACE, 10, 5.0)]),
        # ignore: let it finish, discard its outdated result, build again.
        (OnBusy.IGNORE, [], [Start(B, "/p/b", ("/p/a", "/p/b"))]),
    ],
    ids=["restart", "queue", "ignore"],
)
def test_on_busy(on_busy: OnBusy, during_build: list[Action], after_build: list[Action]) -> None:
    config = cfg(build="make", restart=True, on_busy=on_busy)
    events = [*build_then_target(config), changed(), *started(B, 6)]
    state, _ = run(config, events)
    state, actions = policy.step(config, state, changed("/p/b"))
    assert [a for a in actions if not _noise(a)] == during_build
    status = -15 if on_busy is OnBusy.RESTART else 0
    state, _ = policy.step(config, state, ProcessExited(B, 6, status))
    state, actions = policy.step(config, state, GroupEmptied(B, 6))
    assert actions == after_build
    if on_busy is OnBusy.QUEUE:
        queued: list[Event] = [ProcessExited(T, 10, -15), GroupEmptied(T, 10)]
        for event in queued:
            state, actions = policy.step(config, state, event)
        # The finished build's result starts, and the queued build starts with it.
        assert actions == [Start(T, "/p/b", ("/p/a", "/p/b")), Start(B, "/p/b")]


def test_on_exit_restart_backs_off_and_a_stable_run_resets() -> None:
    config = cfg(restart=True, on_exit=OnExit.RESTART)
    state, _ = run(config, [Began(), *started(T, 10)])
    delays: list[float] = []
    pid = 10
    for ran in (0.1, 0.1, 0.1, 30.0):
        state, actions = policy.step(config, state, ProcessExited(T, pid, 1, ran))
        delays.extend(a.seconds for a in actions if isinstance(a, SetTimer))
        state, _ = policy.step(config, state, GroupEmptied(T, pid))
        state, actions = policy.step(config, state, TimerFired(Timer.BACKOFF, pid))
        assert actions == [Start(T, None)]
        pid += 1
        state, _ = policy.step(config, state, ProcessStarted(T, pid, 0))
    assert delays == [0.1, 0.2, 0.4, 0.1]


@pytest.mark.parametrize(
    ("config", "events", "triggered"),
    [
        (cfg(restart=True), [*running, changed()], True),
        (cfg(), [*running, changed()], False),  # dropped: a run is in progress
        (cfg(all_events=True), [*running, changed()], True),
        (cfg(restart=True), [*running, KeyPressed(" ")], True),
        (cfg(restart=True), [*running, SignalReceived(signal.SIGINT), changed()], False),
    ],
    ids=["r", "dropped", "a", "space", "quitting"],
)
def test_a_timeline_begins_only_for_an_accepted_change(
    config: Config, events: list[Event], triggered: bool
) -> None:
    state = policy.initial()
    for event in events:
        state, actions = policy.step(config, state, event)
    assert any(isinstance(action, Triggered) for action in actions) is triggered


HANDOFF = cfg(restart=True, handoff=True)
SERVING: list[Event] = [Began(), ProcessStarted(T, 10, 0)]
"""The first target, pid 10, serves."""


def test_handoff_starts_the_new_target_beside_the_old_and_stops_the_old_once_it_is_ready() -> None:
    state, steps = run(HANDOFF, [
        *SERVING, changed(), ProcessStarted(T, 11, 0), TargetReady(11, 0),
        ProcessExited(T, 10, 0), GroupEmptied(T, 10),
    ])
    assert steps[2] == [Start(T, "/p/a", ("/p/a",))], "no stop before the new one is ready"
    assert steps[4] == [Say(Note.HANDED_OFF, T, pid=10),
                        SignalGroup(T, 10, signal.SIGTERM, stop=True),
                        SetTimer(Timer.GRACE, 10, 5.0)]
    assert steps[5] == steps[6] == []
    assert state.target.pid == 11
    assert state.retiring == () and not state.incoming.busy


def test_handoff_rolls_back_when_the_new_target_exits_before_it_is_ready() -> None:
    state, steps = run(HANDOFF, [*SERVING, changed(), ProcessStarted(T, 11, 0),
                                 ProcessExited(T, 11, 3)])
    assert steps[4] == [Say(Note.EXITED, T, status=3), Say(Note.ROLLED_BACK, T, pid=10),
                        SignalGroup(T, 11, signal.SIGTERM, stop=True),
                        SetTimer(Timer.GRACE, 11, 5.0)]
    assert state.target.pid == 10 and state.target.leader_alive


def test_handoff_rolls_back_when_the_new_target_is_not_ready_in_time() -> None:
    state, steps = run(HANDOFF, [*SERVING, changed(), ProcessStarted(T, 11, 0),
                                 ReadyTimedOut(11), ProcessExited(T, 11, -15)])
    assert steps[4] == [Say(Note.ROLLED_BACK, T, pid=10),
                        SignalGroup(T, 11, signal.SIGTERM, stop=True),
                        SetTimer(Timer.GRACE, 11, 5.0)]
    assert steps[5] == [], "its exit was asked for: no news"
    assert state.target.pid == 10


def test_a_change_during_a_handoff_replaces_the_new_target_not_the_old() -> None:
    state, steps = run(HANDOFF, [
        *SERVING, changed(), ProcessStarted(T, 11, 0), changed("/p/b"),
        ProcessExited(T, 11, -15), GroupEmptied(T, 11), ProcessStarted(T, 12, 0),
        TargetReady(11, 0), TargetReady(12, 0),
    ])
    assert steps[4] == [SignalGroup(T, 11, signal.SIGTERM, stop=True),
                        SetTimer(Timer.GRACE, 11, 5.0)]
    assert steps[6] == [Start(T, "/p/b", ("/p/b",))]
    assert steps[8] == [], "a stale target's readiness changes nothing"
    assert steps[9][0] == Say(Note.HANDED_OFF, T, pid=10)
    assert state.target.pid == 12


def test_quitting_during_a_handoff_stops_every_target() -> None:
    _, steps = run(HANDOFF, [*SERVING, changed(), ProcessStarted(T, 11, 0),
                                 SignalReceived(signal.SIGINT)])
    stopped = {a.pid for a in steps[4] if isinstance(a, SignalGroup)}
    assert stopped == {10, 11}
    _, steps = run(HANDOFF, [*SERVING, changed(), ProcessStarted(T, 11, 0),
                             SignalReceived(signal.SIGINT), GroupEmptied(T, 10),
                             GroupEmptied(T, 11)])
    assert steps[-2] == [] and steps[-1] == [Exit(ExitStatus.INTERRUPTED)]
