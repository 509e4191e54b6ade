#!/usr/bin/env python3
"""The pauses inside a burst: how long a program that writes one file 50 times in a row (each
write an open, write, close, as `storm.py` does) waits between two writes, while reentr
watches the file, and so how often each quiet window would cut such a burst in two.

A window ends a burst once no event has come for that long; a pause longer than the window,
before a longer one has widened it, splits the burst into two runs. The writer stamps the
clock before each write; the longest pause of each burst is what a window must outlast. The
same bursts are then written with nothing watching: the writer's own pauses.

    python benchmarks/pauses.py [--bursts 200] [--writes 50]
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from common import reentr_command, stop

WINDOWS_MS = (0.3, 0.5, 1.0, 1.5, 2.0, 3.0)


def bursts(data: Path, count: int, writes: int) -> tuple[list[float], Counter[int]]:
    """The longest pause of each of `count` bursts, and after which write it came."""
    longest, where = [], Counter[int]()
    for _ in range(count):
        stamps = []
        for i in range(writes):
            stamps.append(time.perf_counter())
            with open(data, "w") as f:
                f.write(f"{i}\n")
        stamps.append(time.perf_counter())
        pauses = [(b - a) * 1e3 for a, b in itertools.pairwise(stamps)]
        longest.append(max(pauses))
        where[pauses.index(max(pauses))] += 1
        time.sleep(0.15)  # reentr's restart, and quiet
    return longest, where


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bursts", type=int, default=200)
    parser.add_argument("--writes", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reentr-pauses-") as tmp:
        data = Path(tmp) / "data.txt"
        data.write_text("start\n")
        proc = subprocess.Popen([*reentr_command(), "-r", "-q", "-n", "true"],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, cwd=tmp, start_new_session=True)
        assert proc.stdin is not None
        proc.stdin.write(f"{data}\n".encode())
        proc.stdin.close()
        time.sleep(1.0)  # reentr's start, before the first burst
        try:
            longest, where = bursts(data, args.bursts, args.writes)
        finally:
            stop(proc, signal.SIGINT, 10)
        alone, alone_where = bursts(data, args.bursts // 4, args.writes)
    n = len(longest)
    print(f"{n} bursts of {args.writes} writes, reentr -r watching the file ({os.cpu_count()} "
          "cores)\n")
    print(f"longest pause of a burst: median {statistics.median(longest):.2f} ms, "
          f"max {max(longest):.2f} ms")
    print(f"the same bursts with nothing watching: median {statistics.median(alone):.2f} ms, "
          f"max {max(alone):.2f} ms (the writer's own pauses)")
    print(f"the longest pause follows the first write in {where[0]} of {n} bursts "
          f"({alone_where[0]} of {len(alone)} with nothing watching)\n")
    print(f"{'quiet window':<14}{'bursts with a longer pause':>28}")
    for window in WINDOWS_MS:
        over = sum(pause > window for pause in longest)
        print(f"{window:>8.1f} ms   {over:>10} of {n} ({100 * over / n:.1f} %)")


if __name__ == "__main__":
    main()
