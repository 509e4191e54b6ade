"""What the benchmark scripts share: how to run the installed reentr, and idle CPU."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

# The tests' helpers (free_port, free_ports) are the benchmarks' too: `from helpers import`.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def reentr_command() -> list[str]:
    """The `reentr` beside this Python, or `python -m reentr`."""
    found = shutil.which("reentr", path=os.path.dirname(sys.executable))
    return [found] if found else [sys.executable, "-m", "reentr"]


def compile_reentr() -> None:
    """Compile reentr's modules to bytecode beside them, as `pip install` does. An editable
    install run under PYTHONDONTWRITEBYTECODE would otherwise have Python compile every module
    of reentr's at each start (50 ms here), which no installed reentr does. (Python still
    reads bytecode under PYTHONDONTWRITEBYTECODE; it only never writes it.)"""
    import reentr

    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.dirname(reentr.__file__)],
                   env=env, check=True, stdout=subprocess.DEVNULL)


REFERENCE = r"""
# The reference: inotify on the file's directory; on a write of the file, build (if a build
# command is given; a failed build changes nothing), then run, or stop and start, the program.
import ctypes, os, signal, struct, subprocess, sys
restart, path, build, argv = sys.argv[1] == "restart", sys.argv[2], sys.argv[3], sys.argv[4:]
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(0)
IN_CLOSE_WRITE, IN_MOVED_TO = 0x8, 0x80
libc.inotify_add_watch(fd, os.path.dirname(path).encode(), IN_CLOSE_WRITE | IN_MOVED_TO)
name = os.path.basename(path).encode()
if build:
    subprocess.run(build, shell=True, check=True)
child = subprocess.Popen(argv, start_new_session=True) if restart else None
signal.signal(signal.SIGTERM, signal.default_int_handler)
try:
    while True:
        data, names = os.read(fd, 65536), []
        while data:
            _, _, _, size = struct.unpack_from("iIII", data)
            names.append(data[16:16 + size].rstrip(b"\0"))
            data = data[16 + size:]
        if name not in names or (build and subprocess.run(build, shell=True).returncode):
            continue
        if child is None:
            subprocess.run(argv)
            continue
        os.killpg(child.pid, signal.SIGTERM)
        child.wait()
        child = subprocess.Popen(argv, start_new_session=True)
except KeyboardInterrupt:
    if child is not None:  # in a session of its own: stopping ours does not reach it
        os.killpg(child.pid, signal.SIGKILL)
"""
"""A minimal watcher to measure reentr against, run as
`python -c REFERENCE once|restart FILE BUILD PROGRAM [ARG ...]` (BUILD may be empty)."""


def http_body(port: int) -> str | None:
    """The body 127.0.0.1:PORT answers `GET /` with, or None. A bare HTTP/1.0 request on a
    socket: an observer polls every millisecond or less, and urllib would cost it ten times
    the CPU, which it would take from the very restart it measures."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
            answer = b""
            while chunk := conn.recv(4096):
                answer += chunk
    except OSError:  # refused, reset, or cut off by a restart
        return None
    head, _, body = answer.partition(b"\r\n\r\n")
    return body.decode() if head.split(b" ", 2)[1:2] == [b"200"] and body else None


class Observer:
    """Polls one server every millisecond in a thread: answers as (monotonic ns, body), and
    how many requests failed."""

    def __init__(self, port: int):
        self.port = port
        self.first: dict[str, int] = {}
        """When each version was first answered (monotonic ns)."""
        self.pids: dict[str, set[str]] = {}
        """The processes that answered each version (the answer's second word)."""
        self.failed = 0
        self.active = threading.Event()
        """Polls only while set: the observer of the loop not being measured keeps still, so
        that its requests take no CPU from the restart being measured."""
        self.active.set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.001):
            self.active.wait()
            body = http_body(self.port)
            if body is None:
                self.failed += 1
            else:
                version, _, pid = body.partition(" ")
                self.first.setdefault(version, time.monotonic_ns())
                self.pids.setdefault(version, set()).add(pid.strip())

    def served(self, version: str, since_ns: int) -> int | None:
        """When `version` was first answered, if after `since_ns` (each edit is a new
        version; a dictionary, so that looking costs the polling thread nothing)."""
        at = self.first.get(version)
        return at if at is not None and at >= since_ns else None

    def close(self) -> None:
        self._stop.set()
        self.active.set()
        self._thread.join(5)


def wait(predicate: object, timeout: float, what: str) -> int:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise SystemExit(f"{Path(sys.argv[0]).stem}: timed out waiting for {what}")
        time.sleep(0.001)
    return int(value)


def idle_cpu(pid: int, seconds: float) -> float:
    """The process's CPU use over `seconds` of nothing happening, in % of one core, from the
    nanosecond run times of all its threads (/proc/PID/task/*/schedstat)."""

    def run_ns() -> int:
        total = 0
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                total += int((task / "schedstat").read_text().split()[0])
        return total

    start, t0 = run_ns(), time.monotonic_ns()
    time.sleep(seconds)
    return 100 * (run_ns() - start) / (time.monotonic_ns() - t0)


def stop(proc: subprocess.Popen[Any], signum: int, grace: float) -> None:
    """Send `signum` to the process group the benchmark started, and SIGKILL after `grace`
    seconds if it is still there."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signum)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
