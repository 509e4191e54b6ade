#!/usr/bin/env python3
"""Where change -> spawn goes, stage by stage, in one run.

reentr runs in entr mode (`reentr -n STAMP < watched.txt`), started as the real command line
but in an interpreter that first wraps a few of its functions to note when they are called
and when they return (they are called through, unchanged). STAMP is a tiny static program that
prints CLOCK_MONOTONIC as it starts. Each save is stamped just before the write; the stages:

    write -> woken       the kernel's event, and the watcher thread woken by SIGIO
    woken -> quiet       the quiet window that ends a burst (--debounce)
    quiet -> taken       watchfiles hands over its batch
    taken -> queued      the batch sorted, filtered, its traits read, put on the queue
    queued -> decided    the loop wakes, the policy decides
    decided -> exec      the runner works out the start and calls Popen (fork and exec)
    exec -> running      the program runs its first instruction (CLOCK_MONOTONIC)

    python benchmarks/breakdown.py [--saves 30] [--debounce 2ms]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from common import compile_reentr, stop

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

TRACED = textwrap.dedent("""
    import functools, os, sys, time
    from reentr import events, policy, process
    from reentr.cli import main
    from reentr.runner import EventQueue
    from reentr.watch.wakeup import Wakeup

    out = open(os.environ["REENTR_STAMPS"], "a", buffering=1)

    def note(what):
        out.write(f"{what} {time.monotonic_ns()}\\n")

    def around(owner, name, before=None, after=None, when=lambda *a, **k: True):
        original = getattr(owner, name)

        @functools.wraps(original)
        def traced(*args, **kwargs):
            mine = when(*args, **kwargs)
            if mine and before:
                note(before)
            result = original(*args, **kwargs)
            if mine and after:
                note(after)
            return result
        setattr(owner, name, traced)

    around(Wakeup, "_absorb", before="woken", after="quiet")
    around(Wakeup, "batch_taken", before="taken")
    around(EventQueue, "put", before="queued",
           when=lambda self, item: isinstance(item, events.FilesChanged))
    around(policy, "step", after="decided",
           when=lambda config, state, event, now=0: isinstance(event, events.FilesChanged))
    around(process, "start", before="exec", after="returned",
           when=lambda role, *a, **k: role is events.Role.TARGET)
    sys.argv = ["reentr", *sys.argv[1:]]
    main()
""")

STAGES = [("write", "woken"), ("woken", "quiet"), ("quiet", "taken"), ("taken", "queued"),
          ("queued", "decided"), ("decided", "exec"), ("exec", "running")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=30)
    parser.add_argument("--debounce", default="2ms")
    args = parser.parse_args()
    compile_reentr()
    work = Path(tempfile.mkdtemp(prefix="reentr-breakdown-"))
    (work / "stamp.c").write_text(STAMP_C)
    subprocess.run(["cc", "-O2", "-static", "-o", str(work / "stamp"), str(work / "stamp.c")],
                   check=True)
    watched = work / "watched.txt"
    watched.write_text("0")
    stamps = Path(tempfile.mkdtemp(prefix="reentr-stamps-")) / "stamps.txt"  # not watched
    proc = subprocess.Popen(
        [sys.executable, "-c", TRACED, "-n", "--debounce", args.debounce, str(work / "stamp")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=work,
        env={**os.environ, "REENTR_STAMPS": str(stamps)}, start_new_session=True)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(f"{watched}\n")
    proc.stdin.close()
    proc.stdout.readline()  # the first run
    rows: list[dict[str, int]] = []
    try:
        for number in range(args.saves):
            stamps.write_text("")
            time.sleep(0.2)  # the last run's program is long gone; the machine is quiet
            before = time.monotonic_ns()
            watched.write_text(str(number))
            running = int(proc.stdout.readline())
            noted = [(what, int(at)) for what, at in
                     (line.split() for line in stamps.read_text().splitlines())]
            # Each stage's stamp is the first of its kind after the stage before it: the
            # watcher also wakes for events that lead to nothing (a close after a write).
            seen = {"write": before}
            for start, end in STAGES[:-1]:
                seen[end] = next((at for what, at in noted if what == end and at >= seen[start]),
                                 seen[start])
            seen["running"] = running
            rows.append(seen)
    finally:
        stop(proc, 2, 10)  # SIGINT
    print(f"change -> spawn, by stage (median of {len(rows)} saves, ms; "
          f"--debounce {args.debounce}):")
    total = statistics.median((r["running"] - r["write"]) / 1e6 for r in rows)
    for start, end in STAGES:
        values = [(r[end] - r[start]) / 1e6 for r in rows if start in r and end in r]
        print(f"  {start:>8} -> {end:<8} {statistics.median(values):7.2f}")
    print(f"  {'total':>20} {total:7.2f}")
    print(json.dumps({"saves": len(rows)}))


if __name__ == "__main__":
    main()
