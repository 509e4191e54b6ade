"""The only importer of watchfiles: watch in a thread and put `FilesChanged` batches on the queue.

entr mode watches the *directories* of the listed files, not the files themselves: a watch on a
file follows its inode, so an editor's atomic save (write a temp file, rename it over) would
leave it watching a deleted file (notify-rs/notify#531, watchexec's own advice). Events are
then kept only for the listed paths, so atomic saves and delete-then-recreate keep working.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from watchfiles._rust_notify import RustNotify

from reentr import signals
from reentr.config import Config
from reentr.errors import ReentrError
from reentr.events import DirectoryAltered, FilesChanged, Queue, WatcherFailed

_SETTLE_TRIES = 5
_SETTLE_S = 0.1
"""entr re-reads a directory 5 x 100 ms before it calls it altered, so a save through a
temporary file (which appears and disappears) does not count (entr.c compare_dir_contents)."""


@contextmanager
def watching(config: Config, events: Queue) -> Iterator[None]:
    """Watch `config.watch` while the block runs; the watch is in place when the block starts."""
    watch = config.watch
    dirs = watch.watched_dirs()
    try:
        with signals.blocked():  # RustNotify starts its own thread here
            notify = RustNotify([str(d) for d in dirs], False, False, 300, False, False)
    except (OSError, RuntimeError) as error:
        raise ReentrError(f"cannot watch {', '.join(map(str, dirs))}: {error}") from None
    listing = {d: _entries(d, config.dir_watch) for d in watch.dirs} if config.dir_watch else {}
    stop = threading.Event()
    thread = signals.start_thread(
        _loop, notify, config, listing, events, stop, name="reentr-watcher"
    )
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=2.0)
        notify.close()


def _loop(
    notify: RustNotify, config: Config, listing: dict[Path, frozenset[str]], events: Queue,
    stop: threading.Event,
) -> None:
    order = {str(f): i for i, f in enumerate(config.watch.files)}
    while not stop.is_set():
        try:
            batch = notify.watch(config.gather_ms, config.debounce_ms, 0, stop)
        except Exception as error:  # the runner reports it and stops
            events.put(WatcherFailed(str(error)))
            return
        if isinstance(batch, str):
            continue  # 'stop' ends the loop; 'signal' and 'timeout' are not used here
        detected_ns = time.monotonic_ns()
        if listing and _altered(listing, config.dir_watch, stop):
            events.put(DirectoryAltered())
            continue
        paths = [p for p in {path for _, path in batch} if p in order]
        if paths:
            events.put(FilesChanged(tuple(_leading_edge_first(paths, order)), detected_ns))


def _leading_edge_first(paths: list[str], order: dict[str, int]) -> list[str]:
    """Order a batch by modification time, so the file written first (entr's "leading edge",
    used for `/_`) comes first; files that no longer exist come last, ties in list order."""

    def key(path: str) -> tuple[int, int]:
        try:
            return (os.stat(path).st_mtime_ns, order[path])
        except OSError:
            return (2**63, order[path])

    return sorted(paths, key=key)


def _entries(directory: Path, dir_watch: int) -> frozenset[str]:
    """The names in a directory that `-d` counts: no dotfiles unless `-dd`."""
    try:
        names = os.listdir(directory)
    except OSError:
        return frozenset()
    return frozenset(n for n in names if dir_watch > 1 or not n.startswith("."))


def _altered(listing: dict[Path, frozenset[str]], dir_watch: int, stop: threading.Event) -> bool:
    """Whether a directory's entries differ from the start, after letting transient files go.

    entr compares counts; comparing names also catches a rename, which is what a
    `while ls | reentr -d` loop wants to re-list.
    """
    for _ in range(_SETTLE_TRIES):
        if all(_entries(d, dir_watch) == names for d, names in listing.items()):
            return False
        if stop.wait(_SETTLE_S):
            return False
    return True
