"""The kernel wakeup: the watcher sleeps until inotify has an event (SIGIO on its descriptor),
and the quiet window that ends a burst widens on a loaded machine."""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import signal
import struct
import sys
import threading
import time

from reentr.watch.backend import inotify_fds

_PACE_S = 0.001
"""While `Wakeup` is in force, RustNotify's step is 0 and `is_set` paces it: it steps every
millisecond for `_LINGER_S` after an event, then blocks."""


_LINGER_S = 0.01
"""How long the watcher keeps looking after the last event before it blocks again: the notify
thread inserts an event microseconds after the kernel has queued it."""


_WIDEN = 3


_WIDEST_S = 0.1
"""A burst ends after a pause of 3 times the longest one between its events, at most 100 ms,
and never less than `--debounce`."""


_KEEP_S = 1.0
"""A widened window still holds for a burst that starts within this time of the last cut."""


_LOOKED_AT = 64
"""The most files of the last burst looked at to tell whether a new burst continues it."""


_SAFETY_S = 1.0
"""The longest `Wakeup` blocks before RustNotify takes one look anyway."""


_F_SETOWN_EX, _F_OWNER_TID = 15, 0
"""fcntl(2) on Linux: deliver a descriptor's SIGIO to one thread (struct f_owner_ex)."""


class Wakeup:
    """Let the watcher sleep until the kernel has an event, instead of waking every step.

    RustNotify has no blocking call: it sleeps `step` ms, looks at what its notify thread has
    gathered, and again, so a short step costs CPU while nothing happens (2 ms: about 1.3 % of
    a core) and a long one costs latency. So reentr asks the kernel for signal-driven I/O on
    RustNotify's inotify descriptor (O_ASYNC, owned by the watcher thread): SIGIO is queued
    for that thread the moment the kernel queues a file event, whoever reads the event.
    RustNotify calls `is_set` of the object it is given once per step, holding its loop
    there, and returns a batch when two looks in a row see the same number of changes. So
    RustNotify's step is 0, and `is_set` does the waiting: it blocks in `sigtimedwait` while
    nothing happens; once events come, it waits until they have been quiet for `--debounce`
    and then lets RustNotify look twice at once; it paces the looks that follow.

    Where this is not possible (not Linux, no /proc) `arm` says so and the watcher steps
    every `--debounce`, or every `_FALLBACK_STEP_MS` if that is longer.
    """

    def __init__(self, stop: threading.Event, quiet_s: float, gather_s: float):
        self.stop = stop
        self.quiet_s = quiet_s
        self.gather_s = gather_s
        self.last = time.monotonic()
        self.window = quiet_s
        """How long the events must be quiet to end a burst (see `_absorb`)."""
        self.acted = -math.inf
        """When the last event came of the last burst that mattered (`mattered`)."""
        self.cut = -math.inf
        """When a burst was last found cut short."""
        self.began = -math.inf
        """When the current (or last) burst began."""
        self.burst: float | None = None
        self.confirm = False
        self.armed_now = False
        self._paths: frozenset[str] = frozenset()
        """The paths of the last burst that mattered, and when it was taken (wall clock)."""
        self._acted_ns = 0
        self.until = math.inf
        """No wait goes past this (monotonic): the end of a held batch (`loop._emptied`)."""
        self._lock = threading.Lock()
        self._thread: int | None = None

    def arm(self) -> bool:
        """From the watcher thread, after each new RustNotify: whether the wakeup is in force."""
        if sys.platform != "linux":
            return False
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGIO})
        fds = inotify_fds()
        if not fds:
            return False
        owner = struct.pack("ii", _F_OWNER_TID, threading.get_native_id())
        try:
            for fd in fds:
                fcntl.fcntl(fd, _F_SETOWN_EX, owner)
                fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_ASYNC)
        except OSError:
            return False
        with self._lock:
            self._thread = threading.get_ident()
        # Events between RustNotify's start and now raised no signal: take them as one.
        self.armed_now = True
        return True

    def is_set(self) -> bool:
        """RustNotify's question, once per step: whether to stop."""
        if self.armed_now or self._take(0.0):
            self.armed_now = False
            self._absorb()
        elif self.confirm:
            self.confirm = False  # the look that confirms the quiet batch comes at once
        elif time.monotonic() - self.last < _LINGER_S:
            if self._take(_PACE_S):
                self._absorb()
        else:
            self.burst = None
            if self._take(_SAFETY_S):
                self._absorb()
        return self.stop.is_set()

    def batch_taken(self) -> None:
        self.burst = None

    def mattered(self, paths: frozenset[str]) -> None:
        """The burst just taken held a change that matters (not only ignored files, nor only
        events that left the files as they were): `paths`. If, on a loaded machine, it began
        soon after the last such burst, or needed a wider window, and it wrote some of the
        same files (more of one writer's stream, cut short), the window is kept for a while.
        A build's outputs, written just after the edit that started the build, are other
        files: they keep nothing, and the next edit is seen after `quiet_s` again."""
        uneven = self.began - self.acted < _WIDEST_S or self.window > self.quiet_s
        if uneven and paths & self._paths and _cpu_contended():
            self.cut = self.last
        self.acted = self.last
        self._paths = paths
        # The burst's last event on the wall clock, a file's modification time's clock: a
        # write after it is a new one, however long the batch took to handle.
        self._acted_ns = time.time_ns() - int((time.monotonic() - self.last) * 1e9)

    def _written_again(self) -> bool:
        """Whether a file of the last burst that mattered has been written since its last
        event: a new burst that does so is more of the same writer's stream. (One that writes
        other files, as a build writes its outputs after the edit that started it, is not.)
        Where the kernel stamps files from a coarse clock, a write just after may look older
        and go unseen here: the burst then starts at the usual window, as it did before."""
        for path in list(self._paths)[:_LOOKED_AT]:
            with contextlib.suppress(OSError):
                if os.stat(path).st_mtime_ns > self._acted_ns:
                    return True
        return False

    def _take(self, timeout: float) -> bool:
        """Whether an event is (or, within `timeout`, becomes) pending; never once stopping."""
        if self.stop.is_set():
            return False
        timeout = max(0.0, min(timeout, self.until - time.monotonic()))
        return signal.sigtimedwait({signal.SIGIO}, timeout) is not None

    def _absorb(self) -> None:
        """Wait until the events have been quiet for the window, at most `gather_s` a burst.

        The window is `quiet_s` (`--debounce`), widened to `_WIDEN` times the longest pause
        seen between the events of a burst, at most `_WIDEST_S`. While more processes than
        there are cores are ready to run besides reentr (a loaded machine, where a writer
        waits for a core between two writes), a burst that begins within `_WIDEST_S` of the
        last one that mattered, writing some of its files again, is likely more of it, cut
        short: the pause between them widens the window too, and when such a burst matters
        (`mattered`) the window is kept for the bursts that begin within `_KEEP_S` of it
        (a build's outputs after the edit that started it are other files). Otherwise each
        burst begins at `quiet_s`. So writes that come unevenly stay one burst, while an
        editor's save, whose events come within microseconds, saves in quick succession on
        a quiet machine, and an edit after a build's own writes and reads keep `quiet_s`."""
        now = time.monotonic()
        if self.burst is None:
            self.burst = self.began = now
            pause = now - self.acted
            # The load is read only where it decides: an edit long after the last one (the
            # common case) begins at `quiet_s` without it.
            recent = pause < _WIDEST_S or now - self.cut <= _KEEP_S
            contended = recent and _cpu_contended()
            if contended and pause < _WIDEST_S and self._written_again():
                # More of the last burst, cut short: its files are being written again.
                self.window = min(max(self.window, _WIDEN * pause), self._widest())
            elif not contended or now - self.cut > _KEEP_S:
                self.window = self.quiet_s
        self.last = now
        while self.last < self.burst + self.gather_s and self._take(self.window):
            now = time.monotonic()
            self.window = min(max(self.window, _WIDEN * (now - self.last)), self._widest())
            self.last = now
        self.confirm = True

    def _widest(self) -> float:
        """The widest the window may grow: `_WIDEST_S`, or `--debounce` when that is longer
        (a widening never makes the window shorter than the user asked for)."""
        return max(_WIDEST_S, self.quiet_s)

    def wake(self) -> None:
        """From another thread, after setting `stop`: end a blocked wait now."""
        with self._lock:
            if self._thread is not None:
                signal.pthread_kill(self._thread, signal.SIGIO)

    def done(self) -> None:
        """From the watcher thread as it ends: its thread id is no longer valid to signal."""
        with self._lock:
            self._thread = None


def _cpu_contended() -> bool:
    """Whether more processes are ready to run right now than there are cores, besides this
    one (Linux: the fourth field of /proc/loadavg, which counts the reader)."""
    try:
        with open("/proc/loadavg", "rb") as f:
            running = int(f.read().split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return False
    return running - 1 > (os.cpu_count() or 1)
