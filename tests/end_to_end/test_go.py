"""End to end with the real Go toolchain: the README's Go loop in a fresh `go mod init` project,
with no binary and no .gitignore, as a new user would start it.

Outside CI a machine without `go` skips these tests and says why; in CI (`CI=true`, where
`.ci/run` installs Debian's golang-go) a missing `go` fails them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import APPS, Hammer, Reentr, edit, free_port, stays_false, wait_for

pytestmark = [pytest.mark.timeout(240)]

Start = Callable[..., Reentr]
GO = shutil.which("go")
if GO is None and os.environ.get("CI") != "true":
    pytestmark = [*pytestmark, pytest.mark.skip(reason="go is not installed (CI installs "
                                                      "Debian's golang-go)")]

SERVER = APPS / "server.go"
"""The README's Go server: serves on the inherited socket when reentr holds one, else binds
itself, and finishes the requests it has begun when it gets SIGTERM."""

MODES = {
    "restart": ["-r"],
    "socket": ["-r", "--socket", "{port}"],
    "handoff": ["--handoff", "--socket", "{port}"],
}


@pytest.fixture
def go_project(tmp_path: Path) -> Path:
    """A fresh module, as `go mod init` leaves it, with main.go: no binary, no .gitignore."""
    if GO is None:
        pytest.fail("go is not installed, and CI must run the Go tests: install golang-go")
    root = tmp_path / "hello"
    root.mkdir()
    subprocess.run([GO, "mod", "init", "example.com/hello"], cwd=root, check=True,
                   capture_output=True, timeout=60, env=_go_env())
    (root / "main.go").write_text(SERVER.read_text())
    return root


def _go_env() -> dict[str, str]:
    # No network: the module has no dependencies, and the machine may reach no proxy.
    return {**os.environ, "GOPROXY": "off", "GOFLAGS": "-mod=mod"}


def _events(proc: Reentr, name: str, **match: object) -> int:
    assert proc.events is not None
    if not proc.events.exists():
        return 0
    records = [json.loads(x) for x in proc.events.read_text().splitlines() if x]
    return sum(r["event"] == name and all(r.get(k) == v for k, v in match.items())
               for r in records)


def _set_version(main: Path, version: str) -> None:
    text = main.read_text()
    start = text.index('const version = "') + len('const version = "')
    edit(main, text[:start] + version + text[text.index('"', start):])


@pytest.mark.parametrize("mode", MODES)
def test_the_go_loop(reentr: Start, go_project: Path, mode: str) -> None:
    port = free_port()
    options = [word.format(port=port) for word in MODES[mode]]
    proc = reentr(["watch", "-n", "--build", "go build -o app .", *options,
                   "--ready-url", f"http://127.0.0.1:{port}/", "--", "./app"],
                  files="", cwd=go_project, env={**_go_env(), "PORT": str(port)}, exits=True)
    client = Hammer(port, interval=0.005)
    try:
        # The first build makes ./app, which is then started (it did not exist before).
        wait_for(lambda: client.served("v0"), timeout=120, what="the first build to serve")
        # An edit before reentr sees the first start ready would make the next start the
        # first that serves, no restart (the README's rule), where the client saw v0 first.
        wait_for(lambda: _events(proc, "ready") >= 1, what="the first start ready")
        failed_at_start = len(client.failures)
        main = go_project / "main.go"
        for edit_number in range(1, 7):
            _set_version(main, f"v{edit_number}")
            wait_for(lambda n=edit_number: client.served(f"v{n}"), timeout=60,  # type: ignore[misc]
                     what=f"v{edit_number} to be served")
        wait_for(lambda: _events(proc, "restart") == 6, what="the sixth restart event")
        assert _events(proc, "start", role="build") == 7  # the first, then one per edit
        if mode != "restart":
            assert client.failures[failed_at_start:] == []

        # A compile error: the old server answers every request, the compiler speaks once.
        failures = len(client.failures)
        served_before = len(client.answers)
        edit(main, main.read_text().replace("func main() {", "func main() {\n\tbroken :=", 1))
        proc.err.expect(r"build failed \(exit status \d+\); still serving the build from "
                        r"\d\d:\d\d:\d\d; the next change builds again")
        wait_for(lambda: len(client.answers) > served_before + 10, what="answers meanwhile")
        assert client.failures[failures:] == []
        assert client.served("v6") is not None
        errors = [line for line in proc.err.lines if line.startswith("./main.go:")]
        assert errors and len(errors) == len(set(errors))  # each compiler line shown once

        # The fix serves the new version; then quiet: nothing starts without an edit.
        _set_version(main, "v7")
        edit(main, main.read_text().replace("func main() {\n\tbroken :=", "func main() {", 1))
        wait_for(lambda: client.served("v7"), timeout=60, what="the fixed build to serve")
        builds = _events(proc, "start", role="build")
        starts = _events(proc, "start", role="target")
        stays_false(lambda: _events(proc, "start") != builds + starts, 5.0,
                    what="something started without an edit")
        if mode != "restart":
            # Before reentr has bound the socket, a connection is refused: not a restart's.
            assert client.failures[failed_at_start:] == []
    finally:
        client.stop()
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT
    assert not (go_project / "app-go-tmp-umask").exists()
