"""End to end: the restart line, the summary on exit, and the `--events` JSON stream."""

from __future__ import annotations

import itertools
import json
import signal
from collections.abc import Callable
from pathlib import Path

from conftest import TARGET
from helpers import Reentr, edit

Start = Callable[..., Reentr]


def test_each_restart_is_reported_by_stage_and_summarised(reentr: Start, project: Path) -> None:
    events = project / "events.jsonl"
    proc = reentr(["-r", "--events", str(events), *TARGET])
    proc.out.expect(r"started")
    for number in (1, 2):
        edit(project / "a.txt", str(number))
        line = proc.err.expect(
            rf"restart #{number} spawned in (\d+) ms \(detect (\d+), build 0, stop (\d+), "
            r"spawn (\d+); no readiness probe\) a\.txt$"
        )
        total, *stages = map(int, line.groups())
        assert sum(stages) <= total + 2  # each rounded; the gaps between stages are not stages
        proc.out.expect(r"started")
    proc.signal(signal.SIGINT)
    assert proc.wait() == 0
    proc.err.expect(r"2 restarts, in ms:\s+p50\s+p95\s+max")
    for stage in ("detect", "build", "stop", "spawn", "ready", "total"):
        proc.err.expect(rf"^reentr:   {stage}\s+\d+\s+\d+\s+\d+$")

    records = [json.loads(line) for line in events.read_text().splitlines()]
    names = [r["event"] for r in records]
    first = names.index("change")
    assert names[first:first + 6] == ["change", "signal", "exited", "start", "spawned",
                                      "restart"]
    restarts = [r for r in records if r["event"] == "restart"]
    assert [r["number"] for r in restarts] == [1, 2]
    for record in restarts:
        assert record["trigger"] == str(project / "a.txt")
        assert set(record) >= {"time", "total_ms", "detect_ms", "build_ms", "stop_ms",
                               "spawn_ms", "ready_ms"}
        assert 0 < record["detect_ms"] <= record["total_ms"]
    assert all(a["time"] <= b["time"] for a, b in itertools.pairwise(records))


def test_quiet_keeps_only_errors(reentr: Start, project: Path) -> None:
    proc = reentr(["-r", "-q", *TARGET, "--exit", "0"])
    proc.out.expect(r"started")
    edit(project / "a.txt", "x")
    proc.out.expect(r"started")
    proc.signal(signal.SIGINT)
    assert proc.wait() == 0
    assert proc.err.text() == ""


def test_events_to_a_path_that_cannot_be_written(reentr: Start, project: Path) -> None:
    proc = reentr(["--events", str(project / "no" / "such" / "dir.jsonl"), *TARGET])
    assert proc.wait() == 1
    assert proc.err.text().startswith("reentr: --events: cannot write")
    assert proc.out.text() == ""
