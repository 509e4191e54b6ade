#!/usr/bin/env python3
"""`reentr up` with ten Python services (tests/apps/service.py, each on a socket reentr holds,
each with a `ready-url` probe), in a tree of `depends-on` four deep.

It prints:
- up -> all ready: from the moment reentr spawns the first service to the last one's readiness,
  against the longest chain of the services' own start-up times (each measured alone, from
  spawn to its first answer, in the same run). Target: <= 1.1 x. reentr's own start-up (from
  the command to the first spawn) is printed beside it.
- edit -> served per service (from just before the write of its version.txt to its first
  answer with the new version), while a check that no other service's PID changed.
- reentr's own memory (RSS) with ten services, and its idle CPU. Target: <= 60 MiB, ~0 %.

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

from common import Observer, free_port, http_body, idle_cpu, reentr_command, stop, wait

from reentr.timing import percentile

SERVICE = Path(__file__).resolve().parent.parent / "tests" / "apps" / "service.py"
DEPENDS = {
    "s0": [], "s1": ["s0"], "s2": ["s0"], "s3": ["s1"], "s4": ["s1"], "s5": ["s2"],
    "s6": ["s3"], "s7": ["s3"], "s8": ["s4"], "s9": ["s5"],
}
"""The services and what each depends on: the longest chain is s0 -> s1 -> s3 -> s6."""


def make_project(root: Path, ports: dict[str, int]) -> None:
    lines = [f"command = {json.dumps([sys.executable, 'service.py'])}", "restart = true", ""]
    for name, depends in DEPENDS.items():
        (root / name).mkdir(parents=True)
        shutil.copy(SERVICE, root / name / "service.py")
        (root / name / "version.txt").write_text("v0\n")
        lines += [f"[services.{name}]", f"cwd = {json.dumps(name)}",
                  f"socket = [{ports[name]}]",
                  f"ready-url = {json.dumps(f'http://127.0.0.1:{ports[name]}/')}",
                  f"depends-on = {json.dumps(depends)}", ""]
    (root / "reentr.toml").write_text("\n".join(lines))


def own_startup(root: Path, name: str) -> float:
    """How long the service takes alone, from spawn to its first answer, in ms."""
    port = free_port()
    began = time.monotonic_ns()
    proc = subprocess.Popen([sys.executable, "service.py"], cwd=root / name,
                            env={**os.environ, "PORT": str(port)},
                            stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        at = wait(lambda: time.monotonic_ns() if http_body(port) else 0, 30, f"{name} alone")
    finally:
        stop(proc, signal.SIGTERM, 5)
    return (at - began) / 1e6


def reference_up(root: Path) -> float:
    """The same services started by a minimal launcher, in the same order (each once those it
    depends on answer, each polled every 2 ms), on ports they bind themselves: from the first
    spawn to the last first answer, in ms. What ten Pythons starting together on this machine
    cost without reentr."""
    ports = {name: free_port() for name in DEPENDS}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    ready: set[str] = set()
    began = time.monotonic_ns()
    try:
        while len(ready) < len(DEPENDS):
            for name, depends in DEPENDS.items():
                if name not in procs and all(d in ready for d in depends):
                    procs[name] = subprocess.Popen(
                        [sys.executable, "service.py"], cwd=root / name,
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


def longest_chain(times: dict[str, float]) -> float:
    def chain(name: str) -> float:
        return times[name] + max((chain(d) for d in DEPENDS[name]), default=0.0)
    return max(chain(name) for name in DEPENDS)


def events_of(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def one_run(work: Path, number: int, edits: bool) -> dict[str, object]:
    root, events = work / f"run-{number}", work / f"run-{number}.jsonl"
    ports = {name: free_port() for name in DEPENDS}
    make_project(root, ports)
    alone = {name: statistics.median(own_startup(root, name) for _ in range(3))
             for name in DEPENDS}
    invoked = time.time()
    proc = subprocess.Popen([*reentr_command(), "up", "-n", "-q", "--events", str(events)],
                            cwd=root, stdout=subprocess.DEVNULL, start_new_session=True)
    result: dict[str, object] = {"chain_ms": longest_chain(alone),
                                 "reference_ms": reference_up(root)}
    try:
        wait(lambda: sum(e["event"] == "ready" for e in events_of(events)) == len(DEPENDS), 60,
             "every service ready")
        seen = events_of(events)
        first_spawn = min(float(str(e["time"])) for e in seen if e["event"] == "spawned")
        last_ready = max(float(str(e["time"])) for e in seen if e["event"] == "ready")
        result["startup_ms"] = (first_spawn - invoked) * 1000
        result["up_ms"] = (last_ready - first_spawn) * 1000
        result["rss_mib"] = rss_mib(proc.pid)
        result["idle_cpu"] = idle_cpu(proc.pid, 2.0)
        if edits:
            result["edit_ms"], result["others_kept"] = edit_each(root, ports)
    finally:
        stop(proc, signal.SIGINT, 30)
    return result


def edit_each(root: Path, ports: dict[str, int]) -> tuple[dict[str, float], bool]:
    """Edit each service's version.txt in turn: edit -> served, and whether every other
    service kept its process."""
    def pid_of(name: str) -> str:
        body = http_body(ports[name]) or ""
        return body.split()[1] if body else ""

    served: dict[str, float] = {}
    kept = True
    for name in DEPENDS:
        others = {other: pid_of(other) for other in DEPENDS if other != name}
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of `reentr up` (default 3)")
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory(prefix="reentr-services-") as tmp:
        results = [one_run(Path(tmp), number, edits=number == 0) for number in range(runs)]
    ups = [float(str(r["up_ms"])) for r in results]
    chains = [float(str(r["chain_ms"])) for r in results]
    references = [float(str(r["reference_ms"])) for r in results]
    ratios = sorted(up / chain for up, chain in zip(ups, chains, strict=True))
    against = sorted(up / ref for up, ref in zip(ups, references, strict=True))
    print(f"reentr up, {len(DEPENDS)} Python services, a depends-on tree four deep, "
          f"{runs} runs")
    print(f"  reentr's own start-up (command -> first spawn): p50 "
          f"{statistics.median(float(str(r['startup_ms'])) for r in results):.0f} ms")
    print(f"  first spawn -> all ready: p50 {statistics.median(ups):.0f} ms; longest chain of "
          f"own start-ups: p50 {statistics.median(chains):.0f} ms; ratio p50 "
          f"{statistics.median(ratios):.2f} x, max {ratios[-1]:.2f} x (target <= 1.1 x)")
    print(f"  the same start by a minimal launcher (no reentr, same order, same probes): p50 "
          f"{statistics.median(references):.0f} ms; reentr against it: p50 "
          f"{statistics.median(against):.2f} x, max {against[-1]:.2f} x")
    edit = results[0]["edit_ms"]
    assert isinstance(edit, dict)
    values = sorted(edit.values())
    print(f"  edit -> served, one service at a time: p50 {percentile(values, 50):.0f} ms, max "
          f"{values[-1]:.0f} ms ({', '.join(f'{n} {v:.0f}' for n, v in edit.items())}); "
          f"the other services kept their processes: {results[0]['others_kept']}")
    rss = max(float(str(r["rss_mib"])) for r in results)
    cpu = max(float(str(r["idle_cpu"])) for r in results)
    print(f"  reentr itself: RSS {rss:.1f} MiB (target <= 60), idle CPU {cpu:.2f} % of a core")


if __name__ == "__main__":
    main()
