#!/usr/bin/env python3
"""Runs per burst: a program writes one file 50 times as fast as it can (each write an open,
write, close, as a code generator or a `git checkout` does), and reentr should run its command
once for the burst, on a quiet machine and with a busy loop on every core and one more.

reentr runs `-r` on a program that never ends, so every batch it acts on is a restart; the
figure is restarts per burst, from its `--events` stream. Each burst waits for reentr to have
restarted and been quiet for 300 ms before the next.

Targets (the reliability issue): 1 run per burst on a quiet machine, at most 1.2 on average
under load, without giving up the 2 ms default on a quiet machine (`benchmarks/latency.py`).

    python benchmarks/storm.py [--bursts 20] [--writes 50]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from common import reentr_command, stop

FOREVER = [sys.executable, "-c", "import signal; signal.pause()"]
BUSY = [sys.executable, "-c", "while True: pass"]


def starts(events: Path) -> int:
    if not events.exists():
        return 0
    return sum(1 for line in events.read_text().split("\n")[:-1]  # whole lines only
               if json.loads(line)["event"] == "spawned")


def settle(events: Path, quiet: float = 0.3, timeout: float = 30.0) -> int:
    """The number of starts, once it has not changed for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    count, since = starts(events), time.monotonic()
    while time.monotonic() - since < quiet:
        if time.monotonic() > deadline:
            raise SystemExit("storm: reentr did not settle")
        time.sleep(0.02)
        now = starts(events)
        if now != count:
            count, since = now, time.monotonic()
    return count


def burst(path: Path, writes: int) -> None:
    for i in range(writes):
        with open(path, "w") as f:
            f.write(f"{i}\n")


@contextlib.contextmanager
def busy(loops: int) -> Iterator[None]:
    procs = [subprocess.Popen(BUSY, start_new_session=True) for _ in range(loops)]
    try:
        yield
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def runs_per_burst(root: Path, bursts: int, writes: int) -> list[int]:
    data = root / "data.txt"
    data.write_text("start\n")
    events = root.parent / f"{root.name}.jsonl"
    argv = [*reentr_command(), "-r", "-n", "-q", "--events", str(events), *FOREVER]
    proc = subprocess.Popen(argv, cwd=root, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    assert proc.stdin is not None
    proc.stdin.write(b"data.txt\n")
    proc.stdin.close()
    try:
        before = settle(events)
        counts = []
        for _ in range(bursts):
            burst(data, writes)
            after = settle(events)
            counts.append(after - before)
            before = after
        return counts
    finally:
        stop(proc, signal.SIGINT, 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bursts", type=int, default=20)
    parser.add_argument("--writes", type=int, default=50)
    args = parser.parse_args()
    loops = (os.cpu_count() or 1) + 1
    print(f"{args.writes}-write bursts, {args.bursts} per case; reentr -r, default --debounce\n")
    print(f"{'case':<28}{'runs per burst':>15}{'max':>6}{'bursts split':>14}")
    with tempfile.TemporaryDirectory(prefix="reentr-storm-") as tmp:
        for name, load in (("quiet machine", 0), (f"{loops} busy loops", loops)):
            root = Path(tmp) / name.replace(" ", "-")
            root.mkdir()
            with busy(load):
                counts = runs_per_burst(root, args.bursts, args.writes)
            split = sum(1 for c in counts if c > 1)
            print(f"{name:<28}{sum(counts) / len(counts):>15.2f}{max(counts):>6}"
                  f"{split:>8} of {len(counts)}", flush=True)


if __name__ == "__main__":
    main()
