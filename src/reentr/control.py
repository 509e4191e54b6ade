"""The socket through which `reentr restart NAME`, from another terminal, asks a running
`reentr up` to restart a service: where it lives, the running side, and the asking side.

It lives in the user's runtime directory (`$XDG_RUNTIME_DIR`, else a directory of the user's
own under /tmp, made with mode 0700), never inside a watched tree, named from the
configuration file's path, so that `reentr restart` finds it from the same project. Only that
user may connect: the directory is checked to be theirs and closed to everyone else.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reentr.errors import ReentrError
from reentr.events import Queue, RestartAsked
from reentr.signals import readable, start_thread

_TIMEOUT_S = 2.0
"""How long either side waits for the other's line."""


def path_for(config: Path) -> Path:
    """The control socket of the `reentr up` that runs `config`.

    Raises:
        ReentrError: the runtime directory is not the user's alone.
    """
    import hashlib  # only here: it loads OpenSSL, 5 MB that `reentr watch` does not need

    digest = hashlib.sha256(os.fsencode(config.resolve())).hexdigest()[:16]
    return _runtime_dir() / f"up-{digest}.sock"


def _runtime_dir() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        directory = Path(runtime) / "reentr"
    else:
        directory = Path("/tmp") / f"reentr-{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        directory.mkdir(mode=0o700)
    info = os.lstat(directory)
    if (not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid()
            or info.st_mode & 0o077):
        raise ReentrError(f"{directory} is not a directory of yours alone (mode 0700); "
                          "remove it, or set XDG_RUNTIME_DIR to one that is")
    return directory


@contextmanager
def claimed(path: Path) -> Iterator[socket.socket]:
    """The listening socket at `path`, bound before anything else of a `reentr up` starts, so
    that a second `reentr up` of the same configuration is refused before it binds a port or
    prints a line; removed when the block ends.

    Raises:
        ReentrError: another `reentr up` already runs this configuration.
    """
    _clear_stale(path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(path))
        os.chmod(path, 0o600)
        server.listen(8)
    except OSError as error:
        server.close()
        raise ReentrError(f"cannot listen on {path}: {error.strerror}") from None
    try:
        yield server
    finally:
        server.close()
        with contextlib.suppress(OSError):
            os.unlink(path)


@contextmanager
def serving(server: socket.socket, names: list[str], events: Queue) -> Iterator[None]:
    """Answer on `server` (see `claimed`) while the block runs; each `restart NAME` line
    becomes a `RestartAsked` event, answered `ok` or with what is wrong."""
    wake_r, wake_w = os.pipe()
    thread = start_thread(_serve, server, wake_r, names, events, name="reentr-control")
    try:
        yield
    finally:
        os.write(wake_w, b"\0")
        thread.join(timeout=2.0)
        os.close(wake_w)


def _clear_stale(path: Path) -> None:
    """Remove the socket of a `reentr up` that died; refuse while one still answers."""
    if not os.path.lexists(path):
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            os.unlink(path)
            return
    raise ReentrError("another reentr up is already running this configuration; stop it "
                      "first, or use reentr restart NAME to restart one of its services")


def _serve(server: socket.socket, wake: int, names: list[str], events: Queue) -> None:
    try:
        while True:
            ready = readable([server.fileno(), wake])
            if wake in ready:
                return
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(_TIMEOUT_S)
                with contextlib.suppress(OSError):
                    conn.sendall(_answer(_read_line(conn), names, events).encode() + b"\n")
    finally:
        os.close(wake)


def _answer(line: str, names: list[str], events: Queue) -> str:
    verb, _, name = line.partition(" ")
    if verb != "restart" or not name:
        return f"error: not understood: {line!r}"
    if name not in names:
        return f"error: no service '{name}'; the services are: {', '.join(names)}"
    events.put(RestartAsked(name))
    return "ok"


def _read_line(conn: socket.socket) -> str:
    data = b""
    while b"\n" not in data and len(data) < 4096:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0].decode(errors="replace").strip()


def ask(path: Path, name: str) -> str:
    """Ask the `reentr up` listening on `path` to restart `name`; its answer.

    Raises:
        ReentrError: no `reentr up` runs there, or it refused.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(_TIMEOUT_S)
        try:
            conn.connect(str(path))
            conn.sendall(f"restart {name}\n".encode())
            answer = _read_line(conn)
        except (FileNotFoundError, ConnectionRefusedError):
            raise ReentrError("no reentr up is running for this configuration; start one "
                              "with reentr up") from None
        except OSError as error:
            raise ReentrError(f"cannot reach reentr up at {path}: "
                              f"{error.strerror or error}") from None
    if answer != "ok":
        raise ReentrError(answer.removeprefix("error: ") or "reentr up did not answer")
    return answer
