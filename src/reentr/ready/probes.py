"""Readiness probes: decide when a started target is ready (a port accepting, a line printed,
an HTTP URL answering, `READY=1` on the notify socket) and tell the runner with
`TargetReady`, or `ReadyTimedOut`; under `--handoff`, then, when the new target takes the
socket's connections (`TargetServes`)."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable

from reentr import process
from reentr.config import Probe, ProbeKind, parse_address
from reentr.events import Queue, ReadyTimedOut, TargetReady, TargetServes
from reentr.ready.notify import Notifier
from reentr.ready.sockdiag import ATTEMPT_TIMEOUT_S, Taker
from reentr.signals import start_thread

INTERVAL_S = 0.002
"""Between two attempts of a port or URL probe. A refused connect on the loopback costs a few
microseconds, so polling this often keeps the `ready` stamp within 2 ms of the truth for well
under 1 % of a core, and only while a target is starting."""
OTHERS_S = 0.0005
"""After an answer from another process (the old target, under `--handoff`): both serve one
socket and the kernel gives each connection to either, so the next attempt comes sooner."""
_PID_MAX = 4_194_304
SERVES_TIMEOUT_S = 2.0
"""`--handoff`: how long after readiness the new target is watched for the first connection it
takes; past it, the restart is reported as of readiness."""


class Waiter:
    """Waits for one started target to become ready; reports once, or not at all when
    cancelled (the target exited first, or reentr is stopping it).

    It exists before the target does, because the line probe must see the first line the
    target prints; `started` then names the target and starts the clock.
    """

    def __init__(
        self, probe: Probe, events: Queue, *, handoff: bool = False,
        address: tuple[str, int] | None = None, notifier: Notifier | None = None,
    ):
        self.probe = probe
        self.pid: int | None = None
        self._events = events
        self._handoff = handoff
        """Only an HTTP answer that names the new PID is the new target's; once it is ready,
        `TargetServes` follows."""
        self._address = address
        """`--handoff`: the held TCP socket, where the first connection the new target takes
        is looked for (None: a Unix socket, which cannot be told)."""
        self._notifier = notifier
        self._done = threading.Event()
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._matched_ns: int | None = None
        self._regex = re.compile(probe.text.encode()) if probe.kind is ProbeKind.LINE else None

    def started(self, pid: int) -> None:
        with self._lock:
            self.pid = pid
            matched = self._matched_ns
        if matched is not None:
            self._report(TargetReady(pid, matched))
            return
        start_thread(self._run, pid, name=f"reentr-ready-{pid}")
        if self._notifier is not None:
            self._notifier.expect(pid, self.signalled)

    def line(self, line: bytes) -> None:
        """A line the target printed (the line probe reads every line of stdout and stderr)."""
        if self._regex is not None and self._matched_ns is None and self._regex.search(line):
            self.signalled(time.monotonic_ns())

    def signalled(self, at_ns: int) -> None:
        """The target said it is ready (a matching line, or `READY=1`) at `at_ns`."""
        with self._lock:
            if self._matched_ns is not None:
                return
            self._matched_ns = at_ns
            pid = self.pid
        if pid is not None:
            self._report(TargetReady(pid, at_ns))

    def cancel(self) -> None:
        self._done.set()
        self._cancelled.set()
        if self._notifier is not None and self.pid is not None:
            self._notifier.forget(self.pid)

    def _report(self, event: TargetReady | ReadyTimedOut) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self._done.set()
        self._events.put(event)
        if isinstance(event, TargetReady) and self._handoff:
            if self._address is None or not hasattr(socket, "AF_NETLINK"):
                self._events.put(TargetServes(event.pid, None))
            else:
                start_thread(self._serves, event.pid, self._address,
                             name=f"reentr-serves-{event.pid}")

    def _serves(self, pid: int, address: tuple[str, int]) -> None:
        """Connect to the socket until a process of the new target's group takes a
        connection: from then on clients meet the new version (while the old target has not
        stopped taking them, it gets most: it waits in accept, warm)."""
        deadline = time.monotonic() + SERVES_TIMEOUT_S
        taker = Taker(address, pid)
        taken: int | None = None
        with contextlib.suppress(OSError):  # no sock_diag here (a container may forbid it)
            while not self._cancelled.is_set() and time.monotonic() < deadline:
                if (taken := taker.new_one_took()) is not None:
                    break
                self._cancelled.wait(OTHERS_S)
        if not self._cancelled.is_set():
            self._events.put(TargetServes(pid, taken))

    def _run(self, pid: int) -> None:
        deadline = time.monotonic() + self.probe.timeout
        attempt = _attempt(self.probe, pid if self._handoff else None, self._address)
        while not self._done.is_set():
            outcome = attempt() if attempt is not None else False
            if outcome is True:
                self._report(TargetReady(pid, time.monotonic_ns()))
                return
            left = deadline - time.monotonic()
            if left <= 0:
                self._report(ReadyTimedOut(pid))
                return
            # The line and notify probes have nothing to poll: they only wait for the deadline.
            pause = left if attempt is None else OTHERS_S if outcome is None else INTERVAL_S
            self._done.wait(min(pause, left))


def _attempt(
    probe: Probe, pid: int | None, held: tuple[str, int] | None = None
) -> Callable[[], bool | None] | None:
    """One attempt of a polled probe: True when ready, None when another process answered.
    `held` is the held socket's address under `--handoff`."""
    if probe.kind is ProbeKind.PORT:
        return _port_attempt(parse_address(probe.text, "--ready-port"))
    if probe.kind is ProbeKind.URL:
        url = urllib.parse.urlsplit(probe.text)
        if pid is not None and url.scheme == "http" and hasattr(socket, "AF_NETLINK") \
                and held is not None and _reaches(url, held):
            return _HandoffAttempt(url, pid, held)
        return lambda: _answers(url, pid)
    return None


def _reaches(url: urllib.parse.SplitResult, held: tuple[str, int]) -> bool:
    """Whether the URL is served on the held socket, which the old and the new target share
    (a URL elsewhere, a proxy's say, is probed as without `--handoff`: by the PID it names)."""
    try:
        found = socket.getaddrinfo(url.hostname or "", url.port or 80, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return (url.port or 80) == held[1] and any(sockaddr[0] == held[0]
                                               for *_, sockaddr in found)


class _HandoffAttempt:
    """`--handoff`'s URL probe: while the old target serves, the kernel gives each connection
    to the old or the new target. The request goes only on a connection a process of the new
    target's group took (told as `Taker` tells it); one the old target took is closed unsent.
    So the old target answers (and logs) none of the probe's requests, and it is neither a
    coin flip nor the old target's warm start that decides how soon the new one is found.
    Where the kernel answers no sock_diag query, every connection gets the request, and an
    answer naming another process means the old target's."""

    def __init__(self, url: urllib.parse.SplitResult, pid: int, held: tuple[str, int]):
        self._url = url
        self._pid = pid
        # The held socket's own address, which the URL reaches (`_reaches`): resolved once,
        # not at every attempt.
        self._taker: Taker | None = Taker(held, pid)

    def __call__(self) -> bool | None:
        if self._taker is not None:
            try:
                taken = self._taker.taken()
            except OSError:  # no sock_diag here (a container may forbid it)
                self._taker = None
            else:
                if taken is None:
                    return None
                return _answers(self._url, self._pid, taken[0])
        return _answers(self._url, self._pid)


def _port_attempt(address: tuple[str, int]) -> Callable[[], bool]:
    """One connect per attempt to each of the address's resolutions, resolved once: an attempt
    is made every 2 ms while the target starts, and resolving each time (even a numeric host
    goes through getaddrinfo) would double its cost, taken from the starting target."""
    try:
        found = socket.getaddrinfo(*address, type=socket.SOCK_STREAM)
    except OSError:  # not resolvable yet: resolve on every attempt
        return lambda: _connects(address)
    targets = [(family, sockaddr) for family, _, _, _, sockaddr in found]

    def attempt() -> bool:
        for family, sockaddr in targets:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.settimeout(ATTEMPT_TIMEOUT_S)
                if probe.connect_ex(sockaddr) == 0:
                    return True
        return False

    return attempt


def _connects(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=ATTEMPT_TIMEOUT_S):
            return True
    except OSError:
        return False


def _answers(
    url: urllib.parse.SplitResult, pid: int | None, connected: socket.socket | None = None
) -> bool | None:
    """Whether a GET of `url` gets an HTTP answer below 500 (a server that answers 404 for a
    path it has no route for serves requests; a 5xx says it cannot yet; a redirect is an
    answer, not followed) and, when `pid` is given, whether the answer names that process or
    another of its group (a worker of a new gunicorn master) as a whole word in the body or
    in a header's value; None when it names neither (the old target answered). The request
    goes on `connected` when given (an http connection already made)."""
    import http.client  # only for this probe: it costs startup time

    kind = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    connection = kind(url.hostname or "", url.port, timeout=ATTEMPT_TIMEOUT_S)
    if connected is not None:
        connected.settimeout(ATTEMPT_TIMEOUT_S)
        connection.sock = connected  # http.client connects only when it has no socket
    path = url.path or "/"
    if url.query:
        path += "?" + url.query
    try:
        connection.request("GET", path, headers={"User-Agent": "reentr-ready"})
        response = connection.getresponse()
        status = response.status
        said = response.read(65536) if pid is not None else b""
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
    if pid is not None:
        headers = " ".join(response.headers.values()).encode(errors="replace")
        # Only what can be a PID (Linux's PID_MAX_LIMIT): a body full of other numbers costs
        # no system call each.
        numbers = {number for word in re.split(rb"\W+", said + b" " + headers)
                   if word.isdigit() and len(word) <= 7 and 0 < (number := int(word)) <= _PID_MAX}
        if not any(process.in_group(number, pid) for number in numbers):
            return None
    return status < 500
