"""The file-descriptor store (`--fd-store`) end to end: real servers (Python, Go) that keep
their clients' connections and their state through restarts while clients talk to them, and
each rule of the store through reentr.

Outside CI a machine without `go` skips the Go test and says why; in CI (`CI=true`, where
`.ci/run` installs Debian's golang-go) a missing `go` fails it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import Pair
from helpers import (
    APPS,
    DEADLINE,
    REENTR,
    Reentr,
    edit,
    event_records,
    free_port,
    free_ports,
    notify,
    wait_for,
)
from reentr import sockets

pytestmark = [pytest.mark.timeout(240)]

Start = Callable[..., Reentr]

GO = shutil.which("go")

STORER = APPS / "storer.py"


def _storer(tmp_path: Path, steps: str) -> Path:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "storer.py").write_text(STORER.read_text())
    edit(tmp_path / "app" / "do.txt", steps)
    return tmp_path / "app"

def _got(proc: Reentr, number: int) -> tuple[int, str, int]:
    """What start `number` (from 1) said it inherited: count, names, its PID."""
    wait_for(lambda: len([x for x in proc.out.lines if x.startswith("got ")]) >= number,
             what=f"start #{number}")
    count, names, pid = [x for x in proc.out.lines if x.startswith("got ")][number - 1].split()[1:]
    return int(count), names, int(pid)

def _done(proc: Reentr, number: int) -> None:
    wait_for(lambda: proc.out.lines.count("done") >= number, what=f"start #{number} to store")

def test_remove_hang_up_no_poll_and_duplicates_through_restarts(
        reentr: Start, tmp_path: Path) -> None:
    app = _storer(tmp_path, "hup:a keep:b dup:c")
    proc = reentr(["watch", "-r", "--fd-store", "-w", "do.txt", "--", sys.executable,
                   "storer.py"], files="", cwd=app)
    assert _got(proc, 1)[:2] == (0, "-")
    _done(proc, 1)
    edit(app / "do.txt", "remove:c")
    # a hung up; b kept (FDPOLL=0) though it hung up too; c's one open file stored once.
    assert _got(proc, 2)[:2] == (2, "b:c")
    _done(proc, 2)
    edit(app / "do.txt", "")
    assert _got(proc, 3)[:2] == (1, "b")  # c removed
    proc.err.expect(r"restart #2 spawned in \d+ ms .*kept 1 fd\)")

def test_the_limit_refuses_what_goes_beyond_it_with_one_line(
        reentr: Start, tmp_path: Path) -> None:
    limit = sockets.store_limit(0)  # as reentr works it out on this machine
    app = _storer(tmp_path, f"many:{limit + 10}")
    proc = reentr(["watch", "-r", "--fd-store", "-w", "do.txt", "--", sys.executable,
                   "storer.py"], files="", cwd=app)
    _done(proc, 1)
    proc.err.expect(rf"the fd store is full: it keeps at most {limit} descriptors .*10 of "
                    "'many' were refused")
    edit(app / "do.txt", "")
    assert _got(proc, 2)[0] == limit
    assert proc.err.count("the fd store is full") == 1

def test_a_target_killed_by_sigkill_leaves_what_it_stored(reentr: Start, tmp_path: Path) -> None:
    app = _storer(tmp_path, "keep:b")
    proc = reentr(["watch", "-r", "--fd-store", "-w", "do.txt", "--", sys.executable,
                   "storer.py"], files="", cwd=app)
    pid = _got(proc, 1)[2]
    _done(proc, 1)
    os.kill(pid, signal.SIGKILL)  # the target reentr started, by its PID
    proc.err.expect("killed by SIGKILL")
    proc.err.expect(r"the fd store keeps 1 descriptor \(1 b\) for the next start; until then "
                    "their clients wait")
    edit(app / "do.txt", "")
    assert _got(proc, 2)[:2] == (1, "b")

def test_an_outsider_cannot_store_nor_make_the_target_ready(
        reentr: Start, tmp_path: Path, pair: Pair) -> None:
    app = _storer(tmp_path, "")
    (app / "storer.py").write_text(STORER.read_text().replace(
        'print("done", flush=True)',
        'print("done", os.environ["NOTIFY_SOCKET"], flush=True)'))
    proc = reentr(["watch", "-r", "--fd-store", "--ready-notify", "--ready-timeout", "3s",
                   "-w", "do.txt", "--", sys.executable, "storer.py"], files="", cwd=app)
    path = wait_for(lambda: next((x.split()[1] for x in proc.out.lines if x.startswith("done")),
                                 None), what="the notify socket's path")
    fd, peer = pair()
    notify(path, "READY=1\nFDSTORE=1\nFDNAME=intruder", [fd])
    os.close(fd)
    proc.err.expect(r"refused a message of pid \d+, which is not in the target's process group")
    proc.err.expect(r"was not ready within 3s")  # the outsider's READY=1 did not count
    peer.settimeout(DEADLINE)
    assert peer.recv(1) == b""
    edit(app / "do.txt", "ready")
    assert _got(proc, 2)[:2] == (0, "-")

def test_the_store_with_handoff_is_refused_with_the_reason(tmp_path: Path) -> None:
    """What the old target stores as it stops could only reach the start after the next."""
    done = subprocess.run([*REENTR, "watch", "--handoff", "--socket", str(free_port()),
                           "--fd-store", "--ready-notify", "--", sys.executable, "-c", "0"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=DEADLINE,
                          check=False)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "reentr: --fd-store passes what the old target stores as it stops to the next start; "
        "with --handoff that start has already happened: give one (for live connections: -r "
        "--socket PORT --fd-store)"]
    (tmp_path / "reentr.toml").write_text(
        f'[services.a]\ncommand = ["{sys.executable}", "-c", "0"]\nsocket = [{free_port()}]\n'
        'handoff = true\nfd-store = true\nready-notify = true\n')
    done = subprocess.run([*REENTR, "up", "-n"], cwd=tmp_path, capture_output=True, text=True,
                          check=False,
                          timeout=DEADLINE)
    assert done.returncode == 1 and "[services.a]" in done.stderr
    assert "--fd-store passes what the old target stores" in done.stderr

class LineClient:
    """One TCP connection to the server, kept open: a line every 10 ms, each answer
    (`VERSION COUNT PID`) checked: the count must grow, the connection must not end."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        self.file = self.sock.makefile("rb")
        self.versions: list[str] = []
        self.errors: list[str] = []
        self.last = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sock.sendall(b"ping\n")
                line = self.file.readline()
            except OSError as error:
                self.errors.append(f"{type(error).__name__}: {error}")
                return
            if not line:
                self.errors.append("the connection ended")
                return
            version, count = line.decode().split()[:2]
            if int(count) <= self.last:
                self.errors.append(f"the count went back: {count} after {self.last}")
            self.last = int(count)
            if not self.versions or self.versions[-1] != version:
                self.versions.append(version)
            self._stop.wait(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(DEADLINE)

    def ends(self) -> bool:
        """Whether the server's side ends the connection (end of file) within the deadline;
        the connection is closed after."""
        self.sock.settimeout(DEADLINE)
        try:
            return self.sock.recv(1) == b""
        except OSError:
            return False
        finally:
            self.file.close()
            self.sock.close()

class FreshClient:
    """A new connection every 10 ms, one line each: every failure recorded."""

    def __init__(self, port: int):
        self.port = port
        self.answers = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=DEADLINE) as c:
                    c.sendall(b"ping\n")
                    if c.makefile("rb").readline():
                        self.answers += 1
                    else:
                        self.failures.append("closed")
            except OSError as error:
                self.failures.append(type(error).__name__)
            self._stop.wait(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(DEADLINE)

def _through_restarts(proc: Reentr, port: int, set_version: Callable[[str], None],
                      restarts: int, first_timeout: float = DEADLINE) -> None:
    """Clients on kept connections and on fresh ones through `restarts` restarts: none
    dropped, none failed, every version seen on every kept connection, the count never back;
    then reentr quits and every kept connection ends."""
    proc.out.expect("serving v1", timeout=first_timeout)
    kept = [LineClient(port) for _ in range(4)]
    fresh = FreshClient(port)
    try:
        for number in range(2, restarts + 2):
            set_version(f"v{number}")
            for client in kept:
                wait_for(lambda c=client, n=number: f"v{n}" in c.versions or c.errors,  # type: ignore[misc]
                         timeout=60, what=f"v{number} on every kept connection")
            assert [c.errors for c in kept] == [[]] * len(kept)
        wait_for(lambda: proc.err.count("restart #") >= restarts, what="the restart lines")
    except BaseException:
        for client in kept:
            client.stop()
            client.ends()
        raise
    finally:
        for client in kept:
            client.stop()
        fresh.stop()
    assert [c.errors for c in kept] == [[]] * len(kept)
    assert [c.versions for c in kept] == [[f"v{n}" for n in range(1, restarts + 2)]] * len(kept)
    assert fresh.failures == [] and fresh.answers > 0
    kept_counts = [int(m) for m in re.findall(r"kept (\d+) fds?\)", proc.err.text())]
    assert len(kept_counts) == restarts and min(kept_counts) >= len(kept) + 1  # and the state
    records = event_records(proc.events)
    assert [r["kept_fds"] for r in records if r["event"] == "restart"] == kept_counts
    # A connection the server ends (shut down, then closed) ends for its client at once,
    # though the store held a copy; the next start is given one fewer.
    leaving, staying = kept[0], kept[1:]
    leaving.sock.sendall(b"quit\n")
    assert leaving.file.readline() == b"bye\n" and leaving.ends()
    set_version(f"v{restarts + 2}")
    wait_for(lambda: proc.err.count("restart #") > restarts, what="one more restart")
    # (A fresh client's connection open at a restart is kept too: the fewest kept is the
    # kept connections and the state.)
    assert re.findall(r"kept (\d+) fds?\)", proc.err.text())[-1] == str(min(kept_counts) - 1)
    proc.signal(signal.SIGTERM)
    proc.wait()
    assert all(client.ends() for client in staying)  # reentr closed every stored descriptor

def test_a_python_server_keeps_its_connections_and_state_through_10_restarts(
        reentr: Start, tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "app.py").write_text((APPS / "stateful.py").read_text())
    edit(app / "version.txt", "v1\n")
    port = free_port()
    proc = reentr(["watch", "-r", "--socket", f"127.0.0.1:{port}", "--fd-store",
                   "--ready-notify", "-w", "version.txt", "--", sys.executable, "app.py"],
                  files="", cwd=app, exits=True)
    _through_restarts(proc, port, lambda v: edit(app / "version.txt", f"{v}\n"), 10)

def test_a_go_server_keeps_its_connections_and_state_through_10_restarts(
        reentr: Start, tmp_path: Path) -> None:
    if GO is None:
        if os.environ.get("CI") == "true":
            pytest.fail("go is not installed, and CI must run the Go tests: install golang-go")
        pytest.skip("go is not installed (CI installs Debian's golang-go)")
    app = tmp_path / "app"
    app.mkdir()
    env = {**os.environ, "GOPROXY": "off", "GOFLAGS": "-mod=mod"}
    subprocess.run([GO, "mod", "init", "example.com/stateful"], cwd=app, check=True,
                   capture_output=True, timeout=60, env=env)
    main = app / "main.go"
    main.write_text((APPS / "stateful.go").read_text())
    port = free_port()
    proc = reentr(["watch", "-r", "--build", "go build -o server .", "--socket",
                   f"127.0.0.1:{port}", "--fd-store", "--ready-notify", "--", "./server"],
                  files="", cwd=app, env=env, exits=True)

    def set_version(version: str) -> None:
        edit(main, re.sub(r'const version = "v\d+"', f'const version = "{version}"',
                          main.read_text()))

    _through_restarts(proc, port, set_version, 10, first_timeout=120)

def test_two_services_of_reentr_up_each_keep_their_own(reentr: Start, tmp_path: Path) -> None:
    root = tmp_path / "proj"
    ports = free_ports(2)
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        (root / name / "app.py").write_text((APPS / "stateful.py").read_text())
        edit(root / name / "version.txt", "v1\n")
    (root / "reentr.toml").write_text("".join(
        f'[services.{name}]\npaths = ["."]\ncwd = "{name}"\n'
        f'command = ["{sys.executable}", "app.py"]\nsocket = ["127.0.0.1:{port}"]\n'
        'fd-store = true\nready-notify = true\n\n' for name, port in zip("ab", ports, strict=True)))
    proc = reentr(["up", "-n"], files="", cwd=root)
    wait_for(lambda: proc.out.count("serving v1") == 2, what="both services")
    clients = {name: LineClient(port) for name, port in zip("ab", ports, strict=True)}
    try:
        for name in ("a", "b"):
            edit(root / name / "version.txt", "v2\n")
            wait_for(lambda n=name: "v2" in clients[n].versions or clients[n].errors,  # type: ignore[misc]
                     timeout=60, what=f"{name}'s new version")
        wait_for(lambda: clients["a"].last > 20 and clients["b"].last > 20, what="answers")
    except BaseException:
        for client in clients.values():
            client.stop()
            client.ends()
        raise
    finally:
        for client in clients.values():
            client.stop()
    assert {n: c.errors for n, c in clients.items()} == {"a": [], "b": []}
    assert {n: c.versions for n, c in clients.items()} == {"a": ["v1", "v2"], "b": ["v1", "v2"]}
    # Each service's counter is its own memfd, and each kept its own connection.
    assert len(re.findall(r"restart #1 .*kept 2 fds\)", proc.err.text())) == 2
    proc.signal(signal.SIGTERM)
    proc.wait()
    assert all(client.ends() for client in clients.values())

def test_without_the_store_a_target_that_stores_is_told_so_once(
        reentr: Start, tmp_path: Path) -> None:
    app = _storer(tmp_path, "keep:b")
    proc = reentr(["watch", "-r", "--ready-notify", "-w", "do.txt", "--", sys.executable,
                   "storer.py"], files="", cwd=app)
    _done(proc, 1)
    proc.err.expect(r"the store is off, so they were closed: give --fd-store")
    edit(app / "do.txt", "keep:c")
    _done(proc, 2)
    assert _got(proc, 2)[:2] == (0, "-")
    assert proc.err.count("the store is off") == 1
