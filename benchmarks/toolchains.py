#!/usr/bin/env python3
"""Real toolchains, outputs in the tree: builds per edit, restarts per edit, and edit -> served
for reentr against a hand-written loop (build; stop; start), on the same kind of project, in
one run.

Each toolchain's project (tests/apps/projects.py: make with `*.o` beside the sources, `cargo
new` with and without its .gitignore, `go build -o app`, tsc writing `dist/`) is made twice:
one for `reentr watch --build BUILD -r -- PROGRAM`, one for the reference, which waits for the
edited file's inotify event and then builds, stops and starts, and nothing else. The two are
edited in turn, the order alternating. `edit -> served` is from just before the save until
the program prints `served vN`.

Targets (the untidy-project issue): 1.00 builds per edit and 1.00 restarts per edit, and
reentr's edit -> served <= 1.05 x the reference's at the median.

    python benchmarks/toolchains.py [--edits 10] [--kind make,cargo,...]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import REFERENCE, reentr_command, stop, wait

from reentr.timing import percentile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "apps"))
from projects import KINDS, Project, environment, install_typescript, make_project

SERVED = re.compile(rb"^served v(\d+)$")


class Lines:
    """When the program first printed `served vN`, for each N, read from a pipe in a thread."""

    def __init__(self, proc: subprocess.Popen[bytes]):
        self.first: dict[int, int] = {}
        assert proc.stdout is not None
        self._thread = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for line in iter(stream.readline, b""):  # type: ignore[attr-defined]
            found = SERVED.match(line.rstrip())
            if found:
                self.first.setdefault(int(found.group(1)), time.monotonic_ns())


def start(
    argv: list[str], cwd: Path, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], Lines]:
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    return proc, Lines(proc)


def counts(events: Path) -> tuple[int, int]:
    """Builds and starts of the program so far, from reentr's --events file."""
    builds = starts = 0
    for line in events.read_text().split("\n")[:-1]:
        record = json.loads(line)
        if record["event"] == "start":
            builds += record["role"] == "build"
            starts += record["role"] == "target"
    return builds, starts


def measure(work: Path, kind: str, edits: int, programs: dict[str, str]) -> dict[str, float]:
    ref_project = make_project(kind, work / f"ref-{kind}" / "greeter", programs)
    own_project = make_project(kind, work / f"reentr-{kind}" / "greeter", programs)
    events = work / f"events-{kind}.jsonl"
    reference = [sys.executable, "-c", REFERENCE, "restart", str(ref_project.edited),
                 ref_project.build, *ref_project.command]
    own = [*reentr_command(), "watch", "-n", "-q", "--events", str(events), "--build",
           own_project.build, "-r", "--", *own_project.command]
    env = environment(programs)
    ref_proc, ref_lines = start(reference, ref_project.root, env)
    own_proc, own_lines = start(own, own_project.root, env)
    ref_ms: list[float] = []
    own_ms: list[float] = []
    try:
        for lines in (ref_lines, own_lines):
            wait(lambda lines=lines: lines.first.get(1), 300, f"{kind}: the first build")
        for n in range(2, edits + 2):
            pair: list[tuple[Project, Lines, list[float]]] = [
                (ref_project, ref_lines, ref_ms), (own_project, own_lines, own_ms)]
            for project, lines, times in pair if n % 2 else reversed(pair):
                before = time.monotonic_ns()
                project.write(n)
                served = wait(lambda lines=lines, n=n: lines.first.get(n), 120,
                              f"{kind}: v{n} to be served")
                times.append((served - before) / 1e6)
        builds, starts = counts(events)
    finally:
        stop(own_proc, signal.SIGINT, 10)
        stop(ref_proc, signal.SIGINT, 10)
    return {"builds": (builds - 1) / edits, "restarts": (starts - 1) / edits,
            "reentr": percentile(own_ms, 50), "reference": percentile(ref_ms, 50)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edits", type=int, default=10, help="edits per toolchain (10)")
    parser.add_argument("--kind", default=",".join(KINDS), help="toolchains to measure")
    args = parser.parse_args()
    kinds = args.kind.split(",")
    programs = {name: found for name in ("cargo", "go", "npm", "make")
                if (found := shutil.which(name)) is not None}
    print(f"Real toolchains, {args.edits} edits each: edit -> served (ms, median), "
          "reentr against a hand-written loop (build; stop; start)\n")
    print(f"{'toolchain':<20}{'builds/edit':>12}{'restarts/edit':>15}{'reentr':>9}"
          f"{'loop':>8}{'ratio':>8}")
    with tempfile.TemporaryDirectory(prefix="reentr-toolchains-") as tmp:
        for kind in kinds:
            tool = "make" if kind == "make" else "npm" if kind == "tsc" else kind.split("-")[0]
            if tool not in programs:
                print(f"{kind:<20}skipped: {tool} is not installed")
                continue
            if kind == "tsc":
                programs["tsc"] = install_typescript(programs["npm"], Path(tmp) / "typescript")
            row = measure(Path(tmp), kind, args.edits, programs)
            print(f"{kind:<20}{row['builds']:>12.2f}{row['restarts']:>15.2f}"
                  f"{row['reentr']:>9.0f}{row['reference']:>8.0f}"
                  f"{row['reentr'] / row['reference']:>7.2f}x", flush=True)
    print("\ntargets: 1.00 builds and 1.00 restarts per edit; reentr <= 1.05 x the loop")


if __name__ == "__main__":
    main()
