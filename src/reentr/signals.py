"""The only caller of `signal.signal`: handlers that turn signals into events, restored on exit."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from reentr.events import SignalReceived
from reentr.process import Queue

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def forwarded(events: Queue) -> Iterator[None]:
    """Turn SIGINT, SIGTERM and SIGHUP into `SignalReceived` events while the block runs.

    The handlers only enqueue (`queue.SimpleQueue.put` is reentrant, so this is safe from a
    handler); the runner decides what a signal means. Installing a handler also means a child
    gets the default disposition at exec, even when reentr itself was started with SIGINT
    ignored (a background job of a script): exec resets handled signals, not ignored ones.
    """
    previous = {signum: signal.getsignal(signum) for signum in HANDLED}

    def enqueue(signum: int, frame: FrameType | None) -> None:
        events.put(SignalReceived(signum))

    for signum in HANDLED:
        signal.signal(signum, enqueue)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
