"""Polling, for file systems inotify cannot see and while the inotify limit keeps it out: the
same interface as watchfiles' `RustNotify`."""

from __future__ import annotations

import os
import threading
import time

ADDED, MODIFIED, DELETED = 1, 2, 3
"""The change kinds RustNotify reports (`watchfiles.Change`), which the poller reports too."""



class Poller:
    """Polling, for file systems without inotify: every `interval`, compare each watched
    directory's entries (type, size, modification time in ns, inode) with the last look.

    Not watchfiles' own poller: it compares modification times to the second, so it misses
    an edit made within a second of the previous one.
    """

    def __init__(self, dirs: list[str], interval: float):
        self.dirs = dirs
        self.interval = interval
        self.last = self._scan()

    def _scan(self) -> dict[str, tuple[bool, int, int, int]]:
        seen = {}
        for directory in self.dirs:
            try:
                entries = list(os.scandir(directory))
            except OSError:
                continue
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                is_dir = entry.is_dir(follow_symlinks=False)
                seen[entry.path] = (is_dir, 0 if is_dir else st.st_size,
                                    0 if is_dir else st.st_mtime_ns, st.st_ino)
        return seen

    def watch(
        self, debounce_ms: int, step_ms: int, timeout_ms: int, stop_event: threading.Event
    ) -> set[tuple[int, str]] | str:
        """Like `RustNotify.watch`, and called with its names: the changes since the last call,
        'stop', or 'timeout' after `timeout_ms` without a change (0: none). A look takes all
        the changes at once, so the gathering (`debounce_ms`, `step_ms`) has nothing to do."""
        deadline = time.monotonic() + timeout_ms / 1000 if timeout_ms else None
        while not stop_event.wait(self.interval):
            changes = self.look()
            if changes:
                return changes
            if deadline is not None and time.monotonic() > deadline:
                return "timeout"
        return "stop"

    def adopt(self, old: Poller) -> None:
        """Take the last look of the poller this one replaces for the directories both watch,
        so that what changed there since is seen, not taken as the start."""
        kept = set(self.dirs) & set(old.dirs)
        self.last = {path: seen for path, seen in self.last.items()
                     if os.path.dirname(path) not in kept}
        self.last.update((path, seen) for path, seen in old.last.items()
                         if os.path.dirname(path) in kept)

    def look(self) -> set[tuple[int, str]]:
        """The changes since the last look."""
        now = self._scan()
        changes = {(DELETED, p) for p in self.last.keys() - now.keys()}
        changes |= {(ADDED, p) for p in now.keys() - self.last.keys()}
        changes |= {(MODIFIED, p) for p in now.keys() & self.last.keys()
                    if now[p] != self.last[p]}
        self.last = now
        return changes

    def close(self) -> None:
        pass
