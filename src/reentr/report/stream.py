"""The `--events` stream: one JSON object per line for every lifecycle event, its kinds a
closed set, its schema documented in the README and kept stable (keys are only added)."""

from __future__ import annotations

import enum
import time
from typing import TextIO


class Kind(enum.Enum):
    """The `event` of each object, as the README's table lists them."""

    CHANGE = "change"
    START = "start"
    SPAWNED = "spawned"
    SIGNAL = "signal"
    READY = "ready"
    SERVES = "serves"
    READY_TIMEOUT = "ready_timeout"
    EXITED = "exited"
    BUILD_FAILED = "build_failed"
    RESTART = "restart"


class EventStream:
    """Writes the stream (or nothing, without `--events`); under `reentr up`, every object
    names its service."""

    def __init__(self, out: TextIO | None, service: str | None = None):
        self._out = out
        self._service = service
        if out is not None:
            import json  # only with --events: it costs reentr's start 2 ms

            self._dumps = json.dumps

    def write(self, kind: Kind, **fields: object) -> None:
        """One object: `event` and `time` (seconds since the epoch) first, then `fields`."""
        if self._out is None:
            return
        record = {"event": kind.value, "time": round(time.time(), 6), **fields}
        if self._service is not None:
            record["service"] = self._service
        self._out.write(self._dumps(record) + "\n")
        self._out.flush()
