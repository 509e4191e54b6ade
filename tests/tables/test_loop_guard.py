"""The feedback-loop guard as tables: which writes are the runs' own, when a path the runs
keep rewriting is muted, what resets it; and how a build's command is started (directly, or
through the shell)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reentr import loops
from reentr.loops import ROUNDS, Guard, Span
from reentr.runner import _build_argv

MS = 1_000_000

def _after(guard: Guard, *steps: tuple[str, int, int]) -> Guard:
    """Feed the guard `(what, pid, at_ms)` steps: start-life, start-startup, start-self,
    ready, exit (by itself) and stop (stopped by reentr)."""
    kinds = {"start-life": Span.LIFE, "start-startup": Span.STARTUP,
             "start-self": Span.SELF_EXIT}
    for what, pid, at in steps:
        if what in kinds:
            guard = loops.started(guard, pid, kinds[what], at * MS)
        elif what == "ready":
            guard = loops.ready(guard, pid, at * MS)
        else:
            guard = loops.ended(guard, pid, at * MS, by_itself=what == "exit")
    return guard

@pytest.mark.parametrize(("steps", "written_ms", "own"), [
    # A build, or a utility that runs to completion: its whole life.
    ([("start-life", 1, 100)], 150, True),
    ([("start-life", 1, 100), ("exit", 1, 200)], 199, True),
    ([("start-life", 1, 100), ("exit", 1, 200)], 201, False),
    ([("start-life", 1, 100), ("stop", 1, 200)], 150, True),
    ([("start-life", 1, 100)], 50, False),
    # The coarse clock of file times: a write just after the start may be stamped before it.
    ([("start-life", 1, 100)], 95, True),
    # A restarted target with a probe: until it is ready.
    ([("start-startup", 1, 100)], 150, True),
    ([("start-startup", 1, 100), ("ready", 1, 120)], 119, True),
    ([("start-startup", 1, 100), ("ready", 1, 120)], 121, False),
    # Without a probe: only if it ended by itself; a running one has no start-up span.
    ([("start-self", 1, 100)], 150, False),
    ([("start-self", 1, 100), ("exit", 1, 200)], 150, True),
    ([("start-self", 1, 100), ("stop", 1, 200)], 150, False),
])
def test_a_write_is_the_runs_own_only_within_their_spans(
    steps: list[tuple[str, int, int]], written_ms: int, own: bool
) -> None:
    assert loops.own(_after(Guard(), *steps), written_ms * MS) is own

def _rounds(guard: Guard, first: int, count: int, path: str = "/p/out") -> Guard:
    """`count` runs (pids from `first`, a second apart), each rewriting `path` 5 ms in."""
    for pid in range(first, first + count):
        guard = _after(guard, ("start-life", pid, pid * 1000), ("exit", pid, pid * 1000 + 10))
        guard, _, _ = loops.sift(guard, (path,), ((pid * 1000 + 5) * MS,))
    return guard


def test_a_path_the_runs_rewrote_rounds_times_in_a_row_is_held_not_dropped() -> None:
    guard = Guard()
    for round_ in range(1, ROUNDS + 1):
        guard = _after(guard, ("start-life", round_, round_ * 1000))
        guard, kept, looping = loops.sift(guard, ("/p/out", "/p/user"),
                                          (round_ * 1000 * MS + 5 * MS, (round_ * 1000 - 500) * MS))
        assert "/p/user" in kept and looping == ()  # written between the runs: the user's
        assert ("/p/out" in kept) is (round_ < ROUNDS)
        # While the run goes on, the held change waits.
        assert loops.due(guard, guard.hold)[1] == ()
        guard = _after(guard, ("exit", round_, round_ * 1000 + 10))
    # Once the runs are over (and a quiet wait, the policy's), the path gets a run of its
    # own: the user's last save, if it was. A wait begun before a later held change is stale.
    assert loops.due(guard, guard.hold - 1)[1] == ()
    guard, due = loops.due(guard, guard.hold)
    assert [(path, written) for path, written, _ in due] == [("/p/out", (ROUNDS * 1000 + 5) * MS)]
    assert loops.due(guard, guard.hold)[1] == ()


def test_a_held_path_that_its_own_run_does_not_rewrite_counts_again() -> None:
    """Quick saves during builds (an autosave, a slow build): the run made for the last one
    writes nothing, so the path is the user's."""
    guard = _rounds(Guard(), 1, ROUNDS)
    guard, due = loops.due(guard, guard.hold)
    assert [path for path, _, _ in due] == ["/p/out"]
    asked = guard.check
    assert loops.settled(guard, asked) == guard  # its run has not come yet
    guard = _after(guard, ("start-life", 10, 10_000))
    assert loops.settled(guard, asked) == guard  # nor is it over
    guard = _after(guard, ("exit", 10, 10_100))
    assert "/p/out" in loops.settled(guard, asked - 1).muted  # an older asking's wait
    guard = loops.settled(guard, asked)
    assert "/p/out" not in guard.muted
    guard, kept, _ = loops.sift(guard, ("/p/out",), (11_005 * MS,))
    assert kept == ("/p/out",)  # a save during a build counts again, from a count of one


def test_a_path_that_its_own_runs_rewrite_checks_times_is_a_loop_said_once() -> None:
    guard = _rounds(Guard(), 1, ROUNDS)
    said: list[str] = []
    for check in range(1, loops.CHECKS + 1):
        guard, due = loops.due(guard, guard.hold)
        assert [path for path, _, _ in due] == ["/p/out"]
        pid = 10 + check
        guard = _after(guard, ("start-life", pid, pid * 1000))
        guard, kept, looping = loops.sift(guard, ("/p/out",), ((pid * 1000 + 5) * MS,))
        guard = _after(guard, ("exit", pid, pid * 1000 + 10))
        assert kept == ()
        said += looping
    assert said == ["/p/out"]
    # A loop: its changes during runs are dropped, and no run is made for them any more.
    guard = _rounds(guard, 20, 3)
    assert loops.due(guard, guard.hold)[1] == ()
    # A change made while nothing runs is the user's: it counts, and ends the muting.
    guard, kept, _ = loops.sift(guard, ("/p/out",), (30_000 * MS,))
    assert kept == ("/p/out",) and "/p/out" not in guard.muted
    # Should the loop come back (the user's edit of it is rewritten by the runs again), it
    # is not said again.
    guard = _rounds(guard, 31, ROUNDS)
    for check in range(loops.CHECKS):
        guard, _ = loops.due(guard, guard.hold)
        pid = 40 + check
        guard = _after(guard, ("start-life", pid, pid * 1000))
        guard, _, looping = loops.sift(guard, ("/p/out",), ((pid * 1000 + 5) * MS,))
        guard = _after(guard, ("exit", pid, pid * 1000 + 10))
        assert looping == ()
    assert "/p/out" in guard.looping


def test_a_change_between_the_runs_resets_the_count() -> None:
    guard = Guard()
    for round_ in range(1, 2 * ROUNDS):
        guard = _after(guard, ("start-life", round_, round_ * 1000),
                       ("exit", round_, round_ * 1000 + 10))
        written = round_ * 1000 + (5 if round_ % 2 else 500)  # in a run every other round
        guard, kept, muted = loops.sift(guard, ("/p/f",), (written * MS,))
        assert kept == ("/p/f",) and muted == ()

SH = ["/bin/sh", "-c"]


@pytest.mark.parametrize(("command", "expected"), [
    ("make", ["make"]),
    ("go build -o app .", ["go", "build", "-o", "app", "."]),
    ("true", ["true"]),
    ("make # all of it", [*SH, "exec make # all of it"]),
    ("make a\\ b", [*SH, "exec make a\\ b"]),
    ("exit 3", [*SH, "exit 3"]),
    ("cd src && make", [*SH, "cd src && make"]),
    ("make > log", [*SH, "make > log"]),
    ("make *.o", [*SH, "make *.o"]),
    ("CC=clang make", [*SH, "CC=clang make"]),
    ("no-such-program-here --flag", [*SH, "no-such-program-here --flag"]),
    ("make 'a b'", [*SH, "make 'a b'"]),
    ("echo $HOME", [*SH, "echo $HOME"]),
    ("wait", [*SH, "wait"]),
    ("", [*SH, ""]),
])
def test_a_single_external_program_is_started_without_a_shell(
    command: str, expected: list[str]
) -> None:
    assert _build_argv(command, None) == expected


def test_a_script_without_its_interpreter_line_goes_to_the_shell(tmp_path: Path) -> None:
    # The kernel refuses to run it (ENOEXEC); a shell runs it as a shell script.
    for name, text in (("plain", "echo built\n"), ("with-line", "#!/bin/sh\necho built\n")):
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(0o755)
    assert _build_argv("plain -v", str(tmp_path)) == [*SH, "exec plain -v"]
    assert _build_argv("with-line -v", str(tmp_path)) == ["with-line", "-v"]
