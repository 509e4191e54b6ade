#!/usr/bin/env python3
"""The Go loop, edit -> served: reentr `--build 'go build -o app .'` against a minimal reference
loop, in one run, on a real Go server (tests/apps/server.go) in a fresh `go mod init` project.

The reference (below) is the least a loop can do: inotify on the project, then `go build`,
SIGTERM to the old server, wait, start the new one. reentr runs with `-r`, `-r --socket` and
`--handoff --socket`, each with `--ready-url` on the server's address: ready means "answers a
request", as the outside client sees it. The reference and reentr each have
a project and a port of their own and are edited in turn, so the machine's load falls on both.
An observer polls each server every millisecond; `edit -> served` is from just before the
write until the first answer with the new version. reentr's own figure is its `restart`
event's `total_ms`.

Targets (the Go loop issue): reentr <= 1.05 x the reference at p50 (the build dominates:
reentr must add next to nothing), and |reentr's total - edit -> served| <= 3 ms at the median.

    python benchmarks/go_loop.py [--runs 10] [--mode restart,socket,handoff]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from common import REFERENCE, Observer, reentr_command, stop, wait

from helpers import free_ports
from reentr.timing import percentile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "apps"))
from real_servers import restart_totals

SERVER = Path(__file__).resolve().parent.parent / "tests" / "apps" / "server.go"
BUILD = "go build -o app ."

MODES = {
    "restart": ["-r"],
    "socket": ["-r", "--socket", "{port}"],
    "handoff": ["--handoff", "--socket", "{port}"],
}


def project(root: Path) -> Path:
    root.mkdir()
    subprocess.run(["go", "mod", "init", "example.com/bench"], cwd=root, check=True,
                   capture_output=True, env=go_env())
    (root / "main.go").write_text(SERVER.read_text())
    return root


def go_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "GOPROXY": "off", **extra}


def set_version(main: Path, version: str) -> None:
    text = main.read_text()
    start = text.index('const version = "') + len('const version = "')
    main.write_text(text[:start] + version + text[text.index('"', start):])


@contextlib.contextmanager
def running(argv: list[str], cwd: Path, port: int) -> Iterator[Observer]:
    proc = subprocess.Popen(argv, cwd=cwd, env=go_env(PORT=str(port)), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    observer = Observer(port)
    try:
        wait(lambda: observer.served("v0", 0), 120, "the first build to serve")
        yield observer
    finally:
        observer.close()
        stop(proc, signal.SIGINT, 10)


def edit_served(main: Path, observer: Observer, version: str) -> float:
    """Edit main.go to `version`; ms from just before the write until it is served."""
    before = time.monotonic_ns()
    set_version(main, version)
    served = wait(lambda: observer.served(version, before), 60, f"{version} to be served")
    return (served - before) / 1e6


def measure(work: Path, mode: str, runs: int) -> dict[str, object]:
    ref_dir, own_dir = project(work / f"ref-{mode}"), project(work / f"reentr-{mode}")
    events = work / f"events-{mode}.jsonl"
    ref_port, own_port = free_ports(2)
    options = [word.format(port=own_port) for word in MODES[mode]]
    argv = [*reentr_command(), "watch", "-n", "-q", "--build", BUILD, *options,
            "--ready-url", f"http://127.0.0.1:{own_port}/", "--events", str(events), "--", "./app"]
    ref_ms: list[float] = []
    own_ms: list[float] = []
    reference = [sys.executable, "-c", REFERENCE, "restart", str(ref_dir / "main.go"), BUILD,
                 "./app"]
    with running(reference, ref_dir, ref_port) as ref, \
            running(argv, own_dir, own_port) as own:
        failed_before = own.failed
        for i in range(1, runs + 1):
            # In turn, the order alternating, so that neither always builds on a warmer cache.
            pair = [(ref_dir, ref, ref_ms), (own_dir, own, own_ms)]
            for root, observer, times in pair if i % 2 else reversed(pair):
                other = ref if observer is own else own
                other.active.clear()
                times.append(edit_served(root / "main.go", observer, f"v{i}"))
                other.active.set()
                if observer is own:
                    # The next edit waits for this restart's report: one restart per edit.
                    wait(lambda n=i: len(restart_totals(events)) >= n, 10, f"reentr's restart #{i}")
        failed = own.failed - failed_before
        wait(lambda: len(restart_totals(events)) >= runs, 10, "reentr's restart events")
    printed = restart_totals(events)
    return {"mode": mode, "reentr": own_ms, "reference": ref_ms, "failed": failed,
            "restarts_reported": len(printed),
            "printed_vs_outside": [abs(p - o) for p, o in zip(printed, own_ms, strict=False)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="edits per mode (default 10)")
    parser.add_argument("--mode", default=",".join(MODES), help="modes to measure")
    args = parser.parse_args()
    if shutil.which("go") is None:
        raise SystemExit("go_loop: go is not installed (Debian: apt-get install golang-go)")
    version = subprocess.run(["go", "version"], check=True, capture_output=True, text=True)
    print(f"The Go loop, edit -> served, {args.runs} edits per mode; {version.stdout.strip()}\n")
    print(f"{'mode':<10}{'reentr p50':>11}{'p95':>7}{'reference p50':>15}{'p95':>7}"
          f"{'ratio p50':>11}{'failed':>8}{'restarts':>10}{'|printed-outside| p50':>23}")
    with tempfile.TemporaryDirectory(prefix="reentr-go-loop-") as tmp:
        for mode in args.mode.split(","):
            row = measure(Path(tmp), mode, args.runs)
            own, ref = row["reentr"], row["reference"]
            assert isinstance(own, list) and isinstance(ref, list)
            diffs = row["printed_vs_outside"]
            assert isinstance(diffs, list)
            print(f"{mode:<10}{percentile(own, 50):>11.0f}{percentile(own, 95):>7.0f}"
                  f"{percentile(ref, 50):>15.0f}{percentile(ref, 95):>7.0f}"
                  f"{percentile(own, 50) / percentile(ref, 50):>10.2f}x{row['failed']:>8}"
                  f"{row['restarts_reported']:>5}/{args.runs:<4}"
                  f"{statistics.median(diffs):>19.1f} ms", flush=True)


if __name__ == "__main__":
    main()
