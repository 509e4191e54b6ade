"""Every descriptor handed to the target: listening sockets held across restarts (bound once by
reentr), and the file-descriptor store (what the target hands over with `FDSTORE=1`), both
passed to every start by systemd's socket-activation contract; and `listen_sockets`, the
target's side of it.

The contract (sd_listen_fds(3)): the sockets are file descriptors 3, 4, ...; `LISTEN_FDS` says
how many, `LISTEN_FDNAMES` names them (colon-separated), and `LISTEN_PID` is the PID of the
process they are meant for, so that a child of the target does not take them for its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import os
import resource
import select
import shutil
import socket
import stat
import threading
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

    def names(self) -> list[str]:
        """Their names in `LISTEN_FDNAMES`, in order (see `listen_env`)."""
        return [spec.name for spec in self.specs]

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


def wrap(argv: Sequence[str], env: Mapping[str, str], cwd: str | None = None) -> list[str]:
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


def listen_env(names: Sequence[str]) -> dict[str, str]:
    """`LISTEN_FDS` and `LISTEN_FDNAMES` for descriptors 3, 4, ... named `names`
    (`LISTEN_PID` comes from `wrap`)."""
    return {"LISTEN_FDS": str(len(names)),
            "LISTEN_FDNAMES": ":".join(name.replace(":", "_") for name in names)}


class Slots:
    """Descriptors 3, 4, ... kept by reentr for the descriptors each start must find there:
    under `reentr up` each service's own sockets, and the file-descriptor store's after the
    sockets. Before a start, they are copied onto the slots (`dup2`, which replaces the copy
    of the last start). Only the loop starts processes, and nothing else can be given a
    slot's number while reentr holds it, so a copy cannot reach another service's target."""

    def __init__(self, count: int, base: int = FIRST_FD):
        self.count = count
        self.base = base
        """The first slot's number: a target's first inherited descriptor is always 3."""
        self._placeholder = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        for number in range(base, base + count):
            if self._placeholder != number:  # dup3 refuses a copy onto itself
                os.dup2(self._placeholder, number, inheritable=False)
        if self._placeholder < base + count:  # it took a slot: keep one of its own
            self._placeholder = os.dup(self._placeholder)

    def lend(self, fds: Sequence[int], first: int = 0) -> tuple[int, ...]:
        """Copy `fds` onto the slots from the `first` on; the numbers they are now at."""
        for number, fd in enumerate(fds, self.base + first):
            if fd != number:
                os.dup2(fd, number, inheritable=False)
        return tuple(range(self.base + first, self.base + first + len(fds)))

    def release(self, numbers: Sequence[int]) -> None:
        """Put the placeholder back on `numbers`: a copy left there would keep its file open
        after the store drops it (a connection would never end)."""
        for number in numbers:
            os.dup2(self._placeholder, number, inheritable=False)

    def close(self) -> None:
        for number in range(self.base, self.base + self.count):
            with contextlib.suppress(OSError):
                os.close(number)
        with contextlib.suppress(OSError):
            os.close(self._placeholder)


STORE_MAX = 1024
"""The most descriptors the store keeps for one target (systemd's `FileDescriptorStoreMax=`,
which is 0 there: the store is off until a unit sets it). 1,024 holds a development server's
live connections (`benchmarks/fdstore.py` keeps 1,000) while bounding what a runaway target
can make reentr hold: each stored descriptor costs reentr two (the stored one, and its slot,
at 3, 4, ..., where each start finds it), which must fit in reentr's `RLIMIT_NOFILE`. reentr
raises its soft limit to fit; where the hard limit is too low for that, the store keeps
fewer, and reentr says how many (`store_limit`)."""
_OWN_FDS = 256
"""Descriptors left for reentr's own use beside the slots and the store (watches, pipes,
the event stream)."""
_F_DUPFD_QUERY = 1027
"""fcntl(2), Linux 6.10: whether two descriptors refer to the same open file."""


def store_limit(sockets: int) -> int:
    """How many descriptors the store can keep beside `sockets` held sockets: `STORE_MAX`,
    with reentr's soft `RLIMIT_NOFILE` raised to fit (a target inherits the raised limit),
    or fewer when the hard limit allows no more."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = FIRST_FD + sockets + 2 * STORE_MAX + _OWN_FDS
    if soft != resource.RLIM_INFINITY and soft < need:
        wanted = need if hard == resource.RLIM_INFINITY else min(need, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return STORE_MAX
    return max(0, min(STORE_MAX, (soft - FIRST_FD - sockets - _OWN_FDS) // 2))


@dataclasses.dataclass(eq=False)
class _Stored:
    fd: int
    name: str
    polled: bool
    """Dropped when it hangs up (`FDPOLL=0` turns it off; a memfd cannot be polled)."""
    key: tuple[int, int]
    """Its file's device and inode."""
    holders: set[int]
    """The process groups of running targets that hold it: the one that stored it, the one
    it was passed to. An entry held by none is passed at the next start."""


_STARTING = 0
"""The holder of what is lent to a start whose process is not there yet."""


class Store:
    """The file-descriptor store of one target (systemd's: sd_notify(3) `FDSTORE=1`): the
    descriptors the target hands over, kept for as long as reentr runs, and passed to each
    start after the held sockets, in the order stored, except those a running target holds.
    The policy starts a target only once the last one's group is gone (and `--fd-store`
    refuses `--handoff`), so that is a guard, not a rule anything relies on: no descriptor is
    ever passed to two running targets.

    The notify thread adds and removes, the loop lends: every method takes the lock.
    """

    def __init__(self, limit: int = STORE_MAX):
        self.limit = limit
        self._stored: list[_Stored] = []
        self._by_file: dict[tuple[int, int], list[_Stored]] = {}
        self._lock = threading.Lock()
        self._hangups = select.epoll()
        """The polled descriptors, registered for nothing: epoll reports a hang-up or an
        error whatever was asked."""

    def fileno(self) -> int:
        """Readable when a polled descriptor hung up (then call `drop_hung_up`)."""
        return self._hangups.fileno()

    def __len__(self) -> int:
        with self._lock:
            return len(self._stored)

    def names(self) -> list[str]:
        with self._lock:
            return [entry.name for entry in self._stored]

    def add(self, fds: Sequence[int], name: str, *, poll: bool, by: int) -> int:
        """Keep `fds` (now the store's) under `name`, as held by the target group `by`. One
        already kept (the same open file) is kept once, under its first name. Returns how
        many were refused for the limit (and closed)."""
        refused = 0
        with self._lock:
            for fd in fds:
                info = os.fstat(fd)
                key = (info.st_dev, info.st_ino)
                same = self._same(fd, key)
                if same is not None:
                    os.close(fd)
                    same.holders.add(by)
                elif len(self._stored) >= self.limit:
                    os.close(fd)
                    refused += 1
                else:
                    entry = _Stored(fd, name, poll and self._poll(fd), key, {by})
                    self._stored.append(entry)
                    self._by_file.setdefault(key, []).append(entry)
        return refused

    def remove(self, name: str) -> int:
        """`FDSTOREREMOVE=1`: drop every descriptor named `name`; how many."""
        with self._lock:
            gone = [entry for entry in self._stored if entry.name == name]
            self._drop(gone)
        return len(gone)

    def drop_hung_up(self) -> list[str]:
        """Drop the polled descriptors that hung up or failed (POLLHUP, POLLERR); their
        names."""
        with self._lock:
            return self._drop_hung_up()

    def _drop_hung_up(self) -> list[str]:
        hung = {fd for fd, _ in self._hangups.poll(0)}
        gone = [entry for entry in self._stored if entry.fd in hung]
        self._drop(gone)
        return [entry.name for entry in gone]

    def lend(self, slots: Slots, first: int) -> tuple[tuple[int, ...], list[str]]:
        """Copy the descriptors no running target holds onto the slots from `first` on, for
        the start about to be made; their numbers there and their names. Then `lent`."""
        with self._lock:
            self._drop_hung_up()  # not left to the notify thread: what is passed is decided
            free = [entry for entry in self._stored if not entry.holders]
            for entry in free:
                entry.holders.add(_STARTING)
            numbers = slots.lend([entry.fd for entry in free], first)
        return numbers, [entry.name for entry in free]

    def lent(self, pid: int | None) -> None:
        """The start that `lend` was for has the process group `pid` (None: it failed)."""
        with self._lock:
            for entry in self._stored:
                if _STARTING in entry.holders:
                    entry.holders.discard(_STARTING)
                    if pid is not None:
                        entry.holders.add(pid)

    def returned(self, pid: int) -> None:
        """The target group `pid` is gone: what it held is free for the next start."""
        with self._lock:
            for entry in self._stored:
                entry.holders.discard(pid)

    def close(self) -> None:
        """Close every stored descriptor: a connection kept only here ends (its client
        reads end of file)."""
        with self._lock:
            self._drop(list(self._stored))
            self._hangups.close()

    def _same(self, fd: int, key: tuple[int, int]) -> _Stored | None:
        """The entry of the same open file as `fd`, if any (fcntl's F_DUPFD_QUERY, or,
        before Linux 6.10, the same inode: for a socket or a memfd, the same thing)."""
        for entry in self._by_file.get(key, ()):
            try:
                if fcntl.fcntl(fd, _F_DUPFD_QUERY, entry.fd):
                    return entry
            except OSError:  # an older kernel: the inode decides
                return entry
        return None

    def _poll(self, fd: int) -> bool:
        try:
            self._hangups.register(fd, 0)
        except OSError:  # EPERM: a regular file or a memfd, which epoll cannot watch
            return False
        return True

    def _drop(self, gone: list[_Stored]) -> None:
        dropped = {id(entry) for entry in gone}
        self._stored = [entry for entry in self._stored if id(entry) not in dropped]
        for entry in gone:
            self._by_file[entry.key].remove(entry)
            if not self._by_file[entry.key]:
                del self._by_file[entry.key]
            if entry.polled:
                # Before closing: a copy a target holds would keep the registration alive.
                with contextlib.suppress(OSError):
                    self._hangups.unregister(entry.fd)
            os.close(entry.fd)


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


def inherited_fds() -> list[tuple[str, int]]:
    """Every descriptor this process inherited by socket activation, with its name, in order:
    `reentr --socket`'s listening sockets (named by `NAME=` or their address), then what
    `--fd-store` keeps (named by `FDNAME=`), as sd_listen_fds_with_names(3) gives them, from
    reentr, systemd, or anything else that speaks socket activation.

    Empty when there are none, or when `LISTEN_PID` names another process: then the variables
    were inherited from a parent they were meant for. As sd_listen_fds(3) does, each one is
    made close-on-exec, so a program this process starts does not hold it open.

        for name, fd in reentr.inherited_fds():
            if name == "state":  # a memfd this program stored with FDNAME=state
                ...
    """
    pid = os.environ.get("LISTEN_PID")
    if pid is not None and pid != str(os.getpid()):
        return []
    try:
        count = int(os.environ.get("LISTEN_FDS", "0"))
    except ValueError:
        return []
    names = os.environ.get("LISTEN_FDNAMES", "").split(":")
    found = []
    for i, fd in enumerate(range(FIRST_FD, FIRST_FD + count)):
        with contextlib.suppress(OSError):  # not open after all: skipped
            os.set_inheritable(fd, False)
            found.append((names[i] if i < len(names) and names[i] else "unknown", fd))
    return found


def listen_sockets() -> list[socket.socket]:
    """The listening sockets this process inherited from `reentr --socket` (or from systemd,
    systemfd, or anything else that speaks socket activation), in the order they were given.
    What the fd store keeps (a memfd, a client's connection) is passed after them and is not
    among them: `inherited_fds` names those.

        sockets = reentr.listen_sockets()
        server = http.server.HTTPServer(("127.0.0.1", 8000), Handler, bind_and_activate=False)
        server.socket = sockets[0]
    """
    found = []
    for _, fd in inherited_fds():
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            continue
        sock = socket.socket(fileno=fd)
        if sock.type == socket.SOCK_STREAM and not sock.getsockopt(
                socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            sock.detach()  # a connection, not a listener: left open, as it was
            continue
        found.append(sock)
    return found
