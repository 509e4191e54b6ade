#!/usr/bin/env python3
"""Real servers, edit -> served: each server line of the README (uvicorn, gunicorn with 2
workers, Python's own server, Node) run by reentr exactly as the README runs it, in each mode
the server supports, while two observers poll it, each every millisecond.

Per server and mode it prints the requests that failed (both observers'), edit -> served
p50/p95 measured from the outside (from just before the write of version.txt until the first
answer with the new version), and how far reentr's own figure (its `restart` event's
`total_ms`, counted from the file's modification time to the readiness probe, or with
`--handoff` to the first connection the new server takes) lies from that, at the median.
Beside it, the reference: how far the second observer's edit -> served lies from the first's,
at the median. While two servers share a socket (`--handoff`), the kernel gives each
connection to either, so two identical stopwatches disagree too, and no figure can be read
closer than they agree.

Target (the real servers issue): |reentr's total - edit -> served| <= 3 ms at the median.

    python benchmarks/servers.py [--runs 20] [--server uvicorn,gunicorn,python,node]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Observer, reentr_command, stop, wait

from helpers import free_port
from reentr.timing import percentile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "apps"))
from real_servers import SERVERS, Server, make_project, restart_totals


def all_workers(observer: Observer, version: str, server: Server) -> None:
    """Every worker reads version.txt when it boots: the next edit waits until all serve."""
    wait(lambda: len(observer.pids.get(version, ())) >= server.workers, 60,
         f"{server.workers} workers serving {version}")


def measure(work: Path, server: Server, mode: str, runs: int) -> dict[str, object]:
    root, events, port = work / f"{server.name}-{mode}", work / f"{server.name}-{mode}.jsonl", \
        free_port()
    root.mkdir()
    make_project(root, server)
    proc = subprocess.Popen(
        [*reentr_command(), "watch", "-n", "-q", "--events", str(events),
         *server.argv(mode, port)],
        cwd=root, env={**os.environ, "PORT": str(port)},
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    observer, second = Observer(port), Observer(port)
    outside: list[float] = []
    other: list[float] = []
    try:
        wait(lambda: observer.served("v0", 0), 60, f"{server.name} to serve")
        all_workers(observer, "v0", server)
        failed_before = observer.failed + second.failed
        for number in range(1, runs + 1):
            version = f"v{number}"
            before = time.monotonic_ns()
            (root / "version.txt").write_text(version)
            served = wait(lambda v=version, b=before: observer.served(v, b), 60,
                          f"{version} served")
            outside.append((served - before) / 1e6)
            also = wait(lambda v=version, b=before: second.served(v, b), 60,
                        f"{version} served to the second observer")
            other.append((also - before) / 1e6)
            wait(lambda n=number: len(restart_totals(events)) >= n, 60, f"restart #{number}")
            all_workers(observer, version, server)
        failed = observer.failed + second.failed - failed_before
    finally:
        observer.close()
        second.close()
        stop(proc, signal.SIGINT, 10)
    printed = restart_totals(events)
    return {"server": server.name, "mode": mode, "failed": failed, "outside": outside,
            "printed": printed,
            "gap": [abs(p - o) for p, o in zip(printed, outside, strict=False)],
            "observers": [abs(a - b) for a, b in zip(other, outside, strict=True)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="edits per mode (default 20)")
    parser.add_argument("--server", default=",".join(SERVERS), help="servers to measure")
    args = parser.parse_args()
    print(f"Real servers, edit -> served, {args.runs} edits per mode; two observers poll, "
          "each every 1 ms\n")
    print(f"{'server':<10}{'mode':<9}{'failed':>7}{'p50':>7}{'p95':>7}"
          f"{'|printed-outside| p50':>23}{'|observer-observer| p50':>25}"
          f"{'restarts reported':>19}")
    with tempfile.TemporaryDirectory(prefix="reentr-servers-") as tmp:
        for name in args.server.split(","):
            server = SERVERS[name]
            if (missing := server.missing()) is not None:
                print(f"{name:<10}skipped: {missing}")
                continue
            for mode in server.modes:
                row = measure(Path(tmp), server, mode, args.runs)
                outside, gap, observers = row["outside"], row["gap"], row["observers"]
                assert isinstance(outside, list) and isinstance(gap, list)
                assert isinstance(observers, list)
                printed = row["printed"]
                assert isinstance(printed, list)
                print(f"{name:<10}{mode:<9}{row['failed']:>7}{percentile(outside, 50):>7.0f}"
                      f"{percentile(outside, 95):>7.0f}{statistics.median(gap):>20.1f} ms"
                      f"{statistics.median(observers):>22.1f} ms"
                      f"{len(printed):>10} of {len(outside)}", flush=True)


if __name__ == "__main__":
    main()
