"""The one definition of restart latency: a timeline of monotonic stamps, its stages, and
the summary statistics over a session.

A restart is `edit -> detected -> (taken up) -> (build started -> build done) -> (stop sent ->
old exited) -> start -> spawned -> ready`. `edit` is the triggering file's modification time
moved onto the monotonic clock, so the watcher's own delay counts. A change is taken up as soon
as it is seen, unless its service waits for those it depends on to restart for it first
(`reentr up`): that is `wait`. Without a readiness probe, `ready` is `spawned`. With
`--signal`, the restart is complete when the signal is sent. With `--handoff` it is complete
once the new target has taken a connection on the held socket (`ready -> served`, `switch`):
until the old one stops taking them, clients still meet the old version.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from reentr.records import record

STAGES = ("detect", "wait", "build", "stop", "spawn", "ready", "switch", "other")
"""`other` is the time of the restart that is in none of the stages before it (the short gaps
between them), so the stages always add up to the total."""


@record
class Timeline:
    """The stamps of one restart, in monotonic nanoseconds.

    It belongs to the newest change whose content the started program holds (`edit` is that
    change's write, `detected` when reentr saw it); work begun for an older change and
    replaced by this one (a build stopped and run again, a start replaced before it was
    ready) is counted in `builds`, `cancelled` and `superseded`, and its time after
    `detected` is in the stage it was doing."""

    edit: int
    detected: int
    trigger: str | None = None
    """The changed file that started it; None when it was asked for (`asked`)."""
    asked: str | None = None
    """Who asked for a restart that no change started: `key` (space, `r` and a number, `rs`),
    or `reentr restart`."""
    build_started: int | None = None
    """When the build whose result is started started (when the change was seen, if it
    replaced a build that had to be stopped first)."""
    build_done: int | None = None
    """When the build whose result is started finished."""
    builds: int = 0
    """How many builds ran for this restart: a build stopped by a newer change is run again."""
    cancelled: int = 0
    """How many of them were stopped by a newer change."""
    superseded: int = 0
    """Starts of the target replaced by this one before they were ready."""
    taken: int | None = None
    """`reentr up`: when the change was let through to its service, once the services it
    depends on served again after restarting for the same change; None when it did not wait."""
    stop_sent: int | None = None
    old_exited: int | None = None
    start: int | None = None
    spawned: int | None = None
    ready: int | None = None
    served: int | None = None
    """`--handoff`: when the new target took its first connection on the held socket, after
    it was ready and the old one was told to stop; None when it was not seen."""
    kept: int = 0
    """`--fd-store`: how many stored descriptors the new target was given."""

    def stages_ms(self) -> dict[str, float]:
        """Each stage's duration in milliseconds; a stage that did not happen is 0. A stage
        that began before the change was seen (a stop sent for an older change) counts from
        when it was seen: nothing before the change is part of its restart."""
        seen = max(self.detected, self.taken or 0)
        build = (_after(self.build_started, self.detected), self.build_done)
        stages = {
            "detect": _ms(self.edit, self.detected),
            # Waiting, less the build that ran meanwhile (`reentr up` builds while it waits).
            "wait": max(_ms(self.detected, self.taken) - _overlap(build, self.taken), 0.0),
            "build": _ms(*build),
            "stop": _ms(_after(self.stop_sent, seen), self.old_exited),
            "spawn": _ms(_after(self.start, seen), self.spawned),
            "ready": _ms(_after(self.spawned, seen), self.ready),
            "switch": _ms(self.ready, self.served),
        }
        stages["other"] = max(self.total_ms() - sum(stages.values()), 0.0)
        return stages

    def total_ms(self) -> float:
        """From the edit to ready (to served, under `--handoff`): everything, including any
        wait between the stages."""
        return _ms(self.edit, self.served or self.ready)


def _overlap(build: tuple[int | None, int | None], taken: int | None) -> float:
    """How much of the build ran before `taken`, in ms."""
    start, done = build
    if start is None or done is None or taken is None:
        return 0.0
    return _ms(start, min(done, taken))


def _after(stamp: int | None, floor: int) -> int | None:
    return None if stamp is None else max(stamp, floor)


def _ms(start: int | None, end: int | None) -> float:
    if start is None or end is None:
        return 0.0
    return max(end - start, 0) / 1e6


@dataclass
class Summary:
    """Every completed restart of a session, for the table printed on exit."""

    restarts: list[Timeline] = field(default_factory=list)

    def add(self, timeline: Timeline) -> None:
        """Record a completed restart (policy numbers them)."""
        self.restarts.append(timeline)

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
            # A wait only happens under `reentr up`, a switch only under --handoff.
            if stage not in ("wait", "switch") or any(values)
        ]


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile (a value that was measured, never an interpolation)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(math.ceil(p / 100 * len(ordered)), 1)
    return ordered[rank - 1]
