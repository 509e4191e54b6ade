"""The only caller of `signal.signal`: handlers that turn signals into events, restored on exit."""

from __future__ import annotations

import math
import os
import select
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from reentr.events import Queue, SignalReceived

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def forwarded(events: Queue, wake_fd: int) -> Iterator[None]:
    """Turn SIGINT, SIGTERM, SIGHUP and SIGTSTP into `SignalReceived` events while the block
    runs.

    The handlers only enqueue; the runner decides what a signal means. Python runs a handler
    only at the main thread's next bytecode, so the signal also writes to `wake_fd` at once
    (`signal.set_wakeup_fd`), which wakes the runner's wait. Installing a handler also means a
    child gets the default disposition at exec, even when reentr itself was started with
    SIGINT ignored (a background job of a script): exec resets handled signals, not ignored
    ones.
    """
    handled: tuple[signal.Signals, ...] = HANDLED
    if signal.getsignal(signal.SIGTSTP) == signal.SIG_DFL:
        # Ctrl-Z: the runner suspends the whole job, itself last (not when started with it
        # ignored, by a shell without job control).
        handled = (*HANDLED, signal.SIGTSTP)
    previous = {signum: signal.getsignal(signum) for signum in handled}
    previous_wake_fd = signal.set_wakeup_fd(wake_fd, warn_on_full_buffer=False)

    def enqueue(signum: int, frame: FrameType | None) -> None:
        events.put(SignalReceived(signum))

    for signum in handled:
        signal.signal(signum, enqueue)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(previous_wake_fd)


@contextmanager
def blocked() -> Iterator[None]:
    """Block the handled signals in the calling thread while the block runs.

    A thread inherits its creator's signal mask, so a thread created here never receives
    them. The kernel gives a process-directed signal to any thread that does not block it;
    only the main thread runs Python's handlers, and it runs them promptly only if it is the
    thread interrupted. So every helper thread, the watcher's own included, is created here.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, (*HANDLED, signal.SIGTSTP))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def start_thread(target: Callable[..., object], *args: object, name: str) -> threading.Thread:
    """Start a daemon thread that never receives the handled signals (see `blocked`)."""
    thread = threading.Thread(target=target, args=args, daemon=True, name=name)
    with blocked():
        thread.start()
    return thread


def readable(fds: list[int], timeout: float | None = None) -> list[int]:
    """Which of `fds` can be read, waiting up to `timeout` seconds (None: for ever). poll(2),
    not select(2): select takes no descriptor above 1023, and with `--fd-store`'s slots at
    3, 4, ... reentr's own descriptors lie above that."""
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    wait = None if timeout is None else max(0, math.ceil(timeout * 1000))
    return [fd for fd, _ in poller.poll(wait)]


def die_by(signum: int) -> None:
    """End reentr by the signal `signum`, its default action, as a program that did not catch
    it would end: a shell that ran reentr then knows it was interrupted (a loop around it
    stops). What is buffered is written first."""
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, (signum,))
    os.kill(os.getpid(), signum)
