"""`--socket` and `--handoff`, end to end: real sockets on 127.0.0.1, real servers, a client
that hammers them through real restarts."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from helpers import APPS, DEADLINE, Hammer, Reentr, edit, event_records, free_port, wait_for
from reentr import ready
from reentr.config import Probe, ProbeKind
from reentr.events import TargetReady, TargetServes
from reentr.ready import probes

SERVER = [sys.executable, str(APPS / "server.py")]
RESTARTS = 50


def _gone(pid: str) -> bool:
    return not os.path.exists(f"/proc/{pid}")


def test_the_target_gets_the_sockets_by_the_socket_activation_contract(
    reentr: Callable[..., Reentr], project: Path, tmp_path: Path
) -> None:
    port = free_port()
    path = tmp_path / "app.sock"
    show = (
        "import os, socket, json; s = [socket.socket(fileno=fd) for fd in (3, 4)]; "
        "print(json.dumps({'env': {k: os.environ.get(k) for k in "
        "('LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES')}, 'pid': os.getpid(), "
        "'names': [str(x.getsockname()) for x in s], "
        "'listening': [x.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) for x in s], "
        "'fd5': os.path.exists('/proc/self/fd/5')}), flush=True)"
    )
    proc = reentr(["-n", "--socket", str(port), "--socket", f"api=unix:{path}", "-z",
                   sys.executable, "-c", show])
    seen = json.loads(proc.out.expect(r"^\{.*").group(0))
    assert proc.wait() == 0
    assert seen["env"] == {"LISTEN_FDS": "2", "LISTEN_PID": str(seen["pid"]),
                           "LISTEN_FDNAMES": f"{port}:api"}
    assert seen["names"] == [str(("127.0.0.1", port)), str(path)]
    assert seen["listening"] == [1, 1]
    assert seen["fd5"] is False, "only the sockets are passed on"
    assert not path.exists(), "reentr removes the socket file it made"


@pytest.mark.parametrize("build", [False, True])
def test_what_reentr_inherited_of_these_protocols_never_reaches_a_child(
    reentr: Callable[..., Reentr], project: Path, build: bool
) -> None:
    # reentr was itself started with sockets and a notify socket (by systemd, or by another
    # reentr): they are reentr's, and the child has neither.
    names = ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")
    show = ("import os; print('env', sorted(k for k in os.environ if k in "
            f"{names!r}), flush=True)")
    inherited = {"NOTIFY_SOCKET": "/run/elsewhere", "LISTEN_FDS": "1", "LISTEN_PID": "1",
                 "LISTEN_FDNAMES": "x"}
    options = ["--build", f"{shlex.quote(sys.executable)} -c {shlex.quote(show)}"] * build
    proc = reentr(["-n", *options, "-z", sys.executable, "-c", show], env=inherited)
    assert proc.wait() == 0
    assert proc.out.lines.count("env []") == 1
    assert proc.err.lines.count("env []") == build  # the build's output goes to stderr


def test_a_port_in_use_is_one_line_and_nothing_starts(
    reentr: Callable[..., Reentr], project: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = reentr(["-n", "--socket", str(port), "touch", "started"])
        assert proc.wait() == 1
    assert proc.err.lines == [
        f"reentr: --socket 127.0.0.1:{port}: address already in use; stop the program "
        "listening there, or choose another"
    ]
    assert not (project / "started").exists()


@pytest.mark.parametrize(("command", "noted"), [
    (["go", "run", "."], "build, then run the binary, as in --build 'go build -o app .' -- ./app"),
    (["-s", "go run ./cmd/server"], "build, then run the binary, as in --build "
                                    "'go build -o app .' -- ./app"),
    (["npm", "start"], "run the program itself, as in -- node server.js"),
    (["go", "build"], None), (["./app"], None)])
def test_a_launcher_under_a_held_socket_gets_a_note_with_the_fix(
    reentr: Callable[..., Reentr], project: Path, command: list[str], noted: str | None
) -> None:
    # `go run` and `npm start` run the program as a child of their own, whose PID is not
    # LISTEN_PID: reentr says so once, before the start, with the fix. (Programs of the
    # test's own, on PATH, stand in for go and npm.)
    bin_dir = project / "bin"
    bin_dir.mkdir()
    for name in ("go", "npm", "app"):
        (bin_dir / name).write_text("#!/bin/sh\necho ran\n")
        (bin_dir / name).chmod(0o755)
    if command == ["./app"]:
        (project / "app").write_bytes((bin_dir / "app").read_bytes())
        (project / "app").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    proc = reentr(["-n", "-z", "--socket", str(free_port()), *command], env=env)
    proc.out.expect("^ran$")
    assert proc.wait() == 0
    notes = [line for line in proc.err.lines if line.startswith("reentr: note: ")]
    assert len(notes) == (noted is not None)
    if noted is not None:
        assert " runs your program as a child of its own, so LISTEN_PID names " in notes[0]
        assert notes[0].endswith(noted)


@pytest.mark.parametrize(("args", "complaint"), [
    (["--handoff", "--ready-line", "x"], "--handoff needs --socket"),
    (["--socket", "{port}", "--handoff"], "--handoff needs a readiness probe"),
    (["--socket", "{port}", "--ready-port", "{port}"], "would be answered by reentr's own"),
    (["--socket", "{port}", "--handoff", "--signal", "HUP", "--ready-notify"], "give one"),
    (["--socket", "unix:"], "has no path"),
    (["--socket", "nope"], "is not an address"),
])
def test_readiness_that_cannot_come_from_the_new_target_is_refused(
    reentr: Callable[..., Reentr], project: Path, args: list[str], complaint: str
) -> None:
    port = str(free_port())
    proc = reentr(["-n", *(a.replace("{port}", port) for a in args), "touch", "started"])
    assert proc.wait() == 1
    assert len(proc.err.lines) == 1
    assert complaint in proc.err.lines[0]
    assert not (project / "started").exists()


def _serve_through_restarts(
    reentr: Callable[..., Reentr], project: Path, options: list[str], restarts: int
) -> tuple[Reentr, Hammer, list[str]]:
    """Start the test server under reentr with `options`, hammer it, edit its version
    `restarts` times, waiting each time until the new version answers; return the PIDs that
    served each version."""
    port = free_port()
    (project / "version.txt").write_text("v0")
    proc = reentr(["-n", "--socket", str(port), *options, *SERVER], ["version.txt"])
    proc.err.expect("watching")  # the socket is bound before the watch is set up
    hammer = Hammer(port)
    pids = [wait_for(lambda: hammer.served("v0"), what="v0 served")]
    for number in range(1, restarts + 1):
        edit(project / "version.txt", f"v{number}")
        pids.append(wait_for(partial(hammer.served, f"v{number}"), what=f"v{number}"))
        proc.err.expect(rf"restart #{number} ")
    return proc, hammer, pids


@pytest.mark.timeout(120)
def test_with_socket_fifty_restarts_refuse_and_reset_no_connection(
    reentr: Callable[..., Reentr], project: Path
) -> None:
    proc, hammer, pids = _serve_through_restarts(reentr, project, ["-r"], RESTARTS)
    hammer.stop()
    assert hammer.failures == []
    assert len(set(pids)) == RESTARTS + 1, "every version was served by a new process"
    assert len(hammer.answers) > RESTARTS * 5
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT


@pytest.mark.timeout(120)
def test_with_handoff_fifty_restarts_fail_no_request_and_the_old_target_goes(
    reentr: Callable[..., Reentr], project: Path
) -> None:
    proc, hammer, pids = _serve_through_restarts(
        reentr, project, ["--handoff", "--ready-line", "^serving"], RESTARTS)
    for old in pids[:-1]:
        wait_for(partial(_gone, old), what=f"the old target {old} to be gone")
    hammer.stop()
    assert hammer.failures == []
    assert len(set(pids)) == RESTARTS + 1
    assert not _gone(pids[-1])
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("version", "said"), [
    ("crash", r"exited \(exit status 3\)"),
    ("mute", r"was not ready within 1s \(--ready-line \^serving\)$"),
])
def test_handoff_rolls_back_when_the_new_target_fails(
    reentr: Callable[..., Reentr], project: Path, version: str, said: str
) -> None:
    proc, hammer, pids = _serve_through_restarts(
        reentr, project, ["--handoff", "--ready-line", "^serving", "--ready-timeout", "1s"], 1)
    edit(project / "version.txt", version)
    proc.err.expect(said)
    proc.err.expect(rf"rolled back: the new target is stopped; the old target \(pid {pids[1]}\)"
                    " keeps serving")
    served_before = len(hammer.answers)
    wait_for(lambda: len(hammer.answers) > served_before + 20, what="more answers")
    assert hammer.served("v1") == pids[1]
    assert hammer.answers[-1] == f"v1 {pids[1]}", "the old target still serves"
    edit(project / "version.txt", "v2")  # the next good change hands off as usual
    new = wait_for(lambda: hammer.served("v2"), what="v2")
    wait_for(lambda: _gone(pids[1]), what="the old target to be gone")
    hammer.stop()
    assert new != pids[1]
    assert hammer.failures == []


@pytest.mark.timeout(60)
def test_ready_notify_waits_for_ready_1_from_the_new_target(
    reentr: Callable[..., Reentr], project: Path
) -> None:
    events = project / "events.jsonl"
    _, hammer, pids = _serve_through_restarts(
        reentr, project, ["--handoff", "--ready-notify", "--events", str(events)], 3)
    hammer.stop()
    assert hammer.failures == []
    ready = [json.loads(line) for line in events.read_text().splitlines()
             if '"ready"' in line]
    assert [str(record["pid"]) for record in ready] == pids


def _handoff_by_url(reentr: Callable[..., Reentr], project: Path) -> tuple[Reentr, int]:
    """The test server, version v0, under `--handoff` with a `--ready-url` probe: reentr
    and the port."""
    port = free_port()
    (project / "version.txt").write_text("v0")
    return reentr(["-n", "--socket", str(port), "--handoff", "--ready-url",
                   f"http://127.0.0.1:{port}/", *SERVER], ["version.txt"]), port


@pytest.mark.timeout(60)
def test_handoff_by_url_waits_for_an_answer_that_names_the_new_pid(
    reentr: Callable[..., Reentr], project: Path
) -> None:
    # The old target answers the URL all along: only an answer naming the new PID counts.
    proc, port = _handoff_by_url(reentr, project)
    proc.err.expect("watching")
    hammer = Hammer(port)
    old = wait_for(lambda: hammer.served("v0"), what="v0")
    edit(project / "version.txt", "mute")  # serves, but never prints: irrelevant to --ready-url
    # Timed until the new target took a connection: the old one, told to stop once the new
    # one was ready, takes them until it stops.
    proc.err.expect(r"restart #1 served in \d+ ms \(detect \d+, build 0, spawn \d+, ready \d+, "
                    r"switch \d+(?:, other \d+)?\) version\.txt$")
    new = wait_for(lambda: hammer.served("mute"), what="the new version")
    wait_for(lambda: _gone(old), what="the old target to be gone")
    hammer.stop()
    assert new != old
    assert hammer.failures == []


@pytest.mark.timeout(60)
def test_the_handoff_url_probe_sends_no_request_to_the_old_target(
    reentr: Callable[..., Reentr], project: Path
) -> None:
    # While both serve the socket, the probe sends its request only on a connection the new
    # target took: the old one answers none (a server's access log would show each), and
    # each start answers exactly one.
    proc, _ = _handoff_by_url(reentr, project)
    proc.out.expect(r"^answered reentr's probe: v0 ")
    for number in (1, 2, 3):
        edit(project / "version.txt", f"v{number}")
        proc.err.expect(rf"restart #{number} served in ")
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT
    answered = [line.split(": ", 1)[1] for line in proc.out.lines
                if line.startswith("answered reentr's probe: ")]
    assert [line.split()[0] for line in answered] == ["v0", "v1", "v2", "v3"]
    assert len({line.split()[1] for line in answered}) == 4  # each by its own process


@pytest.mark.parametrize(("shell", "found"), [(False, "1"), (True, "0")])
def test_listen_sockets_takes_only_the_sockets_meant_for_this_process(
    reentr: Callable[..., Reentr], project: Path, shell: bool, found: str
) -> None:
    count = [sys.executable, "-c", "import reentr; print(len(reentr.listen_sockets()))"]
    # Through a shell that forks, the program is not the process LISTEN_PID names.
    command = ["sh", "-c", f"{shlex.join(count)}; true"] if shell else count
    proc = reentr(["-n", "-z", "--socket", str(free_port()), *command])
    assert proc.out.expect(r"^\d+$").group(0) == found
    assert proc.wait() == 0


STORES = r"""
import array, os, socket, reentr
listening = reentr.listen_sockets()
print("listening", *(sock.getsockname()[1] for sock in listening), flush=True)
print("inherited", *(name for name, _ in reentr.inherited_fds()), flush=True)
if len(reentr.inherited_fds()) == 1:  # the first start stores a memfd and a connection
    kept, other = socket.socketpair()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.connect(os.environ["NOTIFY_SOCKET"])
        for name, fd in (("state", os.memfd_create("state")), ("conn", kept.fileno())):
            rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))]
            notify.sendmsg([f"FDSTORE=1\nFDNAME={name}\nFDPOLL=0".encode()], rights)
        notify.sendmsg([b"READY=1"])
else:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.connect(os.environ["NOTIFY_SOCKET"])
        notify.sendmsg([b"READY=1"])
import signal; signal.pause()
"""


def test_listen_sockets_leaves_out_what_the_fd_store_keeps(
    reentr: Callable[..., Reentr], project: Path
) -> None:
    # A memfd the store kept made every later start's listen_sockets() raise (Socket
    # operation on non-socket), and a kept connection would have passed for a listener.
    port = free_port()
    (project / "app.py").write_text(STORES)
    events = project.parent / "events.jsonl"
    proc = reentr(["watch", "-n", "-r", "--socket", str(port), "--fd-store", "--ready-notify",
                   "--events", str(events), "-w", "app.py", "--", sys.executable, "app.py"],
                  files="")
    proc.out.expect(rf"^listening {port}$")
    assert len(proc.out.expect(r"^inherited (.*)$").group(1).split()) == 1
    # READY=1 comes after the two are stored, on the same socket.
    wait_for(lambda: any(r["event"] == "ready" for r in event_records(events)),
             what="the first start ready")
    edit(project / "app.py", STORES + "\n")
    proc.out.expect(rf"^listening {port}$")
    line = proc.out.expect(r"^inherited (.*)$").group(1).split()
    assert line[1:] == ["state", "conn"], line
    assert proc.out.count(r"^listening ") == 2
    proc.signal(signal.SIGINT)
    proc.wait()
    assert "Traceback" not in proc.err.text()


ACCEPTOR = """
import socket, sys
listener = socket.socket(fileno=int(sys.argv[1]))
print("accepting", flush=True)
held = []
while True:
    held.append(listener.accept()[0])  # held open: the client's side decides
"""


def test_the_handoff_probe_tells_which_process_group_took_a_connection() -> None:
    # A real process in a group of its own accepts on a socket this test holds: a connection
    # taken by it is its group's, and no other group's.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        child = subprocess.Popen(
            [sys.executable, "-c", ACCEPTOR, str(listener.fileno())],
            pass_fds=(listener.fileno(),), stdout=subprocess.PIPE, start_new_session=True)
        try:
            assert child.stdout is not None and child.stdout.readline() == b"accepting\n"
            address = listener.getsockname()
            before = time.monotonic_ns()
            taken = ready.Taker(address, child.pid).new_one_took()
            assert taken is not None and before <= taken <= time.monotonic_ns()
            assert ready.Taker(address, os.getpgid(0)).new_one_took() is None
        finally:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=DEADLINE)
            assert child.stdout is not None
            child.stdout.close()


@pytest.mark.parametrize(("url", "reaches"), [
    ("http://127.0.0.1:8000/health", True), ("http://localhost:8000/", True),
    ("http://127.0.0.1:8001/", False), ("http://127.0.0.2:8000/", False)])
def test_the_handoff_url_probe_looks_for_the_new_target_only_on_the_held_socket(
    url: str, reaches: bool
) -> None:
    # A URL served elsewhere (a proxy in front, another port) is probed as without
    # --handoff, by the PID its answer names: who takes its connections says nothing.
    assert probes._reaches(urllib.parse.urlsplit(url), ("127.0.0.1", 8000)) is reaches


def test_a_handoff_on_a_unix_socket_is_timed_to_readiness() -> None:
    # Who takes a Unix socket's connections cannot be seen: the restart ends at ready.
    got: list[object] = []
    waiter = ready.Waiter(Probe(ProbeKind.LINE, "^serving", 5.0), _Collect(got), handoff=True,
                          address=None)
    waiter.started(os.getpid())
    waiter.line(b"serving v1\n")
    assert [type(event) for event in got] == [TargetReady, TargetServes]
    assert got[1] == TargetServes(os.getpid(), None)


class _Collect:
    """A queue that keeps what is put on it, in order."""

    def __init__(self, into: list[object]):
        self.into = into

    def put(self, item: object) -> None:
        self.into.append(item)


# Binds the port its argument names, as Django's runserver and `python -m http.server` do.
BINDS = ("import socket, sys; s = socket.socket(); "
         "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
         "s.bind(('127.0.0.1', int(sys.argv[1].rpartition(':')[2]))); s.listen(); "
         "print('serving', flush=True)")


def test_a_target_that_ends_by_itself_under_a_held_socket_says_clients_wait(
    reentr: Callable[..., Reentr], project: Path
) -> None:
    # A syntax error after an edit: nothing takes the connections, and a client seems to
    # hang on the socket reentr holds, with no word of why.
    port = free_port()
    crash = [sys.executable, "-c", "raise SystemExit(1)"]
    proc = reentr(["-n", "-r", "--socket", str(port), *crash], exits=True)
    proc.err.expect(rf"exited \(exit status 1\); connections to 127\.0\.0\.1:{port} wait on the "
                    r"socket reentr holds until it starts again \(a program that binds the "
                    r"port itself fails so: it must take the socket as fd 3, LISTEN_FDS\)$")
    proc.signal(signal.SIGINT)
    proc.wait()


def test_a_target_whose_port_is_in_its_code_is_told_it_may_have_bound_it_itself(
    reentr: Callable[..., Reentr], project: Path
) -> None:
    # A Node app's listen(PORT), the port in its code: it failed with EADDRINUSE and reentr
    # said only that clients wait. Its words do not name the port, so the hint is a maybe.
    port = free_port()
    (project / "app.py").write_text(BINDS.replace("sys.argv[1]", repr(str(port))) + "\n")
    proc = reentr(["-n", "-r", "--socket", str(port), sys.executable, "app.py"], exits=True)
    proc.err.expect(r"Address already in use")
    proc.err.expect(r"exited \(exit status 1\); connections to .* until it starts again \(a "
                    r"program that binds the port itself fails so: it must take the socket as "
                    r"fd 3, LISTEN_FDS\)$")
    proc.signal(signal.SIGINT)
    proc.wait()
    assert "would use the port" not in proc.err.text()  # that line is for a port it names


@pytest.mark.parametrize(("program", "hinted"), [
    # Told the port reentr holds, it binds it itself and is refused: said, once.
    (lambda port: [sys.executable, "-c", BINDS, f"127.0.0.1:{port}"], True),
    (lambda port: [sys.executable, "-c", BINDS, str(port)], True),
    # A crash that names no port is a crash: its own words say enough.
    (lambda port: [sys.executable, "-c", "raise SystemExit(3)"], False),
])
def test_a_program_that_binds_the_held_port_itself_is_told_why_it_failed(
    reentr: Callable[..., Reentr], project: Path, program: Callable[[int], list[str]],
    hinted: bool,
) -> None:
    port = free_port()
    proc = reentr(["-n", "-r", "--socket", str(port), *program(port)], exits=True)
    proc.run_ended()
    edit(project / "a.txt", "again\n")
    proc.run_ended()
    proc.signal(signal.SIGINT)
    proc.wait()
    said = proc.err.count(r"would use the port of the socket reentr holds")
    assert said == (1 if hinted else 0), proc.err.text()
    if hinted:
        proc.err.expect(rf"would use the port of the socket reentr holds \(127\.0\.0\.1:{port}\) "
                        r"and exited: a program that binds the port itself is refused it")
    assert "Address already in use" in proc.err.text() or not hinted
