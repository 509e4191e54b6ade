"""Test helpers: run the installed `reentr` as a real process and wait on evidence.

`wait_for` is the only place a test sleeps, and only as a poll interval under a deadline.
"""

from __future__ import annotations

import array
import fcntl
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import termios
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
DEADLINE = 15.0
"""Generous: the machine is shared and has 2 cores."""
_bin = shutil.which("reentr", path=os.path.dirname(sys.executable))
REENTR = [_bin] if _bin else [sys.executable, "-m", "reentr"]
APPS = Path(__file__).parent / "apps"


def wait_for(predicate: Callable[[], T | None], timeout: float = DEADLINE, what: str = "") -> T:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(0.01)


def stays_false(predicate: Callable[[], object], seconds: float, what: str = "") -> None:
    """Fail as soon as `predicate` becomes true within `seconds`: evidence that nothing
    happened is a whole quiet period watched, not a sleep."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            raise AssertionError(f"within {seconds}s: {what or predicate}")
        time.sleep(0.01)


class Stream:
    """The lines a pipe delivers, gathered by a thread, with a cursor for `expect`."""

    def __init__(self, fd: int):
        self.lines: list[str] = []
        self.raw = b""
        self.eof = threading.Event()
        self._cond = threading.Condition()
        self._cursor = 0
        threading.Thread(target=self._read, args=(fd,), daemon=True).start()

    def _read(self, fd: int) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            with self._cond:
                self.raw += chunk
                buffer += chunk
                *done, buffer = buffer.split(b"\n")
                self.lines.extend(line.decode(errors="replace") for line in done)
                if not chunk:
                    if buffer:
                        self.lines.append(buffer.decode(errors="replace"))
                    self.eof.set()
                self._cond.notify_all()
            if not chunk:
                os.close(fd)
                return

    def expect(self, pattern: str, timeout: float = DEADLINE) -> re.Match[str]:
        """Wait for the next line (after the last one matched) that matches `pattern`."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i in range(self._cursor, len(self.lines)):
                    match = regex.search(self.lines[i])
                    if match:
                        self._cursor = i + 1
                        return match
                left = deadline - time.monotonic()
                if left <= 0 or (self.eof.is_set() and self._cursor >= len(self.lines)
                                 and not any(regex.search(x) for x in self.lines[self._cursor:])):
                    raise AssertionError(
                        f"no line matching {pattern!r}; got:\n" + "\n".join(self.lines)
                    )
                self._cond.wait(min(left, 0.5))

    def count(self, pattern: str) -> int:
        with self._cond:
            return sum(1 for line in self.lines if re.search(pattern, line))

    def text(self) -> str:
        with self._cond:
            return "\n".join(self.lines)


class Reentr:
    """`reentr ARGS < files` as a real process in its own session, cleaned up by the fixture."""

    def __init__(
        self,
        args: Sequence[str],
        files: Sequence[str | Path] | str = (),
        *,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        tty: bool = False,
        wrap: Sequence[str] = (),
        exits: bool = False,
    ):
        stdin_text = files if isinstance(files, str) else "".join(f"{f}\n" for f in files)
        self.events: Path | None = None
        self._exits_seen = 0
        if exits:  # outside the project, whose directory reentr watches
            self.events = Path(tempfile.mkdtemp(prefix="reentr-test-")) / "events.jsonl"
            at = 1 if args[:1] == ["watch"] else 0
            args = [*args[:at], "--events", str(self.events), *args[at:]]
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        self.master: int | None = None
        preexec = None
        if tty:
            self.master, slave = os.openpty()

            def preexec() -> None:
                # Make the pty reentr's controlling terminal, as a shell does for a job.
                fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen(
            [*wrap, *REENTR, *args], stdin=subprocess.PIPE, stdout=out_w, stderr=err_w, cwd=cwd,
            env=full_env, start_new_session=True, preexec_fn=preexec,  # noqa: PLW1509
            pass_fds=(slave,) if tty else (),
        )
        if tty:
            os.close(slave)
        os.close(out_w)
        os.close(err_w)
        self.out = Stream(out_r)
        self.err = Stream(err_r)
        assert self.proc.stdin is not None
        self.proc.stdin.write(os.fsencode(stdin_text))
        self.proc.stdin.close()

    def run_ended(self) -> None:
        """Wait until the utility has exited once more (an `exited` event; needs `exits=True`).

        reentr drops a change made while the utility runs, as entr does, and a utility prints
        before it exits: a test that edits after a run's output waits for this first."""
        assert self.events is not None, "start reentr with exits=True"
        events = self.events
        self._exits_seen += 1
        wanted = self._exits_seen

        def exits() -> bool:
            count: int = sum(r["event"] == "exited" for r in event_records(events))
            return count >= wanted

        wait_for(exits, what=f"exit #{wanted} of the utility")

    def press(self, key: str) -> None:
        assert self.master is not None
        os.write(self.master, key.encode())

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = DEADLINE) -> int:
        """The exit status, once reentr has exited and its stdout (which every child
        inherited) is at EOF: so no process of the tree is left."""
        status = self.proc.wait(timeout)
        assert self.out.eof.wait(timeout), "a child still holds reentr's stdout open"
        return status

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(DEADLINE)
        if self.master is not None:
            os.close(self.master)
            self.master = None
        if self.events is not None:
            shutil.rmtree(self.events.parent, ignore_errors=True)


def fifo_holders_gone(path: Path, timeout: float = DEADLINE) -> bool:
    """Whether every process that held the FIFO's write end (a grandchild that inherited it
    included) is gone, within `timeout`: a non-blocking read then says EOF.

    A new reader is not told POLLHUP about writers that left before it opened, so this reads
    rather than polls."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)

    def at_eof() -> bool:
        try:
            return os.read(fd, 4096) == b""
        except BlockingIOError:
            return False

    try:
        wait_for(at_eof, timeout, what=f"EOF on {path.name}")
        return True
    finally:
        os.close(fd)


def process_state(pid: int) -> str:
    """The process's state letter in /proc (`S` sleeping, `T` stopped, `Z` zombie), or ""
    once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0].decode()
    except OSError:
        return ""


def inotify_watches(pid: int) -> int:
    """How many inotify watches the process holds, from /proc/PID/fdinfo."""
    total = 0
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            text = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
        except OSError:
            continue
        total += text.count("inotify wd:")
    return total


def event_records(path: Path | None) -> list[dict[str, Any]]:
    """The objects of a `--events` file so far: whole lines only, since reentr may be writing
    the next one as the file is read."""
    if path is None or not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().split("\n")[:-1] if line]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """`count` distinct free TCP ports on 127.0.0.1: every probe stays bound until all are
    chosen, or the kernel may hand out one port twice."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def http_get(port: int, timeout: float = 2.0) -> str | None:
    """The body served on 127.0.0.1:port, or None if nothing answered."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=timeout) as response:
            return str(response.read().decode())
    except OSError:
        return None


def edit(path: Path, text: str) -> None:
    """Write a file in place, as most editors do."""
    path.write_text(text)


def atomic_edit(path: Path, text: str) -> None:
    """Write a temporary file and rename it over `path`, as vim and JetBrains do."""
    temp = path.with_name(path.name + ".tmp~")
    temp.write_text(text)
    os.replace(temp, path)


class Hammer:
    """A client that sends `GET /` to 127.0.0.1:PORT in a thread, each request on a new
    connection as soon as the last one ended, and records every answer and every failure."""

    def __init__(self, port: int, interval: float = 0.0):
        self.port = port
        self.interval = interval
        """The pause after each request (0: the next request at once)."""
        self.answers: list[str] = []
        self.failures: list[str] = []
        """How each failed request failed: refused, reset, or the error's name."""
        self.longest_s = 0.0
        """The longest any one request took."""
        self.first: dict[str, float] = {}
        """When each version (an answer's first word) was first answered, in monotonic s."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=DEADLINE)
            try:
                connection.request("GET", "/")
                answer = connection.getresponse().read().decode()
                self.first.setdefault(answer.split(" ", 1)[0], time.monotonic())
                self.answers.append(answer)
            except ConnectionRefusedError:
                self.failures.append("refused")
            except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
                self.failures.append("reset")
            except (OSError, http.client.HTTPException) as error:
                self.failures.append(type(error).__name__)
            finally:
                connection.close()
            self.longest_s = max(self.longest_s, time.monotonic() - began)
            if self.interval:
                self._stop.wait(self.interval)

    def served(self, version: str) -> str | None:
        """The PID that served `version` last, if it has been served yet."""
        for answer in reversed(self.answers):
            if answer.split()[0] == version:
                return answer.split()[1]
        return None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(DEADLINE)


def notify(path: str, text: str, fds: Sequence[int] = ()) -> None:
    """Send one sd_notify message (`text`, with `fds` attached) to the socket at `path`, as a
    program outside the target would."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(path)
        rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        sock.sendmsg([text.encode()], rights)
