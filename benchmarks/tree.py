#!/usr/bin/env python3
"""Watching a big tree: reentr against a minimal recursive inotify watcher, in one run.

Builds a 100,000-file git repository, 80 % of it in gitignored directories (node_modules/,
build/, .venv/), and measures for each watcher:
- launch -> first detected change: a file is rewritten every 10 ms from launch until the
  watcher reports it; the time of the report, from launch;
- peak RSS (VmHWM), the number of inotify watches (/proc/PID/fdinfo), and CPU while idle.
The two are launched in turn, `--rounds` times (5), and the launch figures are medians: a
single launch on a shared machine varies by a fifth.

reentr runs with its modules compiled to bytecode, as `pip install` leaves them (the script
compiles them first: an editable install under PYTHONDONTWRITEBYTECODE would compile them at
every start).

The reference is the minimal pure-Python watcher of #32. Targets: launch -> change <= 1.4 x
the reference (#32; 1.6 x before it); watches <= 1.1 x the unignored directories; peak RSS
under 40 MB; no CPU while idle.

    python benchmarks/tree.py [--files 100000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import compile_reentr, idle_cpu, reentr_command, stop

REFERENCE = r"""
# The reference: inotify on every directory of the tree (as a recursive watcher does), no
# ignore rules; print 'hit' on the first event for the probe file.
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(0)
for directory, dirs, files in os.walk(sys.argv[1]):
    dirs[:] = [d for d in dirs if d != ".git"]
    libc.inotify_add_watch(fd, directory.encode(), 0x2 | 0x8 | 0x80 | 0x100 | 0x200)
try:
    while True:
        data = os.read(fd, 65536)
        if b"probe.txt" in data:
            print("hit", flush=True)
except KeyboardInterrupt:  # how the benchmark stops it
    pass
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reentr-tree-") as tmp:
        root = Path(tmp) / "repo"
        unignored_dirs = build(root, args.files)
        print(f"tree: {args.files} files, {unignored_dirs} directories not ignored "
              f"(80 % of the files are in ignored directories)\n")
        print(f"{'watcher':<24}{'launch->change':>16}{'watches':>9}{'peak RSS':>10}"
              f"{'idle CPU':>10}")
        reentr = [*reentr_command(), "watch", "-n", "-p", "-q", "--", "echo", "hit"]
        compile_reentr()
        watchers = [("reference (inotify)", [sys.executable, "-c", REFERENCE, "."]),
                    ("reentr watch", reentr)]
        launches: dict[str, list[float]] = {label: [] for label, _ in watchers}
        rows: dict[str, tuple[int, int, float]] = {}
        for round_ in range(args.rounds):
            for label, argv in watchers:
                first, watches, rss_kb, cpu = measure(argv, root, full=round_ == 0)
                launches[label].append(first)
                rows.setdefault(label, (watches, rss_kb, cpu))
        firsts = []
        for label, _ in watchers:
            watches, rss_kb, cpu = rows[label]
            first = statistics.median(launches[label])
            firsts.append(first)
            print(f"{label:<24}{first:>13.0f} ms{watches:>9}{rss_kb / 1024:>7.1f} MB"
                  f"{cpu:>9.2f}%   (launches: "
                  f"{', '.join(f'{x:.0f}' for x in launches[label])} ms)")
        ratio = firsts[1] / firsts[0]
        print(f"\nreentr against the reference, launch -> change (medians): {ratio:.2f} x "
              f"({'met' if ratio <= 1.4 else 'MISSED'})")
        print(f"Targets: <= 1.4 x the reference; watches <= {1.1 * unignored_dirs:.0f} "
              f"(1.1 x {unignored_dirs}); peak RSS < 40 MB; idle CPU ~0.")




def build(root: Path, files: int) -> int:
    """The tree; returns how many directories are not ignored (the root included)."""
    per_dir = 25
    ignored = files * 8 // 10
    kept = files - ignored
    (root / "src").mkdir(parents=True)
    (root / ".gitignore").write_text("node_modules/\nbuild/\n.venv/\n*.log\n")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    dirs = 2  # the root, src
    for i in range(0, kept, per_dir):
        directory = root / "src" / f"pkg{i // 500}" / f"mod{i // per_dir}"
        if not directory.exists():
            directory.mkdir(parents=True)
            dirs += 1 + (i % 500 == 0)
        for j in range(min(per_dir, kept - i)):
            (directory / f"f{j}.py").touch()
    for i in range(0, ignored, per_dir):
        top = ("node_modules", "build", ".venv")[i // per_dir % 3]
        directory = root / top / f"dep{i // 1000}" / f"d{i // per_dir}"
        directory.mkdir(parents=True, exist_ok=True)
        for j in range(min(per_dir, ignored - i)):
            (directory / f"x{j}.js").touch()
    return dirs


def measure(argv: list[str], root: Path, *, full: bool) -> tuple[float, int, int, float]:
    """Launch -> change; with `full`, the watches, peak RSS and idle CPU too (else zeros)."""
    probe = root / "src" / "probe.txt"
    hit = threading.Event()
    start = time.monotonic()
    proc = subprocess.Popen(argv, cwd=root, stdout=subprocess.PIPE, text=True,
                            start_new_session=True)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == "hit":
                hit.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        n = 0
        # Every 10 ms leaves the watchers' 2 ms quiet window room to end a batch.
        while not hit.wait(0.010):
            n += 1
            probe.write_text(str(n))
            if time.monotonic() - start > 60:
                raise SystemExit(f"no change detected within 60 s: {argv[0]}")
        first = (time.monotonic() - start) * 1000
        if not full:
            return first, 0, 0, 0.0
        time.sleep(1.0)  # let the run end and the watcher settle
        watches = sum(Path(f"/proc/{proc.pid}/fdinfo/{fd}").read_text().count("inotify wd:")
                      for fd in os.listdir(f"/proc/{proc.pid}/fdinfo"))
        cpu = idle_cpu(proc.pid, 3.0)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        rss_kb = int(next(line for line in status.splitlines()
                          if line.startswith("VmHWM")).split()[1])
        return first, watches, rss_kb, cpu
    finally:
        stop(proc, signal.SIGINT, 10)




if __name__ == "__main__":
    main()
