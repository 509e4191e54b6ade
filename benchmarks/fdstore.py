#!/usr/bin/env python3
"""`--fd-store`: what keeping N live connections through a restart costs, in one run.

The stateful server of the tests (tests/apps/stateful.py: a line protocol, its counter in a
memfd) runs under `reentr watch -r --socket --ready-notify` and restarts on an edit of its
`version.txt`, with N idle client connections open (0, 100 and 1,000): with `--fd-store`,
which keeps them (the server stores them at SIGTERM, the next start takes them over), and
without, where each restart drops them (they are opened again before the next edit, so both
restart a server holding N connections). The six runs are edited in turn, so the machine's
noise falls on all alike.

Edit -> served: from just before the write until a fresh connection is answered by the new
version (an outside observer, polling). Prints, per N, the medians with and without the store
and the store's cost per 100 descriptors. Target (the fd-store issue): <= 1 ms per 100.

    python benchmarks/fdstore.py [--edits 10]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import compile_reentr, reentr_command, stop, wait

APP = Path(__file__).resolve().parent.parent / "tests" / "apps" / "stateful.py"
COUNTS = (0, 100, 1000)
TARGET_MS_PER_100 = 1.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answer(port: int) -> str | None:
    """The version a fresh connection is answered with, or None."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            conn.sendall(b"ping\n")
            line = conn.makefile("rb").readline().decode()
    except OSError:
        return None
    return line.split()[0] if line else None


class Run:
    """One reentr with the server, and its N idle connections."""

    def __init__(self, work: Path, count: int, store: bool):
        self.count = count
        self.store = store
        self.dir = work / f"{count}-{'store' if store else 'plain'}"
        self.dir.mkdir()
        shutil.copy(APP, self.dir / "app.py")
        (self.dir / "version.txt").write_text("v0\n")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [*reentr_command(), "watch", "-r", "-q", "--socket", f"127.0.0.1:{self.port}",
             "--ready-notify", *(["--fd-store"] if store else []), "-w", "version.txt", "--",
             sys.executable, "app.py"],
            cwd=self.dir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        wait(lambda: answer(self.port) == "v0", 30, f"the server of {self.dir.name}")
        self.clients: list[socket.socket] = []
        self.connect()
        self.times: list[float] = []

    def connect(self) -> None:
        """Open the N connections (again, after a restart that dropped them), each answered
        once, so the server holds every one of them."""
        for client in self.clients:
            client.close()
        self.clients = []
        for _ in range(self.count):
            client = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            client.sendall(b"ping\n")
            self.clients.append(client)
        for client in self.clients:
            assert client.recv(4096), "no answer on an idle connection"

    def restart(self, version: str) -> None:
        began = time.monotonic()
        (self.dir / "version.txt").write_text(f"{version}\n")
        wait(lambda: answer(self.port) == version, 30, f"{version} of {self.dir.name}")
        self.times.append((time.monotonic() - began) * 1000)
        if not self.store:
            self.connect()
        else:
            for client in self.clients[:3]:  # kept: each still answered, by the new version
                client.sendall(b"ping\n")
                assert client.recv(4096).startswith(version.encode()), "a kept connection"

    def close(self) -> None:
        stop(self.proc, signal.SIGTERM, 10)
        for client in self.clients:
            client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=10)
    args = parser.parse_args()
    compile_reentr()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 8192), hard), hard))
    work = Path(tempfile.mkdtemp(prefix="reentr-fdstore-"))
    runs: list[Run] = []
    try:
        for count in COUNTS:
            for store in (False, True):
                runs.append(Run(work, count, store))
        for number in range(1, args.edits + 1):
            for run in runs:
                run.restart(f"v{number}")
    finally:
        for run in runs:
            run.close()
        shutil.rmtree(work, ignore_errors=True)
    print(f"edit -> served, ms (median of {args.edits}; a fresh connection answered by the new "
          "version)")
    print(f"{'connections':>12} {'no store':>9} {'--fd-store':>11} {'per 100 fds':>12}")
    worst = 0.0
    for count in COUNTS:
        plain, kept = (statistics.median(run.times) for run in runs if run.count == count)
        per_100 = (kept - plain) / (count / 100) if count else 0.0
        worst = max(worst, per_100)
        print(f"{count:>12} {plain:>9.1f} {kept:>11.1f} "
              f"{'-' if not count else f'{per_100:+.2f} ms':>12}")
    verdict = "met" if worst <= TARGET_MS_PER_100 else "MISSED"
    print(f"the store's cost: {worst:+.2f} ms per 100 fds at worst "
          f"(target <= {TARGET_MS_PER_100} ms): {verdict}")


if __name__ == "__main__":
    main()
