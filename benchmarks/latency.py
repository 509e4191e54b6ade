#!/usr/bin/env python3
"""Restart latency, in one run: reentr against a minimal inotify watcher (the reference, below)
and against entr when it is installed.

1. change -> spawn of a tiny static program that prints CLOCK_MONOTONIC when it starts, for
   editor saves in place and through a temporary file + rename; each save must give one run.
2. CPU while nothing changes, as a percentage of one core.
3. change -> ready of a Python HTTP server restart (a client polls until the new PID answers);
   the reference and reentr run side by side and restart in turn.
4. Whether the latency reentr prints (its `--events` stream) agrees with the outside figure.

Targets (issue 5): change->spawn median <= 10 ms with exactly one run per save, idle CPU <= 1 %,
server change->ready within 1.15 x the reference, printed vs outside median |diff| <= 3 ms.

    python benchmarks/latency.py [--runs 20] [--debounce 1,5,10,50]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from common import REFERENCE, idle_cpu, reentr_command, stop
from common import http_body as get_pid

from helpers import free_port
from reentr.config import Config
from reentr.timing import percentile

STAMP_C = r"""
#include <stdio.h>
#include <time.h>
int main(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    printf("%lld\n", (long long)t.tv_sec * 1000000000LL + t.tv_nsec);
    return 0;
}
"""

SERVER = r"""
import http.server, os, socket, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = str(os.getpid()).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""

QUIET_S = 0.4
"""After a save, more runs arriving within this long count as extra runs of the same save."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="saves per watcher (default 20)")
    parser.add_argument("--debounce", default="1,2,5,50",
                        help="reentr --debounce values to compare, in ms (default 1,2,5,50: "
                        "the README's rows, 2 the default)")
    args = parser.parse_args()
    steps = [int(x) for x in args.debounce.split(",")]
    with tempfile.TemporaryDirectory(prefix="reentr-bench-") as tmp:
        work = Path(tmp)
        stamp = build_stamp(work)
        print(f"reentr latency benchmark: {args.runs} saves per watcher, half in place, half "
              "through a temporary file + rename\n")
        print("1. change -> spawn of a static program, and CPU while idle")
        print(f"   {'watcher':<24}{'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}"
              f"{'runs/save':>11}{'idle CPU':>10}{'|printed-outside| p50':>23}"
              f"{'runs reported':>15}")
        watchers: list[tuple[str, list[str], bool]] = [
            ("reference (inotify)", [sys.executable, "-c", REFERENCE, "once", "{file}", ""], False)
        ]
        reentr = [*reentr_command(), "-n", "--events", "{events}"]
        watchers += [(f"reentr --debounce {s}ms", [*reentr, "--debounce", f"{s}ms"], True)
                     for s in steps]
        if shutil.which("entr"):
            watchers.append(("entr 5.x", ["entr", "-n"], True))
        onchange = install_onchange(work)
        if onchange is not None:
            watchers.append(("onchange (npm)", [onchange, "{file}", "--"], False))
        rows = {}
        for label, command, stdin in watchers:
            rows[label] = spawn_latency(work, command, stdin, stamp, args.runs)
            print_row(label, rows[label])
        if not shutil.which("entr"):
            print("   (entr is not installed: its row is left out)")
        print("\n2. change -> ready of a Python HTTP server (the client waits for the new PID;\n"
              "   the reference and reentr run side by side and restart in turn)")
        print(f"   {'watcher':<24}{'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}{'ratio':>8}"
              f"{'|printed-outside| p50':>23}")
        chosen = Config.debounce_ms
        ref, ours = server_latency(work, chosen, args.runs)
        print_server_row("reference (inotify)", ref, ref)
        print_server_row(f"reentr --debounce {chosen}ms", ours, ref)
        stages = ", ".join(f"{k} {v:.1f}" for k, v in ours["stages"].items())  # type: ignore[attr-defined]
        print(f"   reentr's own stages, p50 ms: {stages}")
        print("\nTargets: change->spawn p50 <= 10 ms with 1 run per save; idle CPU <= 1 %; "
              "server ratio <= 1.15; printed vs outside p50 <= 3 ms.")
        print_peer_ratios(rows, f"reentr --debounce {chosen}ms")




def install_onchange(work: Path) -> str | None:
    """onchange (a Node watcher, the fastest peer measured) from the npm registry into a
    folder of the run's; None, said, where npm or the registry is not there."""
    npm = shutil.which("npm")
    if npm is None:
        print("   (npm is not installed: onchange's row is left out)")
        return None
    folder = work / "onchange"
    done = subprocess.run([npm, "install", "--silent", "--prefix", str(folder), "onchange"],
                          capture_output=True, text=True, timeout=300, check=False)
    binary = folder / "node_modules" / ".bin" / "onchange"
    if done.returncode != 0 or not binary.exists():
        print(f"   (onchange could not be installed: {done.stderr.strip()[:100]})")
        return None
    return str(binary)


def print_peer_ratios(rows: dict[str, dict[str, object]], ours: str) -> None:
    """The change -> spawn targets against the peers of the same run: below the fastest
    peer, and at most 2 x the reference (the floor)."""
    def p50(label: str) -> float:
        return statistics.median(rows[label]["latencies"])  # type: ignore[arg-type]

    floor = p50("reference (inotify)")
    mine = p50(ours)
    print(f"   {ours}: {mine / floor:.2f} x the reference (target <= 2)", end="")
    peers = [label for label in rows if label.startswith(("onchange", "entr"))]
    if peers:
        fastest = min(peers, key=p50)
        print(f", {mine / p50(fastest):.2f} x {fastest}, the fastest peer (target < 1)")
    else:
        print(" (no peer was there to compare with)")


def build_stamp(work: Path) -> list[str]:
    """The tiny static program; a Python one-liner (slower to start) where there is no cc."""
    source = work / "stamp.c"
    source.write_text(STAMP_C)
    binary = work / "stamp"
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc and subprocess.run([cc, "-O2", "-static", "-o", str(binary), str(source)],
                             capture_output=True, check=False).returncode == 0:
        return [str(binary)]
    print("   (no C compiler with static libc: the program is `python3 -S`, which starts slower)")
    return [sys.executable, "-S", "-c", "import time; print(time.monotonic_ns())"]


class Lines:
    """Lines from a pipe, each with the monotonic time it arrived."""

    def __init__(self, stream: Iterator[str]):
        self.queue: queue.Queue[tuple[int, str]] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: Iterator[str]) -> None:
        for line in stream:
            self.queue.put((time.monotonic_ns(), line.strip()))

    def get(self, timeout: float) -> str | None:
        try:
            return self.queue.get(timeout=timeout)[1]
        except queue.Empty:
            return None

    def drain(self, quiet: float) -> list[str]:
        lines = []
        while (line := self.get(quiet)) is not None:
            lines.append(line)
        return lines


@contextlib.contextmanager
def started(command: list[str], stdin: str | None, cwd: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(command, stdin=subprocess.PIPE if stdin is not None else None,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            cwd=cwd, start_new_session=True)
    if stdin is not None and proc.stdin:
        proc.stdin.write(stdin)
        proc.stdin.close()
    try:
        yield proc
    finally:
        stop(proc, signal.SIGTERM, 5)


def save(path: Path, text: str, atomic: bool) -> None:
    if atomic:
        temp = path.with_name(path.name + ".swp")
        temp.write_text(text)
        os.replace(temp, path)
    else:
        path.write_text(text)


def spawn_latency(work: Path, command: list[str], stdin: bool, stamp: list[str],
                  runs: int) -> dict[str, object]:
    folder = Path(tempfile.mkdtemp(dir=work))
    watched = folder / "watched.txt"
    watched.write_text("0")
    events = folder / "events.jsonl"
    argv = [part.replace("{file}", str(watched)).replace("{events}", str(events))
            for part in command]
    argv += stamp
    latencies, counts, printed = [], [], []
    reported: int | None = None
    with started(argv, f"{watched}\n" if stdin else None, folder) as proc:
        assert proc.stdout is not None
        lines = Lines(proc.stdout)
        lines.drain(1.0)  # the first run, where the watcher makes one
        for i in range(runs):
            before = time.monotonic_ns()
            save(watched, str(i + 1), atomic=i % 2 == 1)
            got = lines.drain(QUIET_S)
            counts.append(len(got))
            if got:
                latencies.append((int(got[0]) - before) / 1e6)
        cpu = idle_cpu(proc.pid, 3.0)
    if events.exists():
        totals = [json.loads(x)["total_ms"] for x in events.read_text().splitlines()
                  if '"restart"' in x]
        printed = [abs(a - b) for a, b in zip(totals[-len(latencies):], latencies, strict=True)]
        reported = len(totals)
    return {"latencies": latencies, "counts": counts, "cpu": cpu, "printed": printed,
            "reported": reported}




class ServerWatch:
    """A watcher that restarts a Python HTTP server when its own file changes."""

    def __init__(self, work: Path, debounce: int | None):
        self.folder = Path(tempfile.mkdtemp(dir=work))
        self.watched = self.folder / "watched.txt"
        self.watched.write_text("0")
        server = self.folder / "server.py"
        server.write_text(SERVER)
        self.port = free_port()
        self.events = self.folder / "events.jsonl"
        target = [sys.executable, str(server), str(self.port)]
        self.stdin: str | None = None
        if debounce is None:
            self.argv = [sys.executable, "-c", REFERENCE, "restart", str(self.watched), "",
                         *target]
        else:
            self.argv = [*reentr_command(), "-r", "-n", "--debounce", f"{debounce}ms",
                         "--ready-port", str(self.port), "--events", str(self.events), *target]
            self.stdin = f"{self.watched}\n"
        self.latencies: list[float] = []
        self.pid: object = None

    def restart(self, i: int) -> None:
        before = time.monotonic_ns()
        save(self.watched, str(i + 1), atomic=i % 2 == 1)
        old = self.pid

        def new_pid() -> object:
            pid = get_pid(self.port)
            return pid != old and pid

        self.pid = wait_for(new_pid, 10.0)
        self.latencies.append((time.monotonic_ns() - before) / 1e6)

    def result(self) -> dict[str, object]:
        printed, stages = [], {}
        if self.events.exists():
            restarts = [json.loads(x) for x in self.events.read_text().splitlines()
                        if '"restart"' in x]
            printed = [abs(r["total_ms"] - b)
                       for r, b in zip(restarts, self.latencies, strict=True)]
            stages = {name: statistics.median(r[f"{name}_ms"] for r in restarts)
                      for name in ("detect", "stop", "spawn", "ready")}
        return {"latencies": self.latencies, "printed": printed, "stages": stages}


def server_latency(work: Path, debounce: int, runs: int) -> tuple[dict[str, object], ...]:
    """The reference and reentr side by side, their restarts taken in turn (which goes first
    alternates), so that the machine's changing load falls on both alike."""
    sides = (ServerWatch(work, None), ServerWatch(work, debounce))
    with contextlib.ExitStack() as stack:
        for side in sides:
            stack.enter_context(started(side.argv, side.stdin, side.folder))
            side.pid = wait_for(functools.partial(get_pid, side.port), 10.0)
        for i in range(runs):
            for side in sides if i % 2 == 0 else sides[::-1]:
                side.restart(i)
                time.sleep(0.2)
    return tuple(side.result() for side in sides)


def wait_for(predicate: Callable[[], object], timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise SystemExit("benchmark: timed out waiting for the server")
        time.sleep(0.0005)
    return value


def print_row(label: str, row: dict[str, object]) -> None:
    lat = list(row["latencies"])  # type: ignore[call-overload]
    counts = list(row["counts"])  # type: ignore[call-overload]
    printed = list(row["printed"])  # type: ignore[call-overload]
    per_save = f"{min(counts)}-{max(counts)}" if min(counts) != max(counts) else str(counts[0])
    agree = f"{statistics.median(printed):.1f} ms" if printed else "-"
    reported = "-" if row["reported"] is None else f"{row['reported']} of {len(counts)}"
    print(f"   {label:<24}{percentile(lat, 50):>8.1f}{percentile(lat, 95):>8.1f}{max(lat):>8.1f}"
          f"{per_save:>11}{row['cpu']:>9.2f}%{agree:>23}{reported:>15}")


def print_server_row(label: str, row: dict[str, object], ref: dict[str, object]) -> None:
    lat = list(row["latencies"])  # type: ignore[call-overload]
    ref_lat = list(ref["latencies"])  # type: ignore[call-overload]
    printed = list(row["printed"])  # type: ignore[call-overload]
    ratio = statistics.median(lat) / statistics.median(ref_lat)
    agree = f"{statistics.median(printed):.1f} ms" if printed else "-"
    print(f"   {label:<24}{percentile(lat, 50):>8.1f}{percentile(lat, 95):>8.1f}{max(lat):>8.1f}"
          f"{ratio:>8.2f}{agree:>23}")


if __name__ == "__main__":
    main()
