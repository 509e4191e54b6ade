"""Readiness probes: decide when a started target is ready (a port accepting, a line printed,
an HTTP URL answering) and tell the runner with `TargetReady`, or `ReadyTimedOut`."""

from __future__ import annotations

import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable

from reentr.config import Probe, ProbeKind, parse_address
from reentr.events import Queue, ReadyTimedOut, TargetReady
from reentr.signals import start_thread

INTERVAL_S = 0.002
"""Between two attempts of a port or URL probe. A refused connect on the loopback costs a few
microseconds, so polling this often keeps the `ready` stamp within 2 ms of the truth for well
under 1 % of a core, and only while a target is starting."""
ATTEMPT_TIMEOUT_S = 1.0


class Waiter:
    """Waits for one started target to become ready; reports once, or not at all when
    cancelled (the target exited first, or reentr is stopping it).

    It exists before the target does, because the line probe must see the first line the
    target prints; `started` then names the target and starts the clock.
    """

    def __init__(self, probe: Probe, events: Queue):
        self.probe = probe
        self.pid: int | None = None
        self._events = events
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._matched_ns: int | None = None
        self._regex = re.compile(probe.text.encode()) if probe.kind is ProbeKind.LINE else None

    def started(self, pid: int) -> None:
        with self._lock:
            self.pid = pid
            matched = self._matched_ns
        if matched is not None:
            self._report(TargetReady(pid, matched))
        else:
            start_thread(self._run, pid, name=f"reentr-ready-{pid}")

    def line(self, line: bytes) -> None:
        """A line the target printed (the line probe reads every line of stdout and stderr)."""
        if self._regex is None or self._matched_ns is not None or not self._regex.search(line):
            return
        with self._lock:
            self._matched_ns = time.monotonic_ns()
            pid = self.pid
        if pid is not None:
            self._report(TargetReady(pid, self._matched_ns))

    def cancel(self) -> None:
        self._done.set()

    def _report(self, event: TargetReady | ReadyTimedOut) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self._done.set()
        self._events.put(event)

    def _run(self, pid: int) -> None:
        deadline = time.monotonic() + self.probe.timeout
        attempt = _attempt(self.probe)
        while not self._done.is_set():
            if attempt is not None and attempt():
                self._report(TargetReady(pid, time.monotonic_ns()))
                return
            left = deadline - time.monotonic()
            if left <= 0:
                self._report(ReadyTimedOut(pid))
                return
            # The line probe has nothing to poll: it only waits for the deadline.
            self._done.wait(left if attempt is None else min(INTERVAL_S, left))


def _attempt(probe: Probe) -> Callable[[], bool] | None:
    if probe.kind is ProbeKind.PORT:
        address = parse_address(probe.text, "--ready-port")
        return lambda: _connects(address)
    if probe.kind is ProbeKind.URL:
        url = urllib.parse.urlsplit(probe.text)
        return lambda: _answers(url)
    return None


def _connects(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=ATTEMPT_TIMEOUT_S):
            return True
    except OSError:
        return False


def _answers(url: urllib.parse.SplitResult) -> bool:
    """Whether a GET of `url` answers 2xx or 3xx (a redirect is an answer: not followed)."""
    import http.client  # only for this probe: it costs startup time

    kind = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    connection = kind(url.hostname or "", url.port, timeout=ATTEMPT_TIMEOUT_S)
    path = url.path or "/"
    if url.query:
        path += "?" + url.query
    try:
        connection.request("GET", path, headers={"User-Agent": "reentr-ready"})
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
    return 200 <= status < 400

