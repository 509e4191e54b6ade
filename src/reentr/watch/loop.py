"""Watch in a thread and put `FilesChanged` batches on the queue: the watcher thread, its batches,
and the recovery of changes a lost watch missed. (`backend` is the only importer of watchfiles.)

entr mode watches the *directories* of the listed files, not the files themselves: a watch on a
file follows its inode, so an editor's atomic save (write a temp file, rename it over) would
leave it watching a deleted file (notify-rs/notify#531, watchexec's own advice). Events are
then kept only for the listed paths, so atomic saves and delete-then-recreate keep working.
"""

from __future__ import annotations

import contextlib
import math
import os
import stat
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from reentr import signals
from reentr.config import Config, WatchList, WatchTree
from reentr.errors import ReentrError
from reentr.events import DirectoryAltered, FilesChanged, Queue, WatcherFailed
from reentr.report import Reporter
from reentr.rulecache import TRANSLATIONS
from reentr.watch.backend import RETRY_S, Notify, some_dirs, utf8
from reentr.watch.contents import MOST, Contents
from reentr.watch.listing import altered, entries
from reentr.watch.poller import ADDED, DELETED, MODIFIED, Poller
from reentr.watch.traits import traits
from reentr.watch.tree import Forest, Tree
from reentr.watch.wakeup import Wakeup

_FALLBACK_STEP_MS = 5
"""Without the wakeup, RustNotify wakes every step even while nothing happens: at least 5 ms,
about 0.6 % of a core (2 ms would cost 1.3 %)."""


_COARSE_NS = 10_000_000
"""How far a file's modification time may lag the clock: the kernel stamps it from a coarse
clock, which lags by up to a tick (4 ms at 250 Hz)."""


@contextmanager
def watching(
    config: Config, events: Queue, reporter: Reporter,
    trees: Sequence[tuple[str, WatchTree]] = (),
) -> Iterator[None]:
    """Watch `config.watch` while the block runs, or, given `trees` (`reentr up`), each named
    tree, with one watch for all, each batch sorted into a `FilesChanged` per tree that wants
    some of it; the watch is in place when the block starts."""
    watch = config.watch
    tree = None
    listing: dict[Path, frozenset[str]] = {}
    if trees or isinstance(watch, WatchTree):
        named: list[tuple[str | None, WatchTree]] = list(trees)
        if not named:
            assert isinstance(watch, WatchTree)
            named = [(None, watch)]
        tree = Forest([(name, Tree(spec)) for name, spec in named])
        polls = [spec.poll for _, spec in named if spec.poll is not None]
        notify = Notify(tree.watch_set(), min(polls) if polls else None, reporter)
        reporter.watching_tree(len(tree.dirs), notify.interval)
        _say_unreadable(tree, reporter)
    else:
        notify = Notify([str(d) for d in watch.watched_dirs()], None, reporter)
        # Read before the watch is announced, so that no later change is in the baseline.
        if config.dir_watch:
            listing = {d: entries(d, config.dir_watch) for d in watch.dirs}
        reporter.watching(len(watch.files), len(watch.dirs))
    stop = threading.Event()
    wakeup = Wakeup(stop, config.debounce_ms / 1000, config.gather_ms / 1000)
    scope = tree if tree is not None else listing
    thread = signals.start_thread(_loop, notify, config, scope, events, wakeup,
                                  name="reentr-watcher")
    TRANSLATIONS.save()  # the rules just read, for the next start (`rulecache.py`)
    try:
        yield
    finally:
        stop.set()
        wakeup.wake()
        thread.join(timeout=2.0)
        notify.close()


def _loop(
    notify: Notify, config: Config, scope: Forest | dict[Path, frozenset[str]], events: Queue,
    wakeup: Wakeup,
) -> None:
    try:
        _Gatherer(notify, config, scope, events, wakeup).run()
    except _Deaf as error:  # the runner reports it and stops
        events.put(WatcherFailed(str(error)))
    except Exception as error:  # a thread that died would leave reentr deaf, without a word
        events.put(WatcherFailed(f"{type(error).__name__}: {error}"))
    finally:
        wakeup.done()


class _Deaf(Exception):
    """The watch cannot go on: what to say."""


Batch = set[tuple[int, str]]


class _Gatherer:
    """Gathers batches of changes and puts them on the queue; `scope` is the tree (`reentr
    watch`) or `-d`'s directory listing."""

    def __init__(
        self, notify: Notify, config: Config, scope: Forest | dict[Path, frozenset[str]],
        events: Queue, wakeup: Wakeup,
    ):
        self.notify = notify
        self.config = config
        self.events = events
        self.wakeup = wakeup
        self.tree = scope if isinstance(scope, Forest) else None
        self.listing = scope if isinstance(scope, dict) else {}
        self.watch = config.watch
        watch = config.watch
        self.order = {str(f): i for i, f in enumerate(watch.files)} if isinstance(
            watch, WatchList) else {}
        self.step = max(config.debounce_ms, _FALLBACK_STEP_MS)
        """The quiet pause without the wakeup (the poller ignores it)."""
        self.since_ns = time.time_ns()
        """When the last batch was taken, on the wall clock (a file's modification time)."""
        self.reported: dict[str, int] = {}
        """The modification time of each path of the last batch (see `_recover`)."""
        self.woken = False
        self.contents = Contents()
        self.held: tuple[dict[str | None, list[str]], Batch, int] | None = None
        """A batch held back because a file in it was found empty (`_emptied`)."""

    def arm(self) -> None:
        """After the watch changed: the kernel wakeup is set on the new one."""
        self.woken = self.notify.interval is None and self.wakeup.arm()

    def run(self) -> None:
        self.arm()
        while not self.wakeup.stop.is_set():
            batch = self._next()
            if batch is None:
                if self.held is not None and time.monotonic() >= self.wakeup.until:
                    found, batch, now_ns, earliest_ns = self._release()
                    self._put(found, batch, now_ns, earliest_ns)  # emptied for good
                continue
            self.since_ns = time.time_ns()
            batch = {(change, self.notify.aliases.translate(path)) for change, path in batch}
            detected_ns = time.monotonic_ns()
            earliest_ns = self._earliest(detected_ns)
            self.wakeup.batch_taken()
            if self.listing and altered(self.listing, self.config.dir_watch, self.wakeup.stop):
                self.events.put(DirectoryAltered())
                continue
            found = self._listed(batch) if self.tree is None else self._in_tree(batch)
            if self.held is not None:
                earlier = self._release()
                found, batch = _merged(earlier[:2], found, batch)
                earliest_ns = min(earliest_ns, earlier[3])
            elif _emptied(found):
                self.held = (found, batch, earliest_ns)
                self.wakeup.until = time.monotonic() + _EMPTIED_S
                continue
            self._put(found, batch, detected_ns, earliest_ns)
            TRANSLATIONS.save()  # rules read for the first time by this batch, if any

    def _release(self) -> tuple[dict[str | None, list[str]], Batch, int, int]:
        """The batch held for a file found empty, the time it is let go, and the earliest its
        files can have been written."""
        assert self.held is not None
        (found, batch, earliest_ns), self.held = self.held, None
        self.wakeup.until = math.inf
        return found, batch, time.monotonic_ns(), earliest_ns

    def _earliest(self, detected_ns: int) -> int:
        """The earliest the writes of a batch taken at `detected_ns` can have been made
        (monotonic ns): a moment before the first event of its burst woke the watcher. A
        file's modification time says when its content was last written, which is not when
        a `chmod`, a `cp -p` or a `touch -d` changed it: without this bound, such a change
        was reported as detected seconds after it was made. Without the kernel wakeup (the
        poller), 10 s before the batch, as a time set by hand is no edit time either."""
        if not self.woken or self.wakeup.began == -math.inf:
            return detected_ns - 10_000_000_000
        return int(self.wakeup.began * 1e9) - _WOKEN_AFTER_NS

    def _next(self) -> Batch | None:
        """The next batch, or None when there is none to take (a stop, a timeout)."""
        notify, config = self.notify, self.config
        current = notify.current
        batch: Batch | str
        try:
            # watchfiles' names: its `debounce_ms` is the longest a burst is gathered (our
            # gather_ms), its `step_ms` the quiet pause that ends one (our --debounce).
            # While a batch is held (`_emptied`), the watch returns 'timeout' at its end.
            hold_ms = 0 if self.held is None else max(
                1, math.ceil((self.wakeup.until - time.monotonic()) * 1000))
            if self.woken and not isinstance(current, Poller):
                batch = current.watch(debounce_ms=config.gather_ms, step_ms=0,
                                      timeout_ms=hold_ms, stop_event=self.wakeup)
            else:
                retry_ms = int(RETRY_S * 1000) if notify.limited else 0
                batch = current.watch(debounce_ms=config.gather_ms, step_ms=self.step,
                                      timeout_ms=hold_ms or retry_ms,
                                      stop_event=self.wakeup.stop)
                if batch == "timeout" and not hold_ms:
                    batch = notify.retry()
                    self.arm()
                    if not batch:
                        return None
        except Exception as error:
            name = _undecodable(error)
            if name is None:
                raise _Deaf(str(error)) from None
            try:
                batch = _recover(notify, name, self.since_ns, self.watch, self.tree,
                                 reported=self.reported)
            except ReentrError as failed:
                raise _Deaf(str(failed)) from None
            self.arm()
        # 'stop' ends the loop; 'signal' and 'timeout' are not used here
        return None if isinstance(batch, str) else batch

    def _listed(self, batch: Batch) -> dict[str | None, list[str]]:
        """entr mode: the listed files among the batch, and those found again after a
        directory of theirs came or went."""
        watch = self.watch
        assert isinstance(watch, WatchList)
        found: dict[str | None, list[str]] = {
            None: [p for p in {path for _, path in batch} if p in self.order]}
        if any(change != MODIFIED for change, _ in batch):
            # A watch on a directory that is deleted dies with it, even if one by the same
            # name (often with the same inode number) is made at once.
            dead = {path for change, path in batch
                    if change == DELETED and path in self.notify.dirs}
            back = _follow_listed(self.notify, watch, self.since_ns, dead)
            if back is None:
                raise _Deaf("cannot watch the listed files' directories")
            self.arm()
            found[None] = list(dict.fromkeys([*found[None], *back]))
        return found

    def _in_tree(self, batch: Batch) -> dict[str | None, list[str]]:
        """`reentr watch`: the paths that matter, per tree, with what was written into
        directories that came meanwhile, before their watch was in place."""
        tree = self.tree
        assert tree is not None
        found, rewatch = tree.take(batch)
        while rewatch:
            try:
                gap = self.notify.replace(tree.watch_set())
            except ReentrError as error:
                raise _Deaf(str(error)) from None
            self.arm()
            more, rewatch = tree.rescan()
            if gap:  # and anywhere while no watch was in place
                written, again = tree.take(
                    _written_since(self.since_ns, self.watch, tree, self.reported))
                more = {name: [*more[name], *written[name]] for name in more}
                rewatch = rewatch or again
            found = {name: list(dict.fromkeys([*found[name], *more[name]])) for name in found}
        _say_unreadable(tree, self.notify.reporter)
        return found

    def _put(
        self, found: dict[str | None, list[str]], batch: Batch, detected_ns: int,
        earliest_ns: int,
    ) -> None:
        """One `FilesChanged` per tree that has a change (reentr's own files left out)."""
        kept = {name: [p for p in paths if p not in self.config.unwatched]
                for name, paths in found.items()}
        kept = {name: paths for name, paths in kept.items() if paths}
        if not kept:
            return
        changed, contents = self.contents.sift(
            list(dict.fromkeys(p for paths in kept.values() for p in paths)))
        if not changed:
            return  # a file left as it was: its mode set again, say (`contents.py`)
        self.reported = _mtimes(changed)
        created = {path for change, path in batch if change == ADDED}
        tree = self.tree
        still = set(changed)
        kept = {name: [p for p in paths if p in still] for name, paths in kept.items()}
        for name, paths in kept.items():
            if not paths:
                continue
            stamped = _leading_edge_first(paths, self.reported, self.order, detected_ns,
                                          earliest_ns)
            ordered = tuple(p for p, _ in stamped)
            self.events.put(FilesChanged(
                ordered, detected_ns, tuple(w for _, w in stamped), scope=name,
                traits=traits(ordered, created, tree.born if tree else {},
                              tree.roots if tree else (), contents)))
        self.wakeup.mattered(frozenset(changed))  # after the event: it reads the load


_WOKEN_AFTER_NS = 5_000_000
"""How long before its burst's first wakeup a change can have been written: the kernel
signals an event at once, and a watcher thread waiting for a core may wake some ms later."""


_EMPTIED_S = 0.05
"""How long a batch that found a changed file empty waits for more (see `_emptied`)."""


def _emptied(found: dict[str | None, list[str]]) -> bool:
    """Whether a changed file is empty now: most likely opened for writing, which empties it,
    by a writer not yet done. A writer that loses its core between the two (a loaded machine)
    can leave that gap longer than the quiet window, and the program would start on an empty
    file, then again on the real one: so such a batch waits up to `_EMPTIED_S` for more
    events, and is taken with them. A file emptied on purpose waits that long, once."""
    for paths in found.values():
        for path in paths[:MOST]:
            with contextlib.suppress(OSError):
                st = os.stat(path)
                if stat.S_ISREG(st.st_mode) and st.st_size == 0:
                    return True
    return False


def _merged(
    held: tuple[dict[str | None, list[str]], Batch], found: dict[str | None, list[str]],
    batch: Batch,
) -> tuple[dict[str | None, list[str]], Batch]:
    """A held batch and the next one, as one."""
    before, earlier = held
    names = dict.fromkeys([*before, *found])
    return ({name: list(dict.fromkeys([*before.get(name, []), *found.get(name, [])]))
             for name in names}, earlier | batch)


def _follow_listed(
    notify: Notify, watch: WatchList, since_ns: int, dead: set[str]
) -> list[str] | None:
    """entr mode after a directory came or went: watch each listed file's directory, or while
    it is gone its nearest existing parent (`rm -rf src && mkdir src`, a branch switch), saying
    so once each way; `dead` are the watched directories just deleted, whose watch is gone
    even if they were made again. The listed files in a directory watched anew, or written
    while no watch was on their directory, count as changed; None if the new watch cannot be
    set."""
    wanted = {str(d): _nearest(d) for d in watch.watched_dirs()}
    dirs = sorted(set(wanted.values()))
    before = set(notify.dirs) - dead
    if not dead and dirs == sorted(before):
        return []
    new = {d for d, nearest in wanted.items() if nearest == d and d not in before}
    try:
        notify.replace(dirs)
    except ReentrError as error:
        notify.reporter.error(str(error))
        return None
    for directory, nearest in wanted.items():
        if nearest != directory and directory in before | dead:
            notify.reporter.line(f"{directory} is gone: watching {nearest} until it is back")
        elif directory in new and directory not in dead:
            notify.reporter.line(f"{directory} is back: watching it again")
    found = []
    for path in map(str, watch.files):
        with contextlib.suppress(OSError):
            written = os.stat(path).st_mtime_ns >= since_ns - _COARSE_NS
            if os.path.dirname(path) in new or written:
                found.append(path)
    return found


def _nearest(directory: Path) -> str:
    """`directory`, or its nearest parent that exists."""
    while not directory.is_dir() and directory.parent != directory:
        directory = directory.parent
    return str(directory)


def _say_unreadable(tree: Forest, reporter: Reporter) -> None:
    found = tree.said_unreadable()
    if found:
        count = len(found)
        reporter.error(f"cannot read {count} director{'ies' if count != 1 else 'y'} "
                       f"(permission denied): {some_dirs([str(d) for d in found])}; the files in "
                       f"{'them' if count != 1 else 'it'} are not watched")


def _undecodable(error: BaseException) -> str | None:
    """The path RustNotify could not make a `str` of, from its error, or None for any other
    error. It writes the path as Rust's `Debug` does: in quotes, a byte that is not UTF-8 as
    `\\xFF`, and `\\n`, `\\"`, `\\u{7f}` and the like for the rest."""
    text = str(error)
    prefix, suffix = 'Unable to decode path "', '" to string'
    if not (text.startswith(prefix) and text.endswith(suffix)):
        return None
    quoted, out, i = text[len(prefix):-len(suffix)], bytearray(), 0
    simple = {"n": b"\n", "t": b"\t", "r": b"\r", "0": b"\0", "\\": b"\\", '"': b'"', "'": b"'"}
    while i < len(quoted):
        char = quoted[i]
        if char != "\\" or i + 1 == len(quoted):
            out += char.encode()
            i += 1
        elif quoted[i + 1] == "x":
            out.append(int(quoted[i + 2:i + 4], 16))
            i += 4
        elif quoted[i + 1] == "u":
            end = quoted.index("}", i)
            out += chr(int(quoted[i + 3:end], 16)).encode()
            i = end + 1
        else:
            out += simple.get(quoted[i + 1], quoted[i + 1].encode())
            i += 2
    return os.fsdecode(bytes(out))


def _mtimes(paths: list[str]) -> dict[str, int]:
    """Each path's modification time; a path that is gone has none."""
    found = {}
    for path in paths:
        with contextlib.suppress(OSError):
            found[path] = os.stat(path).st_mtime_ns
    return found


def _recover(
    notify: Notify, name: str, since_ns: int, watch: WatchList | WatchTree, tree: Forest | None,
    *, reported: dict[str, int],
) -> set[tuple[int, str]]:
    """After RustNotify met a file name that is not UTF-8 (in any event, a mere read too): a
    new RustNotify (the old one fails from then on, and lost the batch it was gathering), and
    the batch as it can be known again: each file written since the last batch (`since_ns`;
    not one `reported` in it with the same modification time), that name if it is gone, and
    any directory that is new.

    It reads no directory whose own name is not UTF-8: opening one is an event in its parent,
    which would fail the new RustNotify in turn."""
    notify.replace(notify.dirs)
    name = notify.aliases.translate(name)
    batch = _written_since(since_ns, watch, tree, reported, name=name)
    if not os.path.lexists(name):
        batch.add((DELETED, name))
    return batch


def _written_since(
    since_ns: int, watch: WatchList | WatchTree, tree: Forest | None, reported: dict[str, int],
    name: str | None = None,
) -> set[tuple[int, str]]:
    """What changed since `since_ns`, as far as modification times tell (a deletion does not
    show): files written (not one `reported` with the same time), and new directories; `name`
    is looked at too. It reads no directory whose own name is not UTF-8 (see `_recover`)."""
    since_ns -= _COARSE_NS
    batch = set()
    extra = [] if name is None else [name]
    dirs = set() if tree is None else tree.dirs
    if isinstance(watch, WatchList):
        candidates = [*extra, *map(str, watch.files)]
    else:
        candidates = extra
        for directory in sorted(dirs):
            if utf8(os.path.basename(directory)):
                with contextlib.suppress(OSError):
                    candidates.extend(os.path.join(directory, n) for n in os.listdir(directory))
    for path in dict.fromkeys(candidates):
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            if tree is not None and path not in dirs:
                batch.add((ADDED, path))  # new: `take` watches it
        elif st.st_mtime_ns >= since_ns and reported.get(path) != st.st_mtime_ns:
            batch.add((MODIFIED, path))
            reported[path] = st.st_mtime_ns
    return batch


def _leading_edge_first(
    paths: list[str], mtimes: dict[str, int], order: dict[str, int], detected_ns: int,
    earliest_ns: int,
) -> list[tuple[str, int]]:
    """The batch ordered by modification time (`mtimes`, from `_mtimes`), so the file written
    first (entr's "leading edge", used for `/_`) comes first, each with when it was written on
    the monotonic clock; files that no longer exist come last, ties in list order (entr mode)
    or by name."""
    wall_ns, mono_ns = time.time_ns(), time.monotonic_ns()
    stamped = [(path, mtimes.get(path)) for path in paths]

    def key(item: tuple[str, int | None]) -> tuple[int, int, str]:
        path, mtime_ns = item
        return (2**63 if mtime_ns is None else mtime_ns, order.get(path, 0), path)

    return [(path, _written_ns(mtime_ns, wall_ns, mono_ns, detected_ns, earliest_ns))
            for path, mtime_ns in sorted(stamped, key=key)]


def _written_ns(
    mtime_ns: int | None, wall_ns: int, mono_ns: int, detected_ns: int, earliest_ns: int
) -> int:
    """A modification time moved onto the monotonic clock: its age on the wall clock, taken
    from the monotonic clock's now. Never later than `detected_ns`, never before
    `earliest_ns` (see `_Gatherer._earliest`); `detected_ns` when the file is gone."""
    if mtime_ns is None:
        return detected_ns
    written = mono_ns - (wall_ns - mtime_ns)
    return max(min(written, detected_ns), min(earliest_ns, detected_ns))
