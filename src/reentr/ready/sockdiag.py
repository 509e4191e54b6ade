"""Who took a connection made to a listening socket: the kernel's sock_diag netlink interface
(Linux only), asked about one connection at a time, for `--handoff`."""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import struct
import time

from reentr import process

ATTEMPT_TIMEOUT_S = 1.0
_ACCEPT_WAIT_S = 0.05
"""How long one connection may wait in the socket's queue before it is given up (a busy
server): the next attempt is another connection."""


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
            inode = _taken(client, _ACCEPT_WAIT_S)
            if not inode:
                return None
            at_ns = time.monotonic_ns()
            link = f"socket:[{inode}]"
            if not _held_by(link, self._members):
                # A worker started since the group was last looked at? (A few reads of
                # /proc's `children` files: cheap enough for every connection.)
                self._members = process.members(self._pgid) or [self._pgid]
            kept = _held_by(link, self._members)
            return (client, at_ns) if kept else None
        finally:
            if not kept:
                client.close()


def holder(connection: socket.socket, groups: list[int], wait_s: float) -> int | None:
    """Which of the process `groups` (the newest last) took a TCP `connection` to 127.0.0.1,
    waiting up to `wait_s` for it to be taken (it may wait in the queue of a socket held
    across a restart); None if none of them holds it. Asked before the request is sent: a
    server that answers closes its side, and then nothing tells who took it. `reentr bench`
    asks it of every request: the first answer from the new target's group is when the new
    target serves, whatever the app answers.

    Raises:
        OSError: the kernel answers no sock_diag query.
    """
    inode = _taken(connection, wait_s)
    if not inode:
        return None
    link = f"socket:[{inode}]"
    return next((pgid for pgid in reversed(groups)
                 if _held_by(link, process.members(pgid))), None)


def _taken(connection: socket.socket, wait_s: float) -> int:
    """The inode of the server's side of `connection` once a process has taken it, waiting up
    to `wait_s`; 0 if none has by then, or if the connection was reset meanwhile (a server
    that stopped with it still in its queue: nothing will ever take it)."""
    server, peer = connection.getpeername()[:2], connection.getsockname()[:2]
    give_up = time.monotonic() + wait_s
    hung_up = select.poll()
    hung_up.register(connection, select.POLLERR | select.POLLHUP)
    while not (inode := _inode(connection.family, server, peer)):
        if time.monotonic() >= give_up or hung_up.poll(0):
            return 0
        time.sleep(0.0002)
    return inode


def _held_by(link: str, pids: list[int]) -> bool:
    """Whether one of `pids` holds the descriptor `link` (`socket:[INODE]`)."""
    for pid in pids:
        with contextlib.suppress(OSError), os.scandir(f"/proc/{pid}/fd") as fds:
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
