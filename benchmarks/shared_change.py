#!/usr/bin/env python3
"""`reentr up`: a change that two services want, against each one's restart alone, in one run.

Two services (tests/apps/service.py, each on a socket reentr holds, with a `ready-url`
probe) each build for 300 ms (`sleep 0.3`, then their version from `shared/` and their own
directory). An edit of `only-a/` or `only-b/` restarts one service alone; an edit of `shared/`
restarts both. Two shapes: independent, and b depending on a (the README's store and api),
where b's build runs beside a's and only its swap waits for the new a.

Prints, per shape, edit -> served (ms, median; from just before the write until the last of
the services wanted answers with the new version): a alone, b alone, both, and both against
the slower alone. Targets (the `reentr up` issue): independent <= 1.1 x the slower alone; with
b depending on a, both cost one build, not two (well under the sum of the two alone).

    python benchmarks/shared_change.py [--edits 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Observer, compile_reentr, reentr_command, stop, wait

from helpers import free_ports

SERVICE = Path(__file__).resolve().parent.parent / "tests" / "apps" / "service.py"
BUILD = "sleep 0.3 && cat ../shared/v.txt ../only-{name}/v.txt | tr -d '\\n' > version.txt"
SHAPES: dict[str, dict[str, list[str]]] = {
    "independent": {"a": [], "b": []}, "b depends on a": {"a": [], "b": ["a"]}}


def make_project(root: Path, ports: dict[str, int], graph: dict[str, list[str]]) -> None:
    (root / "shared").mkdir(parents=True)
    (root / "shared" / "v.txt").write_text("s0\n")
    lines = ["restart = true", ""]
    for name, depends in graph.items():
        (root / name).mkdir()
        (root / f"only-{name}").mkdir()
        (root / f"only-{name}" / "v.txt").write_text(f"{name}0\n")
        shutil.copy(SERVICE, root / name / "service.py")
        lines += [f"[services.{name}]", f"cwd = {json.dumps(name)}",
                  f"paths = {json.dumps(['../shared', f'../only-{name}'])}",
                  f"build = {json.dumps(BUILD.format(name=name))}",
                  f"command = {json.dumps([sys.executable, 'service.py'])}",
                  f"socket = [{ports[name]}]",
                  f"ready-url = {json.dumps(f'http://127.0.0.1:{ports[name]}/')}",
                  f"depends-on = {json.dumps(depends)}", ""]
    (root / "reentr.toml").write_text("\n".join(lines))


def served(observers: dict[str, Observer], wanted: dict[str, str], began: int) -> float:
    """ms from `began` until each service in `wanted` answered with its version."""
    at = [wait(lambda o=observers[n], v=v: o.served(v, began), 30, f"{n} serving {v}")
          for n, v in wanted.items()]
    return (max(at) - began) / 1e6


def measure(work: Path, shape: str, edits: int) -> dict[str, float]:
    graph = SHAPES[shape]
    root = work / shape.replace(" ", "-")
    ports = dict(zip(graph, free_ports(len(graph)), strict=True))
    make_project(root, ports, graph)
    proc = subprocess.Popen([*reentr_command(), "up", "-n", "-q"], cwd=root,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            start_new_session=True)
    observers = {name: Observer(port) for name, port in ports.items()}
    times: dict[str, list[float]] = {"a": [], "b": [], "both": []}
    own = {name: f"{name}0" for name in graph}
    shared = "s0"
    try:
        served(observers, {n: shared + own[n] for n in graph}, 0)
        for i in range(1, edits + 1):
            for what in ("a", "b", "both"):
                began = time.monotonic_ns()
                if what == "both":
                    shared = f"s{i}"
                    (root / "shared" / "v.txt").write_text(shared + "\n")
                    wanted = {n: shared + own[n] for n in graph}
                else:
                    own[what] = f"{what}{i}"
                    (root / f"only-{what}" / "v.txt").write_text(own[what] + "\n")
                    wanted = {what: shared + own[what]}
                times[what].append(served(observers, wanted, began))
    finally:
        for observer in observers.values():
            observer.close()
        stop(proc, signal.SIGINT, 10)
    return {what: statistics.median(values) for what, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edits", type=int, default=5, help="edits of each kind (5)")
    args = parser.parse_args()
    compile_reentr()
    print(f"reentr up, a change two services want, {args.edits} edits of each kind "
          "(edit -> served, ms, median; each build 300 ms)\n")
    print(f"{'shape':<17}{'a alone':>9}{'b alone':>9}{'both':>7}{'both / slower alone':>21}")
    with tempfile.TemporaryDirectory(prefix="reentr-shared-") as tmp:
        for shape in SHAPES:
            row = measure(Path(tmp), shape, args.edits)
            ratio = row["both"] / max(row["a"], row["b"])
            print(f"{shape:<17}{row['a']:>9.0f}{row['b']:>9.0f}{row['both']:>7.0f}"
                  f"{ratio:>20.2f}x", flush=True)
    print("\ntargets: independent <= 1.10 x; with b depending on a, one build's time, not two")


if __name__ == "__main__":
    main()
