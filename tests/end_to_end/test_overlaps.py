"""End to end: changes that arrive while a build or a start is still under way, with a real
slow build and a real slow-starting program. Every start that serves a new change after the
first is one restart, timed from the newest change its program holds."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from helpers import Reentr, edit, event_records, wait_for

Start = Callable[..., Reentr]
SLOW = [sys.executable, "-c",
        "import threading; wait = threading.Event().wait; wait(0.5); "
        "print('listening', flush=True); wait(3600)"]
"""A program that is ready 0.5 s after it starts."""

pytestmark = pytest.mark.timeout(90)


def _records(proc: Reentr) -> list[dict[str, Any]]:
    return event_records(proc.events)


def _count(proc: Reentr, event: str, **match: object) -> int:
    return sum(r["event"] == event and all(r.get(k) == v for k, v in match.items())
               for r in _records(proc))


def _wait_count(proc: Reentr, n: int, event: str, **match: object) -> None:
    wait_for(lambda: _count(proc, event, **match) >= n, timeout=30,
             what=f"{n} {event} events {match}")


def test_a_change_while_the_new_program_starts_gives_two_restarts_each_with_its_build(
    reentr: Start, project: Path
) -> None:
    # The reproduction: the second edit's build (1.5 s) ends after the first edit's
    # program (0.5 s to be ready) serves.
    proc = reentr(["watch", "-n", "--build", "sleep 1.5", "-r", "--ready-line", "listening",
                   "--", *SLOW], files="", exits=True)
    _wait_count(proc, 1, "ready")
    edit(project / "a.txt", "1\n")
    _wait_count(proc, 2, "spawned", role="target")  # the first edit's program is starting
    edit(project / "a.txt", "2\n")
    _wait_count(proc, 2, "restart")
    records = _records(proc)
    second_change = [r["time"] for r in records if r["event"] == "change"][1]
    ready_times = [r["time"] for r in records if r["event"] == "ready"]
    assert second_change < ready_times[1], "the second edit came while its program started"
    restarts = [r for r in records if r["event"] == "restart"]
    assert [r["number"] for r in restarts] == [1, 2]
    for restart in restarts:
        assert restart["build_ms"] >= 1450, restart  # each has its own build, none is 0
        assert restart["ready_ms"] >= 450, restart
        assert abs(restart["total_ms"] - sum(restart[f"{s}_ms"] for s in (
            "detect", "wait", "build", "stop", "spawn", "ready", "other"))) < 0.01
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT
    assert _count(proc, "ready") == 3 and _count(proc, "restart") == 2
    assert any(line.startswith("reentr: 2 restarts, in ms") for line in proc.err.lines)


def test_a_change_during_the_first_build_leaves_the_first_start_a_first_start(
    reentr: Start, project: Path
) -> None:
    # A fresh cargo project writes Cargo.lock during its first build.
    proc = reentr(["watch", "-n", "--build", "sleep 1", "-r", "--ready-line", "listening", "--",
                   *SLOW], files="", exits=True)
    _wait_count(proc, 1, "start", role="build")
    edit(project / "Cargo.lock", "# written by the first build\n")
    _wait_count(proc, 1, "ready")
    assert _count(proc, "start", role="build") == 2  # the first build was run again
    assert _count(proc, "restart") == 0
    assert not any(" restart #" in line for line in proc.err.lines)
    edit(project / "a.txt", "1\n")  # the first real restart is #1
    proc.err.expect(r"restart #1 ready in \d+ ms")
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT
    assert any(line.startswith("reentr: 1 restart, in ms") for line in proc.err.lines)


def test_a_restart_is_timed_from_the_newest_change_its_program_holds(
    reentr: Start, project: Path
) -> None:
    # Edits keep coming (to different files: one file changed during every build would be
    # taken for the build's own output), each stopping the build of the one before: the
    # program that finally serves holds the last edit, and its restart counts from there.
    build = "sleep 0.3; echo halfway; sleep 0.7"
    proc = reentr(["watch", "-n", "--build", build, "-r", "--ready-line", "listening", "--",
                   *SLOW], files="", exits=True)
    _wait_count(proc, 1, "ready")
    for number in range(1, 5):
        edit(project / f"file{number}.txt", f"{number}\n")
        # Each edit 0.3 s into the build of the one before.
        wait_for(lambda n=number: proc.err.count("^halfway$") >= n + 1, timeout=30,  # type: ignore[misc]
                 what=f"build {number + 1} halfway")
    _wait_count(proc, 1, "restart")
    records = _records(proc)
    changes = [r["time"] for r in records if r["event"] == "change"]
    (restart,) = [r for r in records if r["event"] == "restart"]
    since_last = (restart["time"] - changes[-1]) * 1000
    since_first = (restart["time"] - changes[0]) * 1000
    assert restart["total_ms"] <= since_last + 50, (restart, since_last)
    assert restart["total_ms"] < since_first - 200, "not timed from the first edit"
    assert (restart["builds"], restart["cancelled_builds"]) == (4, 3)
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT
