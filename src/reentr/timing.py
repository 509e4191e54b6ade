"""The one definition of restart latency: a timeline of monotonic stamps, its stages, and
the summary statistics over a session.

A restart is `edit -> detected -> (build started -> build done) -> (stop sent -> old exited)
-> start -> spawned -> ready`. `edit` is the triggering file's modification time moved onto the
monotonic clock, so the watcher's own delay counts. Without a readiness probe, `ready` is
`spawned`. With `--signal`, the restart is complete when the signal is sent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

STAGES = ("detect", "build", "stop", "spawn", "ready", "other")
"""`other` is the time of the restart that is in none of the stages before it (the short gaps
between them), so the stages always add up to the total."""


@dataclass
class Timeline:
    """The stamps of one restart, in monotonic nanoseconds."""

    edit: int
    detected: int
    trigger: str | None = None
    build_started: int | None = None
    """When the first build for this restart started."""
    build_done: int | None = None
    """When the build whose result is started finished."""
    builds: int = 0
    """How many builds ran for this restart: a build stopped by a newer change is run again."""
    cancelled: int = 0
    """How many of them were stopped by a newer change."""
    stop_sent: int | None = None
    old_exited: int | None = None
    start: int | None = None
    spawned: int | None = None
    ready: int | None = None

    def stages_ms(self) -> dict[str, float]:
        """Each stage's duration in milliseconds; a stage that did not happen is 0. A build
        counts from the first build's start, so a build that was stopped and run again is in it."""
        stages = {
            "detect": _ms(self.edit, self.detected),
            "build": _ms(self.build_started, self.build_done),
            "stop": _ms(self.stop_sent, self.old_exited),
            "spawn": _ms(self.start, self.spawned),
            "ready": _ms(self.spawned, self.ready),
        }
        stages["other"] = max(self.total_ms() - sum(stages.values()), 0.0)
        return stages

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
