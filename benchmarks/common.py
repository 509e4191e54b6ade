"""What the benchmark scripts share: how to run the installed reentr, and idle CPU."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def reentr_command() -> list[str]:
    """The `reentr` beside this Python, or `python -m reentr`."""
    found = shutil.which("reentr", path=os.path.dirname(sys.executable))
    return [found] if found else [sys.executable, "-m", "reentr"]


def idle_cpu(pid: int, seconds: float) -> float:
    """The process's CPU use over `seconds` of nothing happening, in % of one core, from the
    nanosecond run times of all its threads (/proc/PID/task/*/schedstat)."""

    def run_ns() -> int:
        total = 0
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                total += int((task / "schedstat").read_text().split()[0])
        return total

    start, t0 = run_ns(), time.monotonic_ns()
    time.sleep(seconds)
    return 100 * (run_ns() - start) / (time.monotonic_ns() - t0)


def stop(proc: subprocess.Popen[Any], signum: int, grace: float) -> None:
    """Send `signum` to the process group the benchmark started, and SIGKILL after `grace`
    seconds if it is still there."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signum)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
