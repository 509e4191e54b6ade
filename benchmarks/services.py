#!/usr/bin/env python3
"""`reentr up` with ten Python services (tests/apps/service.py, each on a socket reentr holds,
each with a `ready-url` probe), in three shapes: ten in a line (each starts alone); a tree of
`depends-on` four deep (up to four start at once, on a machine of two cores); and the same
tree of services that each first wait 200 ms, as one does for its database (what starts
together then waits side by side instead of competing for the cores).

First, against a Procfile runner: ten processes of one Procfile, from the command to all ten
running, reentr up and honcho in turn, best of five (`procfile.py`; #32's target: <= 1.15 x
honcho). Then, for each shape, it prints:
- first spawn -> all ready: from the moment reentr spawns the first service to the last one's
  readiness, against the longest chain of the services' own start-up times (each measured
  alone, from spawn to its first answer, in the same run; target <= 1.1 x), and against a
  minimal launcher that starts the same services in the same order; reentr's own start-up
  (from the command to the first spawn) beside it, and the ratio counted from the command;
- reentr's own memory (RSS) and idle CPU with ten services (target: <= 60 MiB, ~0 %);
- for the tree, edit -> served per service (from just before the write of its version.txt to
  its first answer with the new version), and whether every other service kept its process;
- a change that two services want, independent or one depending on the other, against each
  one's restart alone (`shared_change.py`; target for independent services <= 1.1 x).

    python benchmarks/services.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import procfile
import shared_change
from common import (
    Observer,
    compile_reentr,
    http_body,
    idle_cpu,
    reentr_command,
    stop,
    wait,
)

from helpers import free_port, free_ports
from reentr.timing import percentile

SERVICE = Path(__file__).resolve().parent.parent / "tests" / "apps" / "service.py"
Graph = dict[str, list[str]]
"""Each service, and those it depends on."""
TREE: Graph = {
    "s0": [], "s1": ["s0"], "s2": ["s0"], "s3": ["s1"], "s4": ["s1"], "s5": ["s2"],
    "s6": ["s3"], "s7": ["s3"], "s8": ["s4"], "s9": ["s5"],
}
"""A tree four deep: the longest chain is s0 -> s1 -> s3 -> s6, and up to four services start
at once."""
CHAIN: Graph = {f"s{n}": [f"s{n - 1}"] if n else [] for n in range(10)}
"""Ten in a line, each starting alone: what reentr adds to each link, and nothing else."""


PYTHON = [sys.executable, "service.py"]
"""A service whose start-up is its own work (Python's start and imports): services that start
together compete for the cores."""
WAITING = ["sh", "-c", f"sleep 0.2 && exec {sys.executable} service.py"]
"""A service that first waits 200 ms, as one does for its database: services that start
together wait side by side."""


def make_project(root: Path, ports: dict[str, int], graph: Graph, argv: list[str]) -> None:
    lines = [f"command = {json.dumps(argv)}", "restart = true", ""]
    for name, depends in graph.items():
        (root / name).mkdir(parents=True)
        shutil.copy(SERVICE, root / name / "service.py")
        (root / name / "version.txt").write_text("v0\n")
        lines += [f"[services.{name}]", f"cwd = {json.dumps(name)}",
                  f"socket = [{ports[name]}]",
                  f"ready-url = {json.dumps(f'http://127.0.0.1:{ports[name]}/')}",
                  f"depends-on = {json.dumps(depends)}", ""]
    (root / "reentr.toml").write_text("\n".join(lines))


def own_startup(root: Path, name: str, argv: list[str]) -> float:
    """How long the service takes alone, from spawn to its first answer, in ms."""
    port = free_port()
    began = time.monotonic_ns()
    proc = subprocess.Popen(argv, cwd=root / name,
                            env={**os.environ, "PORT": str(port)},
                            stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        at = wait(lambda: time.monotonic_ns() if http_body(port) else 0, 30, f"{name} alone")
    finally:
        stop(proc, signal.SIGTERM, 5)
    return (at - began) / 1e6


def reference_up(root: Path, graph: Graph, argv: list[str]) -> float:
    """The same services started by a minimal launcher, in the same order (each once those it
    depends on answer, each polled every 2 ms), on ports they bind themselves: from the first
    spawn to the last first answer, in ms. What ten Pythons starting together on this machine
    cost without reentr."""
    ports = dict(zip(graph, free_ports(len(graph)), strict=True))
    procs: dict[str, subprocess.Popen[bytes]] = {}
    ready: set[str] = set()
    began = time.monotonic_ns()
    try:
        while len(ready) < len(graph):
            for name, depends in graph.items():
                if name not in procs and all(d in ready for d in depends):
                    procs[name] = subprocess.Popen(
                        argv, cwd=root / name,
                        env={**os.environ, "PORT": str(ports[name])},
                        stdout=subprocess.DEVNULL, start_new_session=True)
            for name in procs:
                if name not in ready and http_body(ports[name]):
                    ready.add(name)
            if time.monotonic_ns() - began > 60e9:
                raise SystemExit("services: the reference launcher timed out")
            time.sleep(0.002)
        return (time.monotonic_ns() - began) / 1e6
    finally:
        for proc in procs.values():
            stop(proc, signal.SIGTERM, 5)


def longest_chain(times: dict[str, float], graph: Graph) -> float:
    def chain(name: str) -> float:
        return times[name] + max((chain(d) for d in graph[name]), default=0.0)
    return max(chain(name) for name in graph)


def events_of(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    # Whole lines only: reentr may be writing the next one.
    return [json.loads(line) for line in path.read_text().split("\n")[:-1] if line]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def one_run(
    work: Path, name: str, graph: Graph, argv: list[str], edits: bool
) -> dict[str, object]:
    root, events = work / name, work / f"{name}.jsonl"
    ports = dict(zip(graph, free_ports(len(graph)), strict=True))
    make_project(root, ports, graph, argv)
    alone = {service: statistics.median(own_startup(root, service, argv) for _ in range(3))
             for service in graph}
    # The reference first: run beside reentr's start, it would slow both.
    result: dict[str, object] = {"chain_ms": longest_chain(alone, graph),
                                 "reference_ms": reference_up(root, graph, argv)}
    invoked = time.time()
    proc = subprocess.Popen([*reentr_command(), "up", "-n", "-q", "--events", str(events)],
                            cwd=root, stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        wait(lambda: sum(e["event"] == "ready" for e in events_of(events)) == len(graph), 60,
             "every service ready")
        seen = events_of(events)
        first_spawn = min(float(str(e["time"])) for e in seen if e["event"] == "spawned")
        last_ready = max(float(str(e["time"])) for e in seen if e["event"] == "ready")
        result["startup_ms"] = (first_spawn - invoked) * 1000
        result["up_ms"] = (last_ready - first_spawn) * 1000
        result["command_ms"] = (last_ready - invoked) * 1000
        result["rss_mib"] = rss_mib(proc.pid)
        result["idle_cpu"] = idle_cpu(proc.pid, 2.0)
        if edits:
            result["edit_ms"], result["others_kept"] = edit_each(root, ports, graph)
    finally:
        stop(proc, signal.SIGINT, 30)
    return result


def edit_each(
    root: Path, ports: dict[str, int], graph: Graph
) -> tuple[dict[str, float], bool]:
    """Edit each service's version.txt in turn: edit -> served, and whether every other
    service kept its process."""
    def pid_of(name: str) -> str:
        body = http_body(ports[name]) or ""
        return body.split()[1] if body else ""

    served: dict[str, float] = {}
    kept = True
    for name in graph:
        others = {other: pid_of(other) for other in graph if other != name}
        observer = Observer(ports[name])
        try:
            began = time.monotonic_ns()
            (root / name / "version.txt").write_text("v1\n")
            at = wait(lambda o=observer, b=began: o.served("v1", b), 30, f"{name} serving v1")
        finally:
            observer.close()
        served[name] = (at - began) / 1e6
        kept = kept and all(pid_of(other) == pid for other, pid in others.items())
    return served, kept


def report(title: str, results: list[dict[str, object]]) -> None:
    ups = [float(str(r["up_ms"])) for r in results]
    chains = [float(str(r["chain_ms"])) for r in results]
    references = [float(str(r["reference_ms"])) for r in results]
    ratios = sorted(up / chain for up, chain in zip(ups, chains, strict=True))
    against = sorted(up / ref for up, ref in zip(ups, references, strict=True))
    print(f"{title}, {len(results)} runs")
    print(f"  reentr's own start-up (command -> first spawn): p50 "
          f"{statistics.median(float(str(r['startup_ms'])) for r in results):.0f} ms")
    print(f"  first spawn -> all ready: p50 {statistics.median(ups):.0f} ms; longest chain of "
          f"own start-ups, each alone: p50 {statistics.median(chains):.0f} ms; ratio p50 "
          f"{statistics.median(ratios):.2f} x, max {ratios[-1]:.2f} x (target <= 1.1 x)")
    commands = sorted(float(str(r["command_ms"])) / chain for r, chain in zip(
        results, chains, strict=True))
    print(f"  from the command (reentr's own start-up included) -> all ready: ratio to the "
          f"chain p50 {statistics.median(commands):.2f} x, max {commands[-1]:.2f} x")
    print(f"  the same start by a minimal launcher (no reentr, same order, polled every 2 ms): "
          f"p50 {statistics.median(references):.0f} ms; reentr against it: p50 "
          f"{statistics.median(against):.2f} x, max {against[-1]:.2f} x")
    rss = max(float(str(r["rss_mib"])) for r in results)
    cpu = max(float(str(r["idle_cpu"])) for r in results)
    print(f"  reentr itself: RSS {rss:.1f} MiB (target <= 60), idle CPU {cpu:.2f} % of a core")
    edit = results[0].get("edit_ms")
    if isinstance(edit, dict):
        values = sorted(edit.values())
        print(f"  edit -> served, one service at a time: p50 {percentile(values, 50):.0f} ms, "
              f"max {values[-1]:.0f} ms ({', '.join(f'{n} {v:.0f}' for n, v in edit.items())}"
              f"); the other services kept their processes: {results[0]['others_kept']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each (default 3)")
    runs = parser.parse_args().runs
    # Against a Procfile runner, honcho, on ten processes of one Procfile (procfile.py).
    procfile.compare(5)
    compile_reentr()  # its start-up as installed (see common.py)
    with tempfile.TemporaryDirectory(prefix="reentr-services-") as tmp:
        work = Path(tmp)
        chain = [one_run(work, f"chain-{n}", CHAIN, PYTHON, edits=False) for n in range(runs)]
        tree = [one_run(work, f"tree-{n}", TREE, PYTHON, edits=n == 0) for n in range(runs)]
        waiting = [one_run(work, f"waiting-{n}", TREE, WAITING, edits=False)
                   for n in range(runs)]
    report("reentr up, 10 Python services in a line (each starts alone)", chain)
    report("reentr up, 10 Python services in a tree four deep (up to four start at once)", tree)
    report("reentr up, the same tree, each service first waiting 200 ms (for its database, "
           "say): what starts together waits side by side", waiting)
    # A change that two services want, against each one's restart alone (shared_change.py).
    with tempfile.TemporaryDirectory(prefix="reentr-shared-") as tmp:
        for shape in shared_change.SHAPES:
            row = shared_change.measure(Path(tmp), shape, 5)
            ratio = row["both"] / max(row["a"], row["b"])
            print(f"reentr up, a change two services want ({shape}; 300 ms builds, 5 edits): "
                  f"a alone {row['a']:.0f} ms, b alone {row['b']:.0f} ms, both {row['both']:.0f}"
                  f" ms: {ratio:.2f} x the slower alone"
                  + (" (target <= 1.1 x)" if shape == "independent" else ""), flush=True)


if __name__ == "__main__":
    main()
