"""The socket of systemd's notify protocol (sd_notify(3)): `READY=1` for `--ready-notify`, and
the file-descriptor store's messages (`FDSTORE=1`, `FDSTOREREMOVE=1`) for `--fd-store`."""

from __future__ import annotations

import array
import contextlib
import dataclasses
import os
import select
import shutil
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial

from reentr import process
from reentr.records import record
from reentr.signals import start_thread
from reentr.sockets import Store

_UCRED = struct.Struct("3i")
"""struct ucred (pid, uid, gid): who sent a datagram, as the kernel attests (unix(7))."""
MAX_FDS = 253
"""SCM_MAX_FD: the most descriptors one message carries (unix(7)); send more in several."""
_SIZE = 4096
_ANCILLARY = socket.CMSG_SPACE(_UCRED.size) + socket.CMSG_SPACE(MAX_FDS * 4)
EARLY_S = 2.0
"""How long a message from a process group that reentr started, but has not yet taken for a
target of this socket, is kept: a program can send `READY=1` or store a descriptor before
reentr has noted its PID. Past it, the message is refused."""
DEFAULT_NAME = "stored"
"""sd_notify(3): the name of stored descriptors sent without `FDNAME=`."""


@record
class Message:
    """The fields of one notify message that reentr acts on (`STATUS=` and others are read
    and left alone, as a service manager that shows no status would)."""

    ready: bool = False
    store: bool = False
    remove: bool = False
    name: str = DEFAULT_NAME
    poll: bool = True


def parse(data: bytes) -> Message:
    """One datagram's text: newline-separated `KEY=VALUE` assignments.

    Raises:
        ValueError: a bad `FDNAME=`, or `FDSTOREREMOVE=1` without one; the text says which.
    """
    fields: dict[str, str] = {}
    for line in data.split(b"\n"):
        key, equals, value = line.partition(b"=")
        if equals:
            fields[key.decode(errors="replace")] = value.decode(errors="replace")
    name = fields.get("FDNAME")
    if name is not None and not valid_name(name):
        raise ValueError(f"FDNAME={name[:40]!r} is not a name (1 to 255 printable ASCII "
                         "characters, no ':')")
    remove = fields.get("FDSTOREREMOVE") == "1"
    if remove and name is None:
        raise ValueError("FDSTOREREMOVE=1 needs FDNAME= to say which descriptors")
    return Message(ready=fields.get("READY") == "1", store=fields.get("FDSTORE") == "1",
                   remove=remove, name=name or DEFAULT_NAME, poll=fields.get("FDPOLL") != "0")


def valid_name(name: str) -> bool:
    """sd_notify(3)'s rule for `FDNAME=`: printable ASCII, no ':', at most 255 characters."""
    return 0 < len(name) <= 255 and all(" " <= c <= "~" and c != ":" for c in name)


@dataclasses.dataclass
class _Early:
    group: int
    at_ns: int
    message: Message
    fds: list[int]
    until: float


class Notifier:
    """The notify socket of one target (one service): every start gets its path in
    `NOTIFY_SOCKET`.

    A message counts only from a process of a target's process group (the target itself, or
    a worker it started), as the kernel attests the sender's PID (SO_PASSCRED): so the old
    target of a handoff cannot be taken for the new one, and no other process of the machine
    can make a target ready or store anything. `READY=1` makes that target ready; with a
    `store` (`--fd-store`), `FDSTORE=1` keeps the descriptors sent with it, and
    `FDSTOREREMOVE=1` drops them. The runner reads every message a target sent before it
    starts the next one (`ended`): a target that stores its connections as it stops loses
    none to that race.
    """

    def __init__(self, store: Store | None = None,
                 say: Callable[[str], None] = lambda text: None) -> None:
        self.store = store
        self._say = say
        self._dir = tempfile.mkdtemp(prefix="reentr-")
        self.path = os.path.join(self._dir, "notify")
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(self.path)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self._socket.setblocking(False)
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._groups: set[int] = set()
        """The process groups of this socket's targets that run (or whose end is not yet
        read): each start's, from `admit` until `ended`."""
        self._expected: dict[int, Callable[[int], None]] = {}
        self._ready_at: dict[int, int] = {}
        """`READY=1` of a target's group that came before its waiter (`expect`)."""
        self._early: list[_Early] = []
        self._said_off = False
        self._wait = select.epoll()
        self._wait.register(self._socket.fileno(), select.EPOLLIN)
        if store is not None:
            self._wait.register(store.fileno(), select.EPOLLIN)
        start_thread(self._run, name="reentr-notify")

    def admit(self, pid: int) -> None:
        """A target was started as the process group `pid`: its messages count from now on,
        and those it sent before this are taken now."""
        with self._lock:
            self._groups.add(pid)
            early = [kept for kept in self._early if kept.group == pid]
            self._early = [kept for kept in self._early if kept.group != pid]
            calls = [call for kept in early
                     for call in self._apply(pid, kept.message, kept.fds, kept.at_ns)]
        for call in calls:
            call()

    def expect(self, pid: int, ready: Callable[[int], None]) -> None:
        """Call `ready(at_ns)` once a process of the group `pid` sends `READY=1`."""
        with self._lock:
            at = self._ready_at.pop(pid, None)
            if at is None:
                self._expected[pid] = ready
        if at is not None:
            ready(at)

    def forget(self, pid: int) -> None:
        with self._lock:
            self._expected.pop(pid, None)

    def drain(self) -> None:
        """Take every message sent so far (`ended`: what the old target stored as it stopped
        is in the store before the new one starts)."""
        with self._lock:
            calls = self._read()
        for call in calls:
            call()

    def ended(self, pid: int) -> None:
        """The group `pid` is gone: its last messages are taken, and what it held of the
        store is free for the next start."""
        self.drain()
        with self._lock:
            self._groups.discard(pid)
            self._expected.pop(pid, None)
            self._ready_at.pop(pid, None)
        if self.store is not None:
            self.store.returned(pid)

    def _run(self) -> None:
        try:
            self._serve()
        finally:
            self._wait.close()

    def _serve(self) -> None:
        while True:
            timeout = -1.0
            if self._early:
                timeout = max(0.0, min(kept.until for kept in self._early) - time.monotonic())
            try:
                found = self._wait.poll(timeout)
            except OSError:
                return  # closed
            if self._closed.is_set():
                return
            with self._lock:
                calls = self._read()
                self._expire()
            if self.store is not None and any(fd == self.store.fileno() for fd, _ in found):
                self.store.drop_hung_up()
            for call in calls:
                call()

    def _read(self) -> list[Callable[[], None]]:
        """Every datagram waiting, taken in order (with the lock held)."""
        calls: list[Callable[[], None]] = []
        while not self._closed.is_set():
            try:
                data, ancillary, flags, _ = self._socket.recvmsg(
                    _SIZE, _ANCILLARY, socket.MSG_CMSG_CLOEXEC)
            except OSError:  # nothing more (EAGAIN), or closed
                return calls
            at_ns = time.monotonic_ns()
            sender, fds = _unpack(ancillary)
            if flags & socket.MSG_CTRUNC:
                self._say(f"a message on the notify socket carried more than {MAX_FDS} "
                          "descriptors, and the rest were lost: send at most "
                          f"{MAX_FDS} in one message")
            calls += self._take(sender, data, fds, at_ns)
        return calls

    def _take(self, sender: int | None, data: bytes, fds: list[int],
              at_ns: int) -> list[Callable[[], None]]:
        try:
            message = parse(data)
        except ValueError as error:
            _close(fds)
            self._say(f"the notify socket refused a message of pid {sender}: {error}")
            return []
        group, ours = self._whose(sender)
        if group is not None and ours:
            return self._apply(group, message, fds, at_ns)
        if group is not None:  # a process reentr started, not yet noted as a target
            self._early.append(_Early(group, at_ns, message, fds, time.monotonic() + EARLY_S))
            return []
        _close(fds)
        self._say(f"the notify socket refused a message of pid {sender}, which is not in the "
                  "target's process group")
        return []

    def _whose(self, sender: int | None) -> tuple[int | None, bool]:
        """The process group of `sender` and whether it is a target's; or (group, False) for
        a group reentr started (its leader is reentr's child); (None, False) for any other."""
        if sender is None:
            return None, False
        try:
            group = os.getpgid(sender)
        except OSError:  # it sent, then exited: only a target's leader is known by its PID
            return (sender, True) if sender in self._groups else (None, False)
        if group in self._groups:
            return group, True
        return (group, False) if process.parent(group) == os.getpid() else (None, False)

    def _apply(self, group: int, message: Message, fds: list[int],
               at_ns: int) -> list[Callable[[], None]]:
        """What a target's message says (with the lock held)."""
        store = self.store
        if store is not None and message.remove:
            store.remove(message.name)
        if fds and (store is None or not message.store):
            _close(fds)
            if store is None and not self._said_off:
                self._said_off = True
                self._say("the target sent descriptors to keep (FDSTORE=1); the store is off, "
                          "so they were closed: give --fd-store (fd-store = true) to keep them")
            elif store is not None:
                self._say("the target sent descriptors without FDSTORE=1; they were closed")
        elif fds and store is not None:
            refused = store.add(fds, message.name, poll=message.poll, by=group)
            if refused:
                self._say(f"the fd store is full: it keeps at most {store.limit} descriptors "
                          f"(--fd-store's limit), so {refused} of '{message.name}' were refused "
                          "and closed; remove those no longer needed (FDSTOREREMOVE=1)")
        if not message.ready:
            return []
        ready = self._expected.pop(group, None)
        if ready is None:
            self._ready_at[group] = at_ns
            return []
        return [partial(ready, at_ns)]

    def _expire(self) -> None:
        now = time.monotonic()
        for kept in [kept for kept in self._early if kept.until <= now]:
            self._early.remove(kept)
            _close(kept.fds)
            self._say(f"the notify socket refused a message of process group {kept.group}, "
                      "which is not a target of this socket")

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        with self._lock:
            self._socket.close()
            for kept in self._early:
                _close(kept.fds)
            self._early.clear()
        shutil.rmtree(self._dir, ignore_errors=True)


def _unpack(ancillary: list[tuple[int, int, bytes]]) -> tuple[int | None, list[int]]:
    """The sender's PID (SCM_CREDENTIALS) and the descriptors (SCM_RIGHTS) of a message."""
    sender = None
    fds: list[int] = []
    for level, kind, body in ancillary:
        if level != socket.SOL_SOCKET:
            continue
        if kind == socket.SCM_CREDENTIALS:
            sender = _UCRED.unpack_from(body)[0]
        elif kind == socket.SCM_RIGHTS:
            numbers = array.array("i")
            numbers.frombytes(body[:len(body) - len(body) % numbers.itemsize])
            fds += numbers.tolist()
    return sender, fds


def _close(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
