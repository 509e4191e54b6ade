"""What the user reads: status lines (`lines`) and the `--events` stream (`stream`). Desktop
notifications are started by `process.notify_desktop`, which the runner gives the reporter."""

from reentr.report.lines import (
    PREFIX,
    Reporter,
    describe_status,
    launcher_note,
    shown,
    some,
    use_colour,
)
from reentr.report.stream import EventStream, Kind

__all__ = ["PREFIX", "EventStream", "Kind", "Reporter", "describe_status", "launcher_note",
           "shown", "some", "use_colour"]
