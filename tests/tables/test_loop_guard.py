"""The feedback-loop guard as tables: which writes are the runs' own, when a path the runs
keep rewriting is muted, what resets it; and the `exec` a build's command gets."""

from __future__ import annotations

import pytest

from reentr import loops
from reentr.loops import ROUNDS, Guard, Span
from reentr.runner import _exec_form

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

def test_a_path_is_muted_after_the_runs_rewrote_it_rounds_times_in_a_row() -> None:
    guard = Guard()
    for round_ in range(1, ROUNDS + 1):
        guard = _after(guard, ("start-life", round_, round_ * 1000),
                       ("exit", round_, round_ * 1000 + 10))
        guard, kept, muted = loops.sift(guard, ("/p/out", "/p/user"),
                                        (round_ * 1000 * MS + 5 * MS, (round_ * 1000 - 500) * MS))
        assert "/p/user" in kept  # written between the runs: the user's
        if round_ < ROUNDS:
            assert kept == ("/p/out", "/p/user") and muted == ()
        else:
            assert kept == ("/p/user",) and muted == ("/p/out",)
    # Muted for good: even a write outside every span no longer counts.
    _, kept, muted = loops.sift(guard, ("/p/out",), (10 * MS,))
    assert kept == () and muted == ()

def test_a_change_between_the_runs_resets_the_count() -> None:
    guard = Guard()
    for round_ in range(1, 2 * ROUNDS):
        guard = _after(guard, ("start-life", round_, round_ * 1000),
                       ("exit", round_, round_ * 1000 + 10))
        written = round_ * 1000 + (5 if round_ % 2 else 500)  # in a run every other round
        guard, kept, muted = loops.sift(guard, ("/p/f",), (written * MS,))
        assert kept == ("/p/f",) and muted == ()

@pytest.mark.parametrize(("command", "expected"), [
    ("make", "exec make"),
    ("go build -o app .", "exec go build -o app ."),
    ("exit 3", "exit 3"),
    ("cd src && make", "cd src && make"),
    ("make > log", "make > log"),
    ("CC=clang make", "CC=clang make"),
    ("no-such-program-here --flag", "no-such-program-here --flag"),
    ("make 'a b'", "make 'a b'"),
    ("echo $HOME", "echo $HOME"),
    ("true", "exec true"),
    ("wait", "wait"),
    ("", ""),
])
def test_exec_is_prepended_only_to_a_single_external_program(command: str, expected: str) -> None:
    assert _exec_form(command, None) == expected
