"""The one definition of restart latency: a timeline of monotonic stamps, its stages, and
the summary statistics over a session.

A restart is `edit -> detected -> (build started -> build done) -> (stop sent -> old exited)
-> start -> spawned -> ready`. `edit` is the triggering file's modification time moved onto the
monotonic clock, so the watcher's own delay counts. Without a readiness probe, `ready` is
`spawned`. With `--signal`, the restart is complete when the signal is sent.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

STAGES = ("detect", "build", "stop", "spawn", "ready")


def edit_time_ns(path: str | None, detected_ns: int) -> int:
    """When `path` was written, on the monotonic clock; `detected_ns` when that is unknown.

    mtime is wall-clock time: subtract its age, measured now on the wall clock, from the
    monotonic clock now. Never later than `detected_ns`, never more than 10 s before it (a
    file whose mtime was set by hand, such as `touch -d`, is not an edit time).
    """
    if path is None:
        return detected_ns
    try:
        mtime_ns = os.stat(path).st_mtime_ns
    except OSError:
        return detected_ns
    age_ns = time.time_ns() - mtime_ns
    edit_ns = time.monotonic_ns() - age_ns
    return max(min(edit_ns, detected_ns), detected_ns - 10_000_000_000)


@dataclass
class Timeline:
    """The stamps of one restart, in monotonic nanoseconds."""

    edit: int
    detected: int
    trigger: str | None = None
    build_started: int | None = None
    build_done: int | None = None
    stop_sent: int | None = None
    old_exited: int | None = None
    start: int | None = None
    spawned: int | None = None
    ready: int | None = None

    def stages_ms(self) -> dict[str, float]:
        """Each stage's duration in milliseconds; a stage that did not happen is 0."""
        return {
            "detect": _ms(self.edit, self.detected),
            "build": _ms(self.build_started, self.build_done),
            "stop": _ms(self.stop_sent, self.old_exited),
            "spawn": _ms(self.start, self.spawned),
            "ready": _ms(self.spawned, self.ready),
        }

    def total_ms(self) -> float:
        """From the edit to ready: everything, including any wait between the stages."""
        return _ms(self.edit, self.ready)


def _ms(start: int | None, end: int | None) -> float:
    if start is None or end is None:
        return 0.0
    return max(end - start, 0) / 1e6


@dataclass
class Summary:
    """Every completed restart of a session, for the table printed on exit."""

    restarts: list[Timeline] = field(default_factory=list)

    def add(self, timeline: Timeline) -> int:
        """Record a completed restart; return its number, counting from 1."""
        self.restarts.append(timeline)
        return len(self.restarts)

    def rows(self) -> list[tuple[str, float, float, float]]:
        """(stage, p50, p95, max) in milliseconds, the total last."""
        columns: dict[str, list[float]] = {stage: [] for stage in (*STAGES, "total")}
        for timeline in self.restarts:
            for stage, value in timeline.stages_ms().items():
                columns[stage].append(value)
            columns["total"].append(timeline.total_ms())
        return [
            (stage, percentile(values, 50), percentile(values, 95), max(values, default=0.0))
            for stage, values in columns.items()
        ]


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile (a value that was measured, never an interpolation)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(math.ceil(p / 100 * len(ordered)), 1)
    return ordered[rank - 1]
