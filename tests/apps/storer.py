"""A target that says what it inherited, then stores what `do.txt` in its working directory
says, for the tests of `reentr --fd-store`: one word per step.

    hup:NAME      one end of a socket pair, whose other end it then closes (it hangs up)
    keep:NAME     the same, sent with FDPOLL=0 (kept though it hangs up)
    dup:NAME      one pipe's read end three times: twice in a message, once in another
    many:N        N memfds, named many, in messages of at most 253
    remove:NAME   FDSTOREREMOVE=1 of NAME
    ready         READY=1

It prints `got COUNT NAMES PID` first (NAMES joined by `:`, `-` for none), and `done` once every
step is sent; then it waits to be stopped.
"""

from __future__ import annotations

import array
import os
import signal
import socket

BATCH = 253


def send(text: str, fds: list[int] = []) -> None:  # noqa: B006 (never changed)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(os.environ["NOTIFY_SOCKET"])
        for at in range(0, max(len(fds), 1), BATCH):
            batch = fds[at:at + BATCH]
            rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", batch))]
            sock.sendmsg([text.encode()], rights if batch else [])


def step(word: str) -> None:
    kind, _, arg = word.partition(":")
    if kind in ("hup", "keep"):
        kept, other = socket.socketpair()
        send(f"FDSTORE=1\nFDNAME={arg}" + "\nFDPOLL=0" * (kind == "keep"), [kept.fileno()])
        other.close()
        kept.close()
    elif kind == "dup":
        read, _write = os.pipe()  # the write end stays open: no hang-up
        send(f"FDSTORE=1\nFDNAME={arg}\nFDPOLL=0", [read, os.dup(read)])
        send(f"FDSTORE=1\nFDNAME={arg}\nFDPOLL=0", [read])
    elif kind == "many":
        send("FDSTORE=1\nFDNAME=many", [os.memfd_create(f"m{n}") for n in range(int(arg))])
    elif kind == "remove":
        send(f"FDSTOREREMOVE=1\nFDNAME={arg}")
    elif kind == "ready":
        send("READY=1")


def main() -> None:
    mine = os.environ.get("LISTEN_PID") == str(os.getpid())
    count = os.environ.get("LISTEN_FDS", "0") if mine else "0"
    names = os.environ.get("LISTEN_FDNAMES", "") if mine else ""
    print(f"got {count} {names or '-'} {os.getpid()}", flush=True)
    with open("do.txt") as steps:
        words = steps.read().split()
    for word in words:
        step(word)
    print("done", flush=True)
    signal.pause()


if __name__ == "__main__":
    main()
