"""End to end: the build step and process supervision, with real servers and real signals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import TARGET
from helpers import APPS, Reentr, edit, fifo_holders_gone, free_port, http_get, wait_for

Start = Callable[..., Reentr]
SERVER = [sys.executable, str(APPS / "server.py")]

BUILD_SH = """\
# A build for the tests: "compiles" src.txt into version.txt. It fails on a source that
# says "broken", and with a `hold` file present it waits until the file is removed.
source=$(cat src.txt)
echo "building $source"
while [ -e hold ]; do sleep 0.01; done
case "$source" in *broken*) echo "error: broken source" >&2; exit 2;; esac
printf '%s\\n' "$source" > version.txt
"""


@pytest.fixture
def buildable(project: Path) -> Path:
    (project / "src.txt").write_text("v1")
    (project / "build.sh").write_text(BUILD_SH)
    return project


def served(port: int, prefix: str) -> str:
    """Wait until the server on `port` answers a body that starts with `prefix`; return it."""

    def answer() -> str | None:
        body = http_get(port)
        return body if body is not None and body.startswith(prefix) else None

    return wait_for(answer, what=f"the server to answer {prefix!r}")


def test_readme_usage_line_restarts_a_small_http_app(reentr: Start, project: Path) -> None:
    """`ls *.py | reentr -r python app.py`, edit the app, it restarts; Ctrl-C leaves nothing."""
    shutil.copy(APPS / "server.py", project / "app.py")
    port = free_port()
    proc = reentr(["-r", sys.executable, "app.py"], files=["app.py"], env={"PORT": str(port)})
    proc.out.expect(r"serving one")
    first = served(port, "one ")
    app = project / "app.py"
    edit(app, app.read_text().replace('VERSION = "one"', 'VERSION = "two"'))
    proc.out.expect(r"serving two")
    second = served(port, "two ")
    assert first.split()[1] != second.split()[1]
    proc.signal(signal.SIGINT)
    # And stdout, inherited by the app, is at EOF: nothing is left.
    assert proc.wait() == -signal.SIGINT
    assert http_get(port, timeout=0.5) is None


def test_failed_build_keeps_the_old_server_and_a_good_build_replaces_it(
    reentr: Start, buildable: Path
) -> None:
    port = free_port()
    proc = reentr(["--build", "sh build.sh", "-r", *SERVER], files=["src.txt"],
                  env={"PORT": str(port)})
    proc.out.expect(r"serving v1")
    before = served(port, "v1 ")
    edit(buildable / "src.txt", "v2 broken")
    proc.err.expect(r"^error: broken source$")
    proc.err.expect(r"build failed \(exit status 2\); still serving the build from "
                    r"\d\d:\d\d:\d\d; the next change builds again")
    # The build's output is shown once, as it came, right before the line that says so.
    lines = proc.err.text().splitlines()
    assert sum("broken source" in line for line in lines) == 1
    failed = next(i for i, line in enumerate(lines) if "build failed" in line)
    assert lines[failed - 1] == "error: broken source"
    assert http_get(port) == before  # the very same process still answers
    edit(buildable / "src.txt", "v3")
    proc.out.expect(r"serving v3")
    after = served(port, "v3 ")
    assert after.split()[1] != before.split()[1]
    assert proc.out.count("serving") == 2


@pytest.mark.parametrize("on_busy", ["restart", "queue", "ignore"])
def test_a_change_during_a_slow_build_ends_in_a_build_of_the_final_content(
    reentr: Start, buildable: Path, on_busy: str
) -> None:
    port = free_port()
    proc = reentr(["-v", "--build", "sh build.sh", "--on-busy", on_busy, "-r", *SERVER],
                  files=["src.txt"], env={"PORT": str(port)})
    proc.out.expect(r"serving v1")
    (buildable / "hold").touch()
    edit(buildable / "src.txt", "v2")
    proc.err.expect(r"^building v2")
    edit(buildable / "src.txt", "v3")
    proc.err.expect(r"changed: .*src\.txt")  # the v3 change, seen while the v2 build runs
    if on_busy == "restart":
        proc.err.expect(r"^building v3")  # the v2 build was stopped and a new one started
    (buildable / "hold").unlink()
    proc.out.expect(r"serving v3")
    served(port, "v3 ")
    if on_busy != "queue":  # (queue starts the v2 result; the policy tables pin that down)
        assert proc.out.count("serving v2") == 0


def test_signal_delivers_the_signal_and_does_not_restart(reentr: Start, project: Path) -> None:
    proc = reentr(["--signal", "hup", *TARGET, "--report", "SIGHUP"])
    proc.out.expect(r"started pid=(\d+)")
    edit(project / "a.txt", "reload")
    proc.out.expect(r"^got SIGHUP$")
    proc.err.expect(r"sent SIGHUP to ")
    edit(project / "b.txt", "reload again")
    proc.out.expect(r"^got SIGHUP$")
    assert proc.out.count("started") == 1


def test_ignored_sigint_and_sigterm_are_not_passed_on(reentr: Start) -> None:
    """A background job of a script starts with SIGINT ignored; its children must not be."""
    show = [sys.executable, "-c",
            "print([l for l in open('/proc/self/status') if l.startswith('SigIgn')][0])"]
    proc = reentr(["-z", *show], wrap=["sh", "-c", "trap '' INT TERM; exec \"$@\"", "sh"])
    mask = int(proc.out.expect(r"SigIgn:\s+([0-9a-f]+)").group(1), 16)
    assert mask & (1 << (signal.SIGINT - 1)) == 0
    assert mask & (1 << (signal.SIGTERM - 1)) == 0
    assert proc.wait() == 0


def test_the_stop_signal_warning_comes_once(reentr: Start, project: Path, fifos: Path) -> None:
    proc = reentr(["-r", "--stop-timeout", "200ms", *TARGET, "--state", str(fifos),
                   "--ignore-term"])
    proc.out.expect(r"gen=1")
    for gen in (2, 3):
        edit(project / "a.txt", str(gen))
        proc.out.expect(rf"gen={gen}")
        assert fifo_holders_gone(fifos / f"fifo-{gen - 1}")
    assert proc.err.count("ignores SIGTERM") == 1
    assert proc.err.count("sent SIGKILL") == 2


def test_stop_signal_option(reentr: Start, project: Path) -> None:
    proc = reentr(["-r", "--stop-signal", "INT", *TARGET, "--report", "SIGINT"])
    proc.out.expect(r"started")
    edit(project / "a.txt", "x")
    proc.out.expect(r"^got SIGINT$")  # the target reports it and keeps running...
    proc.err.expect(r"did not stop within 5s of SIGINT; sent SIGKILL", timeout=20)
    proc.out.expect(r"started")  # ...so it is killed, then started again


def test_on_exit_restart(reentr: Start) -> None:
    proc = reentr(["-r", "--on-exit", "restart", *TARGET, "--exit", "1"])
    for _ in range(3):
        proc.out.expect(r"started")
        proc.err.expect(r"exited \(exit status 1\)")


def test_200_restarts_leave_no_zombie_and_flat_fds_and_memory(reentr: Start) -> None:
    proc = reentr(["-r", "sh", "-c", "echo started $$; exec sleep 600"], tty=True)
    pid = proc.proc.pid
    count = 0

    def restart() -> None:
        nonlocal count
        proc.press(" ")
        count += 1
        wait_for(lambda: proc.out.count("started") > count, what=f"restart {count}")

    def measure() -> tuple[int, int, int]:
        status = Path(f"/proc/{pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines())
        return (len(os.listdir(f"/proc/{pid}/fd")), int(fields["VmRSS"].split()[0]),
                int(fields["Threads"]))

    proc.out.expect("started")
    for _ in range(50):
        restart()
    fds, rss_kb, threads = measure()
    for _ in range(150):
        restart()
    # No thread leaks: the reaper threads of old children end (this wait fails if they do not).
    wait_for(lambda: measure()[2] <= threads, what="the reaper threads of old children to end")
    fds_after, rss_after_kb, _ = measure()
    assert fds_after == fds
    assert rss_after_kb - rss_kb < 2048, f"RSS grew from {rss_kb} to {rss_after_kb} kB"
    zombies = [
        entry for entry in os.listdir("/proc") if entry.isdigit()
        and _stat(entry)[:2] == ["Z", str(pid)]
    ]
    assert zombies == []
    proc.press("q")
    assert proc.wait() == 0


def _stat(pid: str) -> list[str]:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def test_a_second_ctrl_c_kills_at_once(reentr: Start, fifos: Path) -> None:
    proc = reentr(["-r", "--stop-timeout", "60s", *TARGET, "--state", str(fifos),
                   "--ignore-term"])
    proc.out.expect(r"gen=1")
    proc.signal(signal.SIGINT)
    proc.err.expect(r"ignores SIGTERM")  # the first one asked politely, and was ignored
    proc.signal(signal.SIGINT)
    assert proc.wait(timeout=10) == -signal.SIGINT  # well within the 60 s stop timeout
    assert fifo_holders_gone(fifos / "fifo-1", timeout=1)


def test_only_the_main_thread_can_receive_the_handled_signals(
    reentr: Start, project: Path
) -> None:
    """A signal given to a helper thread would wait, unhandled, until the main thread next
    woke up (up to the whole stop timeout): helper threads must block it."""
    proc = reentr(["-r", "--build", "true", *TARGET], tty=True)
    proc.out.expect(r"started")
    pid = proc.proc.pid
    handled = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}

    def blocked(tid: str) -> set[int]:
        status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
        mask = int(next(line for line in status.splitlines()
                        if line.startswith("SigBlk:")).split()[1], 16)
        return {s for s in handled if mask >> (s - 1) & 1}

    tasks = os.listdir(f"/proc/{pid}/task")
    assert len(tasks) >= 4  # main, watcher (and its own thread), keys, reaper
    for tid in tasks:
        assert blocked(tid) == (set() if tid == str(pid) else handled), tid


@pytest.mark.timeout(60)
def test_delay_run_waits_before_each_start(reentr: Start, project: Path) -> None:
    proc = reentr(["-p", "--delay-run", "300ms", sys.executable, "-c", "print('ran')"],
                  exits=True)
    proc.err.expect("watching")
    edit(project / "a.txt", "x")
    proc.out.expect("^ran$")
    assert proc.events is not None
    records = [json.loads(line) for line in proc.events.read_text().splitlines()]
    changed = next(r["time"] for r in records if r["event"] == "change")
    spawned = next(r["time"] for r in records if r["event"] == "spawned")
    assert spawned - changed >= 0.29
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT


def test_a_desktop_notification_still_running_is_never_taken_for_a_stray(
        reentr: Start, project: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """notify-send is one of reentr's own processes: one that is still running when the next
    build's group empties is left alone, not stopped as a process that outlived its run."""
    bin_dir = tmp_path_factory.mktemp("bin")
    marker = bin_dir / "notified"
    script = bin_dir / "notify-send"
    script.write_text(f"#!/bin/sh\necho \"$@\" >> {marker}\nexec sleep 3\n")
    script.chmod(0o755)
    proc = reentr(["--notify", "--build", "exit 1", "-r", sys.executable, "-c", "0"],
                  env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    proc.err.expect(r"build failed \(exit status 1\)")
    wait_for(marker.exists, what="the notification")
    edit(project / "a.txt", "again\n")  # a second build fails while notify-send still runs
    wait_for(lambda: proc.err.count(r"build failed \(exit status 1\)") == 2,
             what="the second failed build")
    proc.signal(signal.SIGTERM)
    proc.wait()
    assert "outlived the run" not in proc.err.text()
    assert "build failed" in marker.read_text()
