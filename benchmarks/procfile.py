#!/usr/bin/env python3
"""`reentr up` against honcho (a Python Procfile runner, which watches nothing), in one run:
from the command to all ten processes of the same Procfile running, each process saying so
on its first line. The two are started in turn, best of five each.

Target (#32): reentr up <= 1.15 x honcho. honcho is installed from PyPI into a virtual
environment of the run's.

    python benchmarks/procfile.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import tempfile
import time
import venv
from pathlib import Path

from common import compile_reentr, reentr_command, stop

SERVICES = 10
PROCESS = ("python3 -c \"import signal; print('up', flush=True); signal.pause()\"")
TARGET = 1.15


def install_honcho(work: Path) -> list[str] | None:
    """honcho in a virtual environment of the run's; None, said, where PyPI is not there."""
    env = work / "honcho-venv"
    venv.create(env, with_pip=True)
    done = subprocess.run([str(env / "bin" / "pip"), "install", "--quiet", "honcho"],
                          capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        print(f"honcho could not be installed: {done.stderr.strip()[:200]}")
        return None
    return [str(env / "bin" / "honcho"), "start"]


def all_up(command: list[str], root: Path) -> float:
    """Seconds from the command to the tenth `up` line on its output."""
    began = time.monotonic()
    proc = subprocess.Popen(command, cwd=root, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True, env={**os.environ, "NO_COLOR": "1"})
    assert proc.stdout is not None
    seen = 0
    try:
        while seen < SERVICES:
            line = proc.stdout.readline()
            if not line:
                raise SystemExit(f"{command[0]} ended before all were up")
            seen += line.rstrip().endswith(b"up")
        return time.monotonic() - began
    finally:
        stop(proc, signal.SIGINT, 10)


def compare(runs: int) -> None:
    """Print the two and their ratio against the target (also run by services.py)."""
    compile_reentr()
    work = Path(tempfile.mkdtemp(prefix="reentr-procfile-"))
    root = work / "project"
    root.mkdir()
    (root / "Procfile").write_text("".join(f"p{n}: {PROCESS}\n" for n in range(SERVICES)))
    honcho = install_honcho(work)
    if honcho is None:
        return
    ours = [*reentr_command(), "up", "-n"]
    times: dict[str, list[float]] = {"reentr up": [], "honcho": []}
    for _ in range(runs):
        times["reentr up"].append(all_up(ours, root))
        times["honcho"].append(all_up(honcho, root))
    best = {name: min(values) * 1000 for name, values in times.items()}
    print(f"command -> all {SERVICES} processes of a Procfile running, best of {runs} (ms):")
    for name, value in best.items():
        print(f"  {name:<10} {value:7.1f}")
    ratio = best["reentr up"] / best["honcho"]
    print(f"reentr up / honcho: {ratio:.2f} x (target <= {TARGET}): "
          f"{'met' if ratio <= TARGET else 'MISSED'}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    compare(parser.parse_args().runs)


if __name__ == "__main__":
    main()
