"""End to end: the restart line, the summary on exit, and the `--events` JSON stream."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import TARGET
from helpers import APPS, Reentr, edit, free_port, http_get, wait_for
from reentr.timing import STAGES

Start = Callable[..., Reentr]


def test_each_restart_is_reported_by_stage_and_summarised(reentr: Start, project: Path) -> None:
    events = project / "events.jsonl"
    proc = reentr(["-r", "--events", str(events), *TARGET])
    proc.out.expect(r"started")
    for number in (1, 2):
        edit(project / "a.txt", str(number))
        line = proc.err.expect(
            rf"restart #{number} spawned in (\d+) ms \(detect (\d+), build 0, stop (\d+), "
            r"spawn (\d+)(?:, other (\d+))?; no readiness probe\) a\.txt$"
        )
        total, *stages = (int(g or 0) for g in line.groups())
        assert sum(stages) == total  # the gaps between the stages are shown as `other`
        proc.out.expect(r"started")
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT
    title = proc.err.expect(r"2 restarts, in ms:\s+p50\s+p95\s+max$").group(0)
    for stage in ("detect", "build", "stop", "spawn", "ready", "other", "total"):
        row = proc.err.expect(rf"^reentr:   {stage}\s+\d+\s+\d+\s+\d+$").group(0)
        # Each column's title stands over its figures: they end where it ends.
        assert len(row) == len(title) + len("reentr: ")
    assert proc.err.count(r"^reentr:   wait ") == 0  # a stage of `reentr up` only

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
                               "spawn_ms", "ready_ms", "other_ms", "wait_ms", "builds",
                               "cancelled_builds", "asked"}
        assert sum(record[f"{s}_ms"] for s in STAGES) == pytest.approx(record["total_ms"],
                                                                     abs=0.01)
        assert 0 < record["detect_ms"] <= record["total_ms"]
    assert all(a["time"] <= b["time"] for a, b in itertools.pairwise(records))


def test_quiet_keeps_only_errors(reentr: Start, project: Path) -> None:
    proc = reentr(["-r", "-q", *TARGET, "--exit", "0"])
    proc.out.expect(r"started")
    edit(project / "a.txt", "x")
    proc.out.expect(r"started")
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT
    assert proc.err.text() == ""


@pytest.mark.parametrize("probe", [[], ["--ready-line", "started"]], ids=["plain", "line"])
def test_events_to_stdout_keep_stdout_pure_json(
    reentr: Start, project: Path, probe: list[str]
) -> None:
    # The command's and the build's stdout go to stderr: stdout is the event stream alone.
    build = f"{sys.executable} -c \"print('built')\""
    proc = reentr(["-r", "-q", "--events", "-", "--build", build, *probe, *TARGET])
    proc.err.expect(r"started")
    edit(project / "a.txt", "x")
    wait_for(lambda: '"restart"' in proc.out.text(), what="the restart event")
    proc.err.expect(r"started")
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT
    records = [json.loads(line) for line in proc.out.lines if line]
    assert [r["event"] for r in records].count("restart") == 1
    assert proc.err.count(r"^built$") == 2 and proc.err.count(r"started") == 2


def test_a_program_reading_the_watched_files_does_not_hold_a_change_back(
    reentr: Start, project: Path
) -> None:
    # A server that reads a file beside its sources on every request, a test runner, a
    # program reading its own sources as it starts: each read was an inotify event, which held
    # the quiet window open, and a change waited out the 1.6 s a burst may be gathered.
    proc = reentr(["-r", "-q", "--events", "-", *TARGET])
    proc.err.expect(r"started")
    reader = subprocess.Popen(
        [sys.executable, "-c", "import sys\nopen(sys.argv[1]).read()\nprint('reading', "
         "flush=True)\nwhile True:\n    open(sys.argv[1]).read()", str(project / "b.txt")],
        stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert reader.stdout is not None and reader.stdout.readline() == "reading\n"
        edit(project / "a.txt", "x")
        wait_for(lambda: '"restart"' in proc.out.text(), what="the restart event")
    finally:
        reader.kill()
        reader.wait()
        assert reader.stdout is not None
        reader.stdout.close()
    restart = next(r for r in map(json.loads, filter(None, proc.out.lines))
                   if r["event"] == "restart")
    assert restart["detect_ms"] < 800, restart  # the reads never counted


def test_a_change_that_keeps_an_old_modification_time_is_timed_from_its_event(
    reentr: Start, project: Path
) -> None:
    # A chmod, a `cp -p` or a `touch -d` changes a file without writing it now: its
    # modification time is old, and the restart was reported as detected seconds (up to 10)
    # after the change.
    proc = reentr(["-r", "-q", "--events", "-", *TARGET])
    proc.err.expect(r"started")
    an_hour_ago = time.time() - 3600
    os.utime(project / "a.txt", (an_hour_ago, an_hour_ago))  # also an event: wait for it
    wait_for(lambda: '"restart"' in proc.out.text(), what="the restart for the utime")
    proc.err.expect(r"started")
    os.chmod(project / "a.txt", 0o600)
    wait_for(lambda: proc.out.text().count('"restart"') == 2, what="the restart for the chmod")
    restarts = [r for r in map(json.loads, filter(None, proc.out.lines))
                if r["event"] == "restart"]
    assert all(r["detect_ms"] < 1000 for r in restarts), restarts


def test_events_to_a_path_that_cannot_be_written(reentr: Start, project: Path) -> None:
    proc = reentr(["--events", str(project / "no" / "such" / "dir.jsonl"), *TARGET])
    assert proc.wait() == 1
    assert proc.err.text().startswith("reentr: --events: cannot write")
    assert proc.out.text() == ""


def test_ready_port_completes_the_restart_when_the_new_server_accepts(
    reentr: Start, project: Path
) -> None:
    port = free_port()
    proc = reentr(["-r", "--ready-port", str(port), sys.executable, str(APPS / "server.py")],
                  env={"PORT": str(port)})
    proc.out.expect(r"serving one")
    first = wait_for(lambda: http_get(port), what="the first server")
    edit(project / "a.txt", "x")
    line = proc.err.expect(
        r"restart #1 ready in (\d+) ms \(detect \d+, build 0, stop \d+, spawn \d+, ready (\d+)"
        r"(?:, other \d+)?\) a\.txt$"
    )
    # Ready means ready: the new server answers the moment the line is printed.
    answer = http_get(port)
    assert answer is not None and answer != first
    assert int(line.group(2)) <= int(line.group(1))
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT
    proc.err.expect(r"^reentr:   ready\s+\d+\s+\d+\s+\d+$")


def test_ready_url_waits_for_an_http_answer(reentr: Start, project: Path) -> None:
    port = free_port()
    events = project / "events.jsonl"
    proc = reentr(["-r", "--ready-url", f"http://127.0.0.1:{port}/health", "--events",
                   str(events), sys.executable, str(APPS / "server.py")],
                  env={"PORT": str(port)})
    proc.out.expect(r"serving one")
    # The first start is probed too: let its probe succeed before the change stops it.
    wait_for(lambda: events.exists() and '"ready"' in events.read_text(),
             what="the first start's ready event")
    edit(project / "a.txt", "x")
    proc.err.expect(r"restart #1 ready in \d+ ms \(.*, ready \d+(?:, other \d+)?\) a\.txt$")
    assert http_get(port) is not None
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT
    records = [json.loads(line) for line in events.read_text().splitlines()]
    names = [r["event"] for r in records]
    assert names[:3] == ["start", "spawned", "ready"]  # the first start is probed too
    after = names[names.index("change"):]
    assert after.index("spawned") < after.index("ready") < after.index("restart")


@pytest.mark.parametrize(("status", "ready"), [(404, True), (503, False)])
def test_ready_url_takes_any_answer_below_500(
    reentr: Start, project: Path, status: int, ready: bool
) -> None:
    # An app with no route for the path still serves requests; a 5xx says it cannot yet.
    port = free_port()
    server = (
        "import http.server as h\n"
        "class H(h.BaseHTTPRequestHandler):\n"
        f"    def do_GET(self): self.send_error({status})\n"
        "    def log_message(self, *a): pass\n"
        f"s = h.HTTPServer(('127.0.0.1', {port}), H)\n"
        "print('bound', flush=True)\n"
        "s.serve_forever()\n"
    )
    proc = reentr(["-r", "--ready-url", f"http://127.0.0.1:{port}/none", "--ready-timeout",
                   "1s", sys.executable, "-c", server], exits=True)
    # The first start's probe has its outcome before the edit: a start stopped before it
    # served is no restart, so an edit that came first would make the next start the first.
    events = proc.events
    assert events is not None
    wait_for(lambda: any(json.loads(x)["event"] in ("ready", "ready_timeout")
                         for x in events.read_text().splitlines() if x)
             if events.exists() else None, what="the first start's probe to decide")
    edit(project / "a.txt", "x")
    said = r"restart #1 ready in" if ready else r"was not ready within 1s \(--ready-url "
    proc.err.expect(said)
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT


def test_ready_line_passes_the_output_through_unchanged(reentr: Start, project: Path) -> None:
    proc = reentr(["-r", "--ready-line", r"started pid=\d+", *TARGET, "--chatter"])
    proc.out.expect(r"started")
    edit(project / "a.txt", "x")
    proc.err.expect(r"restart #1 ready in \d+ ms \(.*, ready \d+(?:, other \d+)?\) a\.txt$")
    proc.out.expect(r"started")
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT
    # Each stream byte for byte, in order, the unterminated prompt included.
    assert proc.out.raw.count(b"out 1\nout 2\nprompt> started pid=") == 2
    assert proc.err.lines.count("err 1") == 2


def test_a_target_that_never_gets_ready_is_reported_and_left_running(
    reentr: Start, project: Path
) -> None:
    proc = reentr(["-r", "--ready-line", "never printed", "--ready-timeout", "300ms", *TARGET])
    proc.out.expect(r"started")
    edit(project / "a.txt", "x")
    line = proc.err.expect(
        r"warning: the target \(pid (\d+)\) was not ready within 0\.3s "
        r"\(--ready-line never printed\); it keeps running"
    )
    assert os.getpgid(int(line.group(1))) == int(line.group(1))  # still running
    edit(project / "a.txt", "y")
    proc.err.expect(r"was not ready within 0\.3s")
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT
    assert proc.err.count(r"restart #") == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--ready-port", "80", "--ready-line", "x"], "give one readiness probe"),
     (["--ready-port", "http"], "--ready-port: 'http' is not an address"),
     (["--ready-line", "("], "--ready-line: '(' is not a regular expression"),
     (["--ready-url", "localhost:80"], "--ready-url: 'localhost:80' is not an http://"),
     (["--ready-port", "80", "--ready-timeout", "soon"], "--ready-timeout: 'soon' is not a")],
)
def test_bad_probes_are_one_line_and_start_nothing(
    reentr: Start, args: list[str], message: str
) -> None:
    proc = reentr([*args, *TARGET])
    assert proc.wait() == 1
    assert proc.err.text().startswith(f"reentr: {message}")
    assert len(proc.err.lines) == 1
    assert proc.out.text() == ""
