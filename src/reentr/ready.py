"""Readiness probes: decide when a started target is ready (a port accepting, a line printed,
an HTTP URL answering, `READY=1` on the notify socket) and tell the runner with
`TargetReady`, or `ReadyTimedOut`; under `--handoff`, then, when the new target takes the
socket's connections (`TargetServes`)."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import socket
import struct
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable

from reentr import process
from reentr.config import Probe, ProbeKind, parse_address
from reentr.events import Queue, ReadyTimedOut, TargetReady, TargetServes
from reentr.signals import start_thread

INTERVAL_S = 0.002
"""Between two attempts of a port or URL probe. A refused connect on the loopback costs a few
microseconds, so polling this often keeps the `ready` stamp within 2 ms of the truth for well
under 1 % of a core, and only while a target is starting."""
OTHERS_S = 0.0005
"""After an answer from another process (the old target, under `--handoff`): both serve one
socket and the kernel gives each connection to either, so the next attempt comes sooner."""
ATTEMPT_TIMEOUT_S = 1.0
_PID_MAX = 4_194_304
SERVES_TIMEOUT_S = 2.0
"""`--handoff`: how long after readiness the new target is watched for the first connection it
takes; past it, the restart is reported as of readiness."""
_ACCEPT_WAIT_S = 0.05
"""How long one connection may wait in the socket's queue before it is given up (a busy
server): the next attempt is another connection."""


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


class Taker:
    """`--handoff`: who takes the connections made to the held socket (Linux only).

    One attempt connects, sends nothing, and looks up the server's side of the connection by
    its addresses (a sock_diag query: the kernel answers for that one socket, however many
    others the machine has): its inode is 0 while it waits in the listening socket's queue,
    then that of the descriptor the accepting process holds, which is looked for among the
    processes of the new target's group. The server then reads end of file, as from a client
    that gave up.
    """

    def __init__(self, address: tuple[str, int], pgid: int):
        self._address = address
        self._pgid = pgid
        self._members = [pgid]

    def new_one_took(self) -> int | None:
        """When a process of the group took one new connection (monotonic ns); None if
        another did, or none did in time.

        Raises:
            OSError: the kernel answers no sock_diag query.
        """
        taken = self.taken()
        if taken is None:
            return None
        client, at_ns = taken
        client.close()
        return at_ns

    def taken(self) -> tuple[socket.socket, int] | None:
        """A new connection that a process of the group took, still open (the caller closes
        it), and when it was taken (monotonic ns); None if the connect failed, another
        process took it, or none did in time.

        Raises:
            OSError: the kernel answers no sock_diag query.
        """
        try:
            client = socket.create_connection(self._address, timeout=ATTEMPT_TIMEOUT_S)
        except OSError:
            return None
        kept = False
        try:
            server, peer = client.getpeername()[:2], client.getsockname()[:2]
            give_up = time.monotonic() + _ACCEPT_WAIT_S
            while not (inode := _inode(client.family, server, peer)):
                if time.monotonic() >= give_up:
                    return None
                time.sleep(0.0002)
            at_ns = time.monotonic_ns()
            link = f"socket:[{inode}]"
            if not self._holds(link):
                # A worker started since the group was last looked at? (A few reads of
                # /proc's `children` files: cheap enough for every connection.)
                self._members = process.members(self._pgid) or [self._pgid]
            kept = self._holds(link)
            return (client, at_ns) if kept else None
        finally:
            if not kept:
                client.close()

    def _holds(self, link: str) -> bool:
        for member in self._members:
            with contextlib.suppress(OSError), os.scandir(f"/proc/{member}/fd") as fds:
                if any(os.readlink(fd.path) == link for fd in fds):
                    return True
        return False


_DIAG = struct.Struct("=IHHII BBBxI HH16s16sI8s")
"""A netlink message (nlmsghdr) holding an inet_diag_req_v2 (linux/inet_diag.h)."""
_NETLINK_SOCK_DIAG, _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, _NLMSG_ERROR = 4, 20, 1, 2
_INODE_AT = 16 + 4 + 48 + 16
"""Where inet_diag_msg's idiag_inode lies in the answer, after the nlmsghdr."""


def _inode(family: int, local: tuple[str, int], remote: tuple[str, int]) -> int:
    """The inode of the TCP socket from `local` to `remote`: 0 while it waits to be accepted,
    or while there is no such socket yet.

    Raises:
        OSError: the kernel answers no sock_diag query.
    """
    request = _DIAG.pack(
        _DIAG.size, _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, 1, 0,
        family, socket.IPPROTO_TCP, 0, 0xFFFFFFFF,  # every TCP state
        socket.htons(local[1]), socket.htons(remote[1]),
        socket.inet_pton(family, local[0]).ljust(16, b"\0"),
        socket.inet_pton(family, remote[0]).ljust(16, b"\0"),
        0, b"\xff" * 8)  # any interface, no cookie
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as link:
        link.send(request)
        answer = link.recv(4096)
    kind = struct.unpack_from("=H", answer, 4)[0] if len(answer) >= 16 else 0
    if kind == _NLMSG_ERROR and len(answer) >= 20:
        error = -struct.unpack_from("=i", answer, 16)[0]
        if error == errno.ENOENT:
            return 0  # no such socket (yet)
        raise OSError(error, os.strerror(error))
    if kind != _SOCK_DIAG_BY_FAMILY or len(answer) < _INODE_AT + 4:
        raise OSError(errno.EPROTO, "unexpected sock_diag answer")
    inode: int = struct.unpack_from("=I", answer, _INODE_AT)[0]
    return inode


_UCRED = struct.Struct("3i")
"""struct ucred (pid, uid, gid): who sent a datagram, as the kernel attests (unix(7))."""


class Notifier:
    """The socket of systemd's notify protocol (sd_notify(3)), for `--ready-notify`.

    Every start of the target gets its path in `NOTIFY_SOCKET`. A datagram holding the line
    `READY=1` from a process of an expected target's process group (the target itself, or a
    worker it started) makes that target ready. The kernel attests the sender's PID
    (SO_PASSCRED), so the old target of a handoff cannot be taken for the new one.
    """

    def __init__(self) -> None:
        self._dir = tempfile.mkdtemp(prefix="reentr-")
        self.path = os.path.join(self._dir, "notify")
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(self.path)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._expected: dict[int, Callable[[int], None]] = {}
        self._early: list[tuple[int, int]] = []
        """(process group, when) of `READY=1` that came before its target was expected."""
        start_thread(self._run, name="reentr-notify")

    def expect(self, pid: int, ready: Callable[[int], None]) -> None:
        """Call `ready(at_ns)` once a process of the group `pid` sends `READY=1`."""
        with self._lock:
            early = [at for group, at in self._early if group == pid]
            if not early:
                self._expected[pid] = ready
        if early:
            ready(early[0])

    def forget(self, pid: int) -> None:
        with self._lock:
            self._expected.pop(pid, None)

    def _run(self) -> None:
        space = socket.CMSG_SPACE(_UCRED.size)
        while True:
            try:
                data, ancillary, _, _ = self._socket.recvmsg(4096, space)
            except OSError:
                return  # closed
            if not data:
                if self._closed.is_set():
                    return  # `close` shut the socket down, which wakes this read
                continue
            at_ns = time.monotonic_ns()
            sender = next((_UCRED.unpack_from(body)[0] for level, kind, body in ancillary
                           if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS),
                          None)
            if sender is None or b"READY=1" not in data.split(b"\n"):
                continue
            try:
                group = os.getpgid(sender)
            except OSError:
                continue
            with self._lock:
                ready = self._expected.pop(group, None)
                if ready is None:
                    self._early = [*self._early[-15:], (group, at_ns)]
            if ready is not None:
                ready(at_ns)

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()
        shutil.rmtree(self._dir, ignore_errors=True)

