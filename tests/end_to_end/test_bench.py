"""End to end: `reentr bench` on the built-in sample app and on a command of the user's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import APPS, REENTR, free_port, wait_for


def bench(args: list[str], cwd: Path, env: dict[str, str] | None = None,
          timeout: float = 50) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*REENTR, "bench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, check=False)


@pytest.mark.timeout(60)
def test_bench_on_the_sample_app_compares_every_mode(tmp_path: Path) -> None:
    done = bench(["--runs", "3", "--json", "figures.json"], tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "reentr bench: 3 edits of version.txt per mode, the sample app" in out
    assert "edit → served, ms" in out
    for mode in ("plain", "signal", "socket", "handoff"):
        row = next(line for line in out.splitlines() if line.startswith(f"{mode} (3 edits)"))
        assert row.endswith("3 of 3"), row  # the restarts reentr reported, per edit made
        assert f"{mode}: edit → served, ms" in out  # its histogram
    figures = json.loads((tmp_path / "figures.json").read_text())
    modes = {m["mode"]: m["edits"] for m in figures["modes"]}
    assert list(modes) == ["plain", "signal", "socket", "handoff"]
    assert [m["reported"] for m in figures["modes"]] == [3, 3, 3, 3]
    for edits in modes.values():
        assert len(edits) == 3
        for edit in edits:
            assert edit["edit_to_ready_ms"] > 0
            assert edit["printed_total_ms"] is not None
    # The in-process reload and the held socket never refuse a request; a plain restart of a
    # server that binds its port only after it starts does (the client polls every 1 ms).
    for mode in ("signal", "socket", "handoff"):
        assert all(e["failed_requests"] == 0 for e in modes[mode]), mode
    assert sum(e["failed_requests"] for e in modes["plain"]) > 0


@pytest.mark.timeout(60)
def test_bench_on_a_command_of_the_users(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "app.txt").write_text("source\n")
    done = bench(["--runs", "2", "--port", str(port), "--edit", "app.txt", "--json", "-", "--",
                  sys.executable, str(APPS / "server.py")], tmp_path, env={"PORT": str(port)})
    assert done.returncode == 0, done.stderr
    assert "plain (2 edits)" in done.stderr  # the table moves to stderr when JSON takes stdout
    # The other modes are left out by default, and it says so, and how to have them.
    assert "reentr: measuring the plain restart alone" in done.stderr
    assert "--mode socket,handoff" in done.stderr
    figures = json.loads(done.stdout)
    assert [m["mode"] for m in figures["modes"]] == ["plain"]
    assert len(figures["modes"][0]["edits"]) == 2
    assert (tmp_path / "app.txt").read_text() == "source\n"  # edited, but not altered


@pytest.mark.timeout(90)
def test_two_observers_see_your_apps_new_target_from_the_outside(tmp_path: Path) -> None:
    # Your app's answers do not change across a restart: the client tells the new target by
    # which process took its connection (sock_diag), not by reentr's own report, and a second
    # client, alike in every way, measures each edit too.
    port = free_port()
    (tmp_path / "version.txt").write_text("v0")
    (tmp_path / "server.py").write_bytes((APPS / "server.py").read_bytes())
    done = bench(["--runs", "3", "--observers", "2", "--port", str(port), "--edit",
                  "server.py", "--mode", "plain,socket", "--json", "-", "--", sys.executable,
                  "server.py"], tmp_path, env={"PORT": str(port)}, timeout=80)
    assert done.returncode == 0, done.stderr
    header = next(line for line in done.stderr.splitlines() if line.startswith("edit → served"))
    assert header.endswith("observer vs observer, p50")
    figures = json.loads(done.stdout)
    for mode in figures["modes"]:
        assert mode["reported"] == 3
        for edit in mode["edits"]:
            assert edit["edit_to_ready_ms"] > 0 and edit["second_observer_ms"] > 0
            assert edit["printed_total_ms"] is not None


@pytest.mark.timeout(60)
def test_an_app_that_dies_of_sighup_ends_the_signal_bench_at_once_saying_why(
    tmp_path: Path
) -> None:
    # It used to wait out its 30 s for an edit to be served by an app that was gone.
    port = free_port()
    (tmp_path / "version.txt").write_text("v0")
    (tmp_path / "server.py").write_bytes((APPS / "server.py").read_bytes())
    done = bench(["--runs", "3", "--port", str(port), "--edit", "server.py", "--mode",
                  "signal", "--", sys.executable, "server.py"], tmp_path,
                 env={"PORT": str(port)}, timeout=25)
    assert done.returncode == 1
    assert ("bench: the app exited (killed by SIGHUP) during edit 1 of mode signal, and "
            "reentr did not start it again; --mode signal sends SIGHUP") in done.stderr
    assert "Traceback" not in done.stderr


APP = (b"# -*- coding: latin-1 -*-\r\n"
       b"# caf\xe9: the bytes of this file must come back as they were\r\n"
       b"import http.server, os\r\n"
       b"class Handler(http.server.BaseHTTPRequestHandler):\r\n"
       b"    def do_GET(self):\r\n"
       b"        self.send_response(200); self.end_headers(); self.wfile.write(b'ok')\r\n"
       b"    def log_message(self, *args): pass\r\n"
       b"http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), Handler).serve_forever()"
       b"\r\n")


@pytest.mark.timeout(120)
def test_the_readme_line_for_your_own_app_runs_in_your_project_and_keeps_your_bytes(
    tmp_path: Path
) -> None:
    port = free_port()
    (tmp_path / "app.py").write_bytes(APP)
    done = bench(["--runs", "2", "--mode", "plain", "--port", str(port), "--edit", "app.py",
                  "--", "python3", "app.py"], tmp_path, env={"PORT": str(port)}, timeout=100)
    assert done.returncode == 0, done.stderr
    assert "plain (2 edits)" in done.stdout
    assert (tmp_path / "app.py").read_bytes() == APP


@pytest.mark.timeout(120)
def test_a_ctrl_c_in_the_middle_gives_your_file_back(tmp_path: Path) -> None:
    port = free_port()
    app = tmp_path / "app.py"
    app.write_bytes(APP)
    written = app.stat().st_mtime_ns
    proc = subprocess.Popen([*REENTR, "bench", "--runs", "50", "--mode", "plain", "--port",
                             str(port), "--edit", "app.py", "--", "python3", "app.py"],
                            cwd=tmp_path, env={**os.environ, "PORT": str(port)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: app.stat().st_mtime_ns != written, timeout=60, what="the first edit")
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert app.read_bytes() == APP


@pytest.mark.timeout(60)
def test_an_app_that_exits_at_once_ends_the_bench_at_once(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("raise SystemExit('no such database')\n")
    started = time.monotonic()
    done = bench(["--port", str(free_port()), "--edit", "app.py", "--", "python3", "app.py"],
                 tmp_path)
    assert time.monotonic() - started < 10
    assert done.returncode == 1
    assert "the app exited before it answered (status 1): no such database" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--mode", "fast"],
      "--mode: unknown mode 'fast'; choose from plain, signal, socket, handoff"),
     (["--", "true"], "bench with your own command needs --port PORT and --edit FILE"),
     (["--port", "8000", "--edit", "nope.py", "--", "true"], "--edit: 'nope.py' is not a file"),
     (["--edit", "x"], "--edit is for your own command"),
     (["--runs", "0"], "invalid value for '--runs'")],
)
def test_bench_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    done = bench(args, tmp_path, timeout=20)
    assert done.returncode == 1
    assert done.stderr.startswith(f"reentr: {message}"), done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_a_utility_named_bench_runs_after_a_double_dash(tmp_path: Path) -> None:
    script = tmp_path / "bench"
    script.write_text("#!/bin/sh\necho utility named bench ran\n")
    script.chmod(0o755)
    (tmp_path / "a.txt").write_text("a")
    done = subprocess.run([*REENTR, "-z", "--", "bench"], cwd=tmp_path, input="a.txt\n",
                          capture_output=True, text=True, timeout=20, check=False,
                          env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"})
    assert done.returncode == 0, done.stderr
    assert done.stdout == "utility named bench ran\n"


@pytest.mark.parametrize(("times", "rows"), [
    # A narrow range: one bin per millisecond, none past the slowest.
    ([5.2, 5.9, 7.4], ["[5, 6)", "[6, 7)", "[7, 8)"]),
    # A wide one: 8 bins at most, of whole milliseconds, that never share a bound.
    ([69.0, 70.5, 171.9], ["[69, 82)", "[82, 95)", "[95, 108)", "[108, 121)", "[121, 134)",
                           "[134, 147)", "[147, 160)", "[160, 173)"]),
    ([40.0], ["[40, 41)"]),
])
def test_a_histogram_covers_the_edits_and_no_more(times: list[float], rows: list[str]) -> None:
    from io import StringIO

    from reentr.bench import Edit, Result, _print_histogram

    out = StringIO()
    _print_histogram(Result("plain", [Edit(t, 0, 0.0) for t in times]), out)
    lines = out.getvalue().splitlines()[1:]
    assert [line.split()[0] + " " + line.split()[1] for line in lines] == rows
    assert sum(int(line.split()[2]) for line in lines) == len(times)
    assert lines[0].split()[2] != "0" and lines[-1].split()[2] != "0"
