"""End to end: `reentr bench` on the built-in sample app and on a command of the user's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import APPS, REENTR, free_port


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
        assert f"{mode} (3 edits)" in out
        assert f"{mode}: edit → served, ms" in out  # its histogram
    figures = json.loads((tmp_path / "figures.json").read_text())
    modes = {m["mode"]: m["edits"] for m in figures["modes"]}
    assert list(modes) == ["plain", "signal", "socket", "handoff"]
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
    figures = json.loads(done.stdout)
    assert [m["mode"] for m in figures["modes"]] == ["plain"]
    assert len(figures["modes"][0]["edits"]) == 2
    assert (tmp_path / "app.txt").read_text() == "source\n"  # edited, but not altered


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
