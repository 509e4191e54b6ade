"""A stateful line server that keeps its clients' connections and its state across restarts
with the file-descriptor store (`reentr --fd-store`, as under systemd), standard library only.

Each line a client sends gets `VERSION COUNT PID`, where COUNT is the number of answers given
since the first start: the counter lives in a memfd that the server stores once, so every
start finds it. Its version is the first word of `version.txt` in its working directory.

At SIGTERM it stops reading, stores every open connection (`FDSTOREREMOVE=1` of the old set
first), and exits: bytes a client sends meanwhile wait in the kernel for the next start. It
reads a request only once the whole line is there (peek, then take), so nothing is ever half
read when it stops. A connection it ends (the line `quit`, or the client gone) it shuts down
before closing it: the store keeps a copy of each, which a close alone would leave open, and
drops one that hangs up. It is ready (`READY=1`) once it has taken over what it was given.
"""

from __future__ import annotations

import array
import contextlib
import os
import selectors
import signal
import socket
import struct
import sys

BATCH = 253  # SCM_MAX_FD: the most descriptors one message carries


def notify(text: str, fds: list[int] = ()) -> None:  # type: ignore[assignment]
    path = os.environ["NOTIFY_SOCKET"]
    if path.startswith("@"):  # systemd's abstract socket
        path = "\0" + path[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(path)
        for at in range(0, max(len(fds), 1), BATCH):
            batch = fds[at:at + BATCH]
            rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", batch))]
            sock.sendmsg([text.encode()], rights if batch else [])


def inherited() -> list[tuple[str, int]]:
    """(name, fd) of every descriptor passed by LISTEN_FDS, as sd_listen_fds_with_names."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return []
    count = int(os.environ.get("LISTEN_FDS", "0"))
    names = os.environ.get("LISTEN_FDNAMES", "").split(":")
    return [(names[i] if i < len(names) else "unknown", 3 + i) for i in range(count)]


def take_over() -> tuple[socket.socket, int, list[socket.socket]]:
    """The listening socket, the state (made and stored at the first start) and the kept
    connections."""
    listener = state = None
    connections: list[socket.socket] = []
    for name, fd in inherited():
        os.set_inheritable(fd, False)
        if name == "state":
            state = fd
        elif name == "conn":
            connections.append(socket.socket(fileno=fd))
        else:
            listener = socket.socket(fileno=fd)
    if state is None:
        state = os.memfd_create("counter")
        os.pwrite(state, struct.pack("Q", 0), 0)
        notify("FDSTORE=1\nFDNAME=state", [state])
    assert listener is not None, "run with --socket"
    return listener, state, connections


def main() -> None:
    with open("version.txt") as file:
        version = file.read().split()[0]
    listener, state, connections = take_over()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGTERM, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    for conn in connections:
        conn.setblocking(True)
        selector.register(conn, selectors.EVENT_READ)
    notify("READY=1")
    print(f"serving {version} with {len(connections)} kept connections", flush=True)
    while True:
        for key, _ in selector.select():
            if key.fileobj == wake_r:
                stop(connections)
                return
            if key.fileobj is listener:
                conn, _ = listener.accept()
                connections.append(conn)
                selector.register(conn, selectors.EVENT_READ)
                continue
            conn = key.fileobj  # type: ignore[assignment]
            waiting = conn.recv(4096, socket.MSG_PEEK)
            if not waiting:  # the client is gone
                end(selector, connections, conn)
                continue
            while b"\n" in waiting:
                line = conn.recv(waiting.index(b"\n") + 1)
                waiting = waiting[len(line):]
                if line.strip() == b"quit":
                    conn.sendall(b"bye\n")
                    end(selector, connections, conn)
                    break
                count = struct.unpack("Q", os.pread(state, 8, 0))[0] + 1
                os.pwrite(state, struct.pack("Q", count), 0)
                conn.sendall(f"{version} {count} {os.getpid()}\n".encode())


def end(selector: selectors.BaseSelector, connections: list[socket.socket],
        conn: socket.socket) -> None:
    """End a connection: shut it down, for the store's copy too, then close it."""
    selector.unregister(conn)
    connections.remove(conn)
    with contextlib.suppress(OSError):  # the client already reset it
        conn.shutdown(socket.SHUT_RDWR)
    conn.close()


def stop(connections: list[socket.socket]) -> None:
    notify("FDSTOREREMOVE=1\nFDNAME=conn")
    if connections:
        notify("FDSTORE=1\nFDNAME=conn", [conn.fileno() for conn in connections])
    sys.exit(0)


if __name__ == "__main__":
    main()
