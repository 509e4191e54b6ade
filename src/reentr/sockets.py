"""Listening sockets held across restarts: bound once by reentr and passed to every start of the
target by systemd's socket-activation contract; and `listen_sockets`, the target's side of it.

The contract (sd_listen_fds(3)): the sockets are file descriptors 3, 4, ...; `LISTEN_FDS` says
how many, `LISTEN_FDNAMES` names them (colon-separated), and `LISTEN_PID` is the PID of the
process they are meant for, so that a child of the target does not take them for its own.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import stat
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from reentr.errors import ReentrError

if TYPE_CHECKING:  # a target that calls listen_sockets() needs none of reentr's own modules
    from reentr.config import SocketSpec

FIRST_FD = 3
"""sd_listen_fds(3): SD_LISTEN_FDS_START."""
SET_PID = 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"'
"""The exec wrapper that gives `LISTEN_PID` its value. The target's PID exists only after
fork, and Python builds the environment before it forks; `sh` learns its own PID (`$$`), sets
it, then replaces itself with the target, which keeps that PID. It costs one `sh` start
(about 1 ms) and needs no code between fork and exec, which would make Python fork instead
of vfork."""


class Held:
    """The bound sockets, each at its final file descriptor (3, 4, ...) in reentr itself.

    They are placed there as soon as they are bound, before reentr opens anything else, so
    every target inherits them at the same numbers with no step between fork and exec. A
    descriptor reentr inherited at one of those numbers is closed: reentr never passes its own
    inherited descriptors on, and never uses them.
    """

    def __init__(self, specs: Sequence[SocketSpec], slots: Slots | None = None):
        self.specs = tuple(specs)
        self.slots = slots
        """`reentr up`: the sockets stay where they were bound, and each start copies them
        onto the slots (`lend`)."""
        self._sockets: list[socket.socket] = []
        self._unlink: list[tuple[str, int, int]] = []
        try:
            for number, spec in enumerate(self.specs):
                sock = _bind(spec)
                if slots is None:
                    sock = self._place(sock, FIRST_FD + number)
                self._sockets.append(sock)
                if spec.path is not None:
                    info = os.stat(spec.path)
                    self._unlink.append((spec.path, info.st_dev, info.st_ino))
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _place(sock: socket.socket, fd: int) -> socket.socket:
        if sock.fileno() == fd:
            return sock
        os.dup2(sock.fileno(), fd, inheritable=False)
        sock.close()
        return socket.socket(fileno=fd)

    def lend(self) -> tuple[int, ...]:
        """The descriptors, at 3, 4, ..., that the next start of the target inherits."""
        if self.slots is None:
            return tuple(s.fileno() for s in self._sockets)
        return self.slots.lend([s.fileno() for s in self._sockets])

    def address(self) -> tuple[str, int] | None:
        """Where a client reaches the first TCP socket (the loopback for a wildcard address),
        or None if all are Unix sockets."""
        for sock in self._sockets:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                host, port = sock.getsockname()[:2]
                wildcard = {"0.0.0.0": "127.0.0.1", "::": "::1"}
                return wildcard.get(host, host), port
        return None

    def env(self) -> dict[str, str]:
        """The variables every start of the target gets (`LISTEN_PID` comes from `wrap`)."""
        return {
            "LISTEN_FDS": str(len(self._sockets)),
            "LISTEN_FDNAMES": ":".join(spec.name.replace(":", "_") for spec in self.specs),
        }

    def wrap(
        self, argv: Sequence[str], env: Mapping[str, str], cwd: str | None = None
    ) -> list[str]:
        """`argv` run through the exec wrapper that sets `LISTEN_PID` to the target's PID;
        `cwd` is where it will run (a program named with a `/` is found from there).

        Raises:
            FileNotFoundError: the program is not there, as starting it directly would say.
        """
        program = argv[0]
        if cwd is not None and os.sep in program:
            program = os.path.join(cwd, program)
        if shutil.which(program, path=env.get("PATH", os.defpath)) is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argv[0])
        return ["/bin/sh", "-c", SET_PID, "reentr", *argv]

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()
        for path, device, inode in self._unlink:
            # Only the socket file reentr made: not one another program put there since.
            with contextlib.suppress(OSError):
                info = os.stat(path)
                if (info.st_dev, info.st_ino) == (device, inode):
                    os.unlink(path)
        self._unlink.clear()


class Slots:
    """Descriptors 3, 4, ... kept by reentr for `reentr up`, where each service has sockets of
    its own and each target must find its own at 3, 4, ...: before a start, the service's
    sockets are copied onto the slots (`dup2`, which replaces the copy of the last start).
    Only the loop starts processes, and nothing else can be given a slot's number while
    reentr holds it, so a copy cannot reach another service's target."""

    def __init__(self, count: int):
        self.count = count
        placeholder = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        try:
            for number in range(count):
                if placeholder != FIRST_FD + number:  # dup3 refuses a copy onto itself
                    os.dup2(placeholder, FIRST_FD + number, inheritable=False)
        finally:
            if placeholder >= FIRST_FD + count:
                os.close(placeholder)

    def lend(self, fds: Sequence[int]) -> tuple[int, ...]:
        for number, fd in enumerate(fds):
            if fd != FIRST_FD + number:
                os.dup2(fd, FIRST_FD + number, inheritable=False)
        return tuple(FIRST_FD + number for number in range(len(fds)))

    def close(self) -> None:
        for number in range(self.count):
            with contextlib.suppress(OSError):
                os.close(FIRST_FD + number)


@contextlib.contextmanager
def held(specs: Sequence[SocketSpec], slots: Slots | None = None) -> Iterator[Held | None]:
    """Bind `specs` for the length of the block (None when there are none).

    Raises:
        ReentrError: an address is in use or cannot be bound; nothing is left bound.
    """
    if not specs:
        yield None
        return
    sockets = Held(specs, slots)
    try:
        yield sockets
    finally:
        sockets.close()


def _bind(spec: SocketSpec) -> socket.socket:
    where = f"--socket {spec.describe()}"
    try:
        if spec.path is not None:
            _clear_stale(spec.path, where)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: str | tuple[str, int] = spec.path
        else:
            family = socket.AF_INET6 if ":" in spec.host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            # A port left in TIME_WAIT by the last run is free to listen on again.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            address = (spec.host, spec.port)
    except OSError as error:
        raise ReentrError(f"{where}: cannot make the socket: {error.strerror}") from None
    try:
        sock.bind(address)
        # The backlog holds the connections made while no target accepts (during a restart).
        sock.listen(socket.SOMAXCONN)
    except OSError as error:
        sock.close()
        raise ReentrError(f"{where}: {_why(error)}") from None
    return sock


def _why(error: OSError) -> str:
    if error.errno == errno.EADDRINUSE:
        return "address already in use; stop the program listening there, or choose another"
    if error.errno == errno.EACCES:
        return "permission denied; ports below 1024 need privileges, so choose a higher one"
    if error.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
        return "not an address of this machine; use 127.0.0.1 or another local address"
    return f"cannot listen: {error.strerror or error}"


def _clear_stale(path: str, where: str) -> None:
    """Remove a socket file that nothing listens on any more (left by a program that died);
    refuse one that something still listens on, and anything that is not a socket."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise ReentrError(f"{where}: {path} exists and is not a socket; remove it or choose "
                          "another path")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            os.unlink(path)
            return
        except OSError:
            return  # let bind say what is wrong
    raise ReentrError(f"{where}: address already in use; stop the program listening there, "
                      "or choose another")


def listen_sockets() -> list[socket.socket]:
    """The listening sockets this process inherited from `reentr --socket` (or from systemd,
    systemfd, or anything else that speaks socket activation), in the order they were given.

    Empty when there are none, or when `LISTEN_PID` names another process: then the variables
    were inherited from a parent they were meant for. As sd_listen_fds(3) does, each socket
    is made close-on-exec, so a program this process starts does not hold it open.

        sockets = reentr.listen_sockets()
        server = http.server.HTTPServer(("127.0.0.1", 8000), Handler, bind_and_activate=False)
        server.socket = sockets[0]
    """
    pid = os.environ.get("LISTEN_PID")
    if pid is not None and pid != str(os.getpid()):
        return []
    try:
        count = int(os.environ.get("LISTEN_FDS", "0"))
    except ValueError:
        return []
    found = []
    for fd in range(FIRST_FD, FIRST_FD + count):
        os.set_inheritable(fd, False)
        found.append(socket.socket(fileno=fd))
    return found
