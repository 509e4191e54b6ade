#!/usr/bin/env python3
"""Runs per burst: a program writes one file 50 times as fast as it can (each write an open,
write, close, as a code generator does), `git checkout` switches 200 files between two
branches (`reentr watch`), and vim saves a file (when it is installed); reentr should run its
command once for each, on a quiet machine and with a busy loop on every core and one more.

reentr runs `-r` on a program that never ends, so every batch it acts on is a restart; the
figure is restarts per burst, from its `--events` stream. Each burst waits for reentr to have
restarted and been quiet for 300 ms before the next.

Targets (the reliability issue): 1 run per burst on a quiet machine, at most 1.2 on average
under load, without giving up the short default window on a quiet machine
(`benchmarks/latency.py`).

    python benchmarks/storm.py [--bursts 20] [--writes 50] [--debounce 2ms]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
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


GIT = ["git", "-c", "user.name=storm", "-c", "user.email=storm@localhost"]


def repository(root: Path, files: int) -> None:
    """Two branches, `one` and `two`, that differ in `files` files of about 4 KB."""
    subprocess.run([*GIT, "init", "-q", "-b", "one", str(root)], check=True)
    for branch in ("one", "two"):
        if branch == "two":
            subprocess.run([*GIT, "checkout", "-q", "-b", "two"], cwd=root, check=True)
        for n in range(files):
            (root / f"m{n}.py").write_text(f"# {branch} {n}\n" + "x = 1\n" * 600)
        subprocess.run([*GIT, "add", "-A"], cwd=root, check=True)
        subprocess.run([*GIT, "commit", "-q", "-m", branch], cwd=root, check=True)


def runs_per_burst(
    root: Path, bursts: int, writes: int, kind: str, debounce: str | None
) -> list[int]:
    """Restarts per burst of `kind`: writes of one file (entr mode), a checkout (`reentr
    watch`) or a vim save (entr mode)."""
    data = root / "data.txt"
    data.write_text("start\n")
    events = root.parent / f"{root.name}.jsonl"
    window = [] if debounce is None else ["--debounce", debounce]
    if kind == "checkout":
        repository(root, 200)
        argv = [*reentr_command(), "watch", "-r", "-n", "-q", *window, "--events", str(events),
                "--", *FOREVER]
    else:
        argv = [*reentr_command(), "-r", "-n", "-q", *window, "--events", str(events),
                *FOREVER]
    proc = subprocess.Popen(argv, cwd=root, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    assert proc.stdin is not None
    proc.stdin.write(b"data.txt\n")
    proc.stdin.close()
    try:
        before = settle(events)
        counts = []
        for number in range(bursts):
            if kind == "checkout":
                branch = "one" if number % 2 == 0 else "two"  # it is on two
                subprocess.run([*GIT, "checkout", "-q", branch], cwd=root, check=True)
            elif kind == "vim":
                subprocess.run(["vim", "-u", "NONE", "-i", "NONE", "-N", "-es", "-c",
                                f"normal Gosave {number}", "-c", "wq", "data.txt"],
                               cwd=root, check=True, stdin=subprocess.DEVNULL)
            else:
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
    parser.add_argument("--debounce", default=None, help="reentr's --debounce (its default)")
    args = parser.parse_args()
    loops = (os.cpu_count() or 1) + 1
    print(f"{args.bursts} bursts per case; reentr -r, --debounce "
          f"{args.debounce or 'as its default'}\n")
    print(f"{'case':<40}{'runs per burst':>15}{'max':>6}{'bursts split':>14}")
    kinds = [(f"{args.writes} writes", "writes"), ("checkout of 200 files", "checkout")]
    if shutil.which("vim"):
        kinds.append(("vim save", "vim"))
    with tempfile.TemporaryDirectory(prefix="reentr-storm-") as tmp:
        for what, kind in kinds:
            for load_name, load in (("quiet machine", 0), (f"{loops} busy loops", loops)):
                name = f"{what}, {load_name}"
                root = Path(tmp) / f"{kind}-{load}"
                root.mkdir()
                with busy(load):
                    counts = runs_per_burst(root, args.bursts, args.writes, kind,
                                            args.debounce)
                split = sum(1 for c in counts if c > 1)
                print(f"{name:<40}{sum(counts) / len(counts):>15.2f}{max(counts):>6}"
                      f"{split:>8} of {len(counts)}", flush=True)


if __name__ == "__main__":
    main()
