#!/usr/bin/env python3
"""Zero-downtime restarts, in one run: a Python HTTP server (`reentr.sample_app`, a
`http.server` that serves on an inherited socket and drains on SIGTERM) restarted N times in
each mode, while a client on 127.0.0.1 sends one request after another, 1 ms apart.

- plain: `-r`, the reference: the server binds its port itself, so each restart refuses
  connections until the new one listens.
- socket: `-r --socket`: reentr holds the socket; connections wait in the backlog.
- handoff: `--socket --handoff`: the new server starts beside the old one, which is stopped
  only once the new one answers with its own PID.

Printed per mode: failed requests per restart, and the longest stall (the longest any single
request took, from its connect to its answer). Targets (issue 6): 0 failed with socket and
handoff; longest stall with handoff at most 10 ms.

    python benchmarks/handoff.py [--runs 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile

from common import reentr_command

MODES = ("plain", "socket", "handoff")
STALL_TARGET_MS = 10.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="restarts per mode")
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory(prefix="reentr-handoff-") as work:
        done = subprocess.run(
            [*reentr_command(), "bench", "--runs", str(runs), "--mode", ",".join(MODES),
             "--json", "-"],
            cwd=work, capture_output=True, text=True, check=False, timeout=600,
        )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        return 1
    figures = json.loads(done.stdout)["modes"]
    modes = {m["mode"]: m["edits"] for m in figures}
    reported = {m["mode"]: m["reported"] for m in figures}
    print(f"{runs} restarts of a Python http.server per mode; a client polls every 1 ms\n")
    print(f"{'mode':<10}{'failed/restart':>16}{'max failed':>12}{'longest stall':>15}"
          f"{'stall p50':>11}{'edit → served p50':>19}{'restarts reported':>19}")
    for mode in MODES:
        edits = modes[mode]
        failed = [e["failed_requests"] for e in edits]
        stalls = [e["longest_request_ms"] for e in edits]
        served = statistics.median(e["edit_to_ready_ms"] for e in edits)
        print(f"{mode:<10}{statistics.mean(failed):>16.1f}{max(failed):>12}"
              f"{max(stalls):>12.1f} ms{statistics.median(stalls):>8.1f} ms{served:>16.1f} ms"
              f"{reported[mode]:>11} of {len(edits)}")
    verdicts = {
        "0 failed with --socket": sum(e["failed_requests"] for e in modes["socket"]) == 0,
        "0 failed with --handoff": sum(e["failed_requests"] for e in modes["handoff"]) == 0,
        f"longest stall with --handoff <= {STALL_TARGET_MS:g} ms": max(
            e["longest_request_ms"] for e in modes["handoff"]) <= STALL_TARGET_MS,
    }
    print()
    for target, met in verdicts.items():
        print(f"target {target}: {'met' if met else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
