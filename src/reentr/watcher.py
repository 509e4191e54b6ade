"""The only importer of watchfiles: watch in a thread and put `FilesChanged` batches on the queue.

entr mode watches the *directories* of the listed files, not the files themselves: a watch on a
file follows its inode, so an editor's atomic save (write a temp file, rename it over) would
leave it watching a deleted file (notify-rs/notify#531, watchexec's own advice). Events are
then kept only for the listed paths, so atomic saves and delete-then-recreate keep working.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import math
import os
import shutil
import signal
import stat
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from watchfiles._rust_notify import RustNotify

from reentr import signals
from reentr.config import Config, WatchList, WatchTree
from reentr.errors import ReentrError
from reentr.events import DirectoryAltered, FilesChanged, Queue, WatcherFailed
from reentr.filters import Filter, walk
from reentr.ignore import Rules
from reentr.report import Reporter, shown, some

_SETTLE_TRIES = 5
_SETTLE_S = 0.1
"""entr re-reads a directory 5 x 100 ms before it calls it altered, so a save through a
temporary file (which appears and disappears) does not count (entr.c compare_dir_contents)."""


_ADDED, _MODIFIED, _DELETED = 1, 2, 3
"""watchfiles' change kinds (`watchfiles.Change`)."""

_PACE_S = 0.001
"""While `_Wakeup` is in force, RustNotify's step is 0 and `is_set` paces it: it steps every
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
_SAFETY_S = 1.0
"""The longest `_Wakeup` blocks before RustNotify takes one look anyway."""
_FALLBACK_STEP_MS = 5
"""Without the wakeup, RustNotify wakes every step even while nothing happens: at least 5 ms,
about 0.6 % of a core (2 ms would cost 1.3 %)."""
_COARSE_NS = 10_000_000
"""How far a file's modification time may lag the clock: the kernel stamps it from a coarse
clock, which lags by up to a tick (4 ms at 250 Hz)."""
_LIMITED_POLL_S = 0.5
"""How often the poller looks while the inotify limit keeps inotify out."""
_RETRY_S = 30.0
"""How often inotify is tried again meanwhile (other programs may have freed watches)."""
_F_SETOWN_EX, _F_OWNER_TID = 15, 0
"""fcntl(2) on Linux: deliver a descriptor's SIGIO to one thread (struct f_owner_ex)."""


class _Wakeup:
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
        self._lock = threading.Lock()
        self._thread: int | None = None

    def arm(self) -> bool:
        """From the watcher thread, after each new RustNotify: whether the wakeup is in force."""
        if sys.platform != "linux":
            return False
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGIO})
        fds = _inotify_fds()
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

    def mattered(self) -> None:
        """The burst just taken held a change that matters (not only ignored files, nor only
        reads, which wake the watcher too). If, on a loaded machine, it began soon after the
        last such burst (which was cut short) or needed a wider window, the window is kept
        for a while."""
        uneven = self.began - self.acted < _WIDEST_S or self.window > self.quiet_s
        if uneven and _cpu_contended():
            self.cut = self.last
        self.acted = self.last

    def _take(self, timeout: float) -> bool:
        """Whether an event is (or, within `timeout`, becomes) pending; never once stopping."""
        if self.stop.is_set():
            return False
        return signal.sigtimedwait({signal.SIGIO}, timeout) is not None

    def _absorb(self) -> None:
        """Wait until the events have been quiet for the window, at most `gather_s` a burst.

        The window is `quiet_s` (`--debounce`), widened to `_WIDEN` times the longest pause
        seen between the events of a burst, at most `_WIDEST_S`. While more processes than
        there are cores are ready to run besides reentr (a loaded machine, where a writer
        waits for a core between two writes), a burst that mattered and followed within
        `_WIDEST_S` the last one that mattered is likely more of it, cut short: the pause
        between them widens the window too, and when such a burst matters (`mattered`) the
        window is kept for the bursts that begin within `_KEEP_S` of it. Otherwise each
        burst begins at `quiet_s`. So writes that come unevenly stay one burst, while an
        editor's save, whose events come within microseconds, saves in quick succession on
        a quiet machine, and an edit after a build's own writes and reads keep `quiet_s`."""
        now = time.monotonic()
        if self.burst is None:
            self.burst = self.began = now
            contended = _cpu_contended()
            pause = now - self.acted
            if contended and pause < _WIDEST_S:  # likely more of the last burst, cut short
                self.window = min(max(self.window, _WIDEN * pause), _WIDEST_S)
            elif now - self.cut > _KEEP_S or not contended:
                self.window = self.quiet_s
        self.last = now
        while self.last < self.burst + self.gather_s and self._take(self.window):
            now = time.monotonic()
            self.window = min(max(self.window, _WIDEN * (now - self.last)), _WIDEST_S)
            self.last = now
        self.confirm = True

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


def _inotify_fds() -> set[int]:
    """This process's inotify descriptors: RustNotify's, old and new (reentr opens no other)."""
    found = set()
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/self/fd/{name}") == "anon_inode:inotify":
                    found.add(int(name))
    return found


class _Poller:
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

    def adopt(self, old: _Poller) -> None:
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
        changes = {(_DELETED, p) for p in self.last.keys() - now.keys()}
        changes |= {(_ADDED, p) for p in now.keys() - self.last.keys()}
        changes |= {(_MODIFIED, p) for p in now.keys() & self.last.keys()
                    if now[p] != self.last[p]}
        self.last = now
        return changes

    def close(self) -> None:
        pass


class _Aliases:
    """UTF-8 names for directories whose names are not: RustNotify takes only `str` paths that
    encode to UTF-8, so such a directory is watched through a symbolic link of reentr's own
    (the kernel's watch follows it), and the paths of its events are translated back."""

    def __init__(self) -> None:
        self.root: str | None = None
        self.real: dict[str, str] = {}
        """Alias -> the directory's own path (a `str` holding the name's bytes as surrogates)."""
        self.alias: dict[str, str] = {}

    def name(self, directory: str) -> str:
        """A name RustNotify can take for `directory`."""
        if _utf8(directory):
            return directory
        if directory not in self.alias:
            if self.root is None:
                self.root = tempfile.mkdtemp(prefix="reentr-names-")
            alias = os.path.join(self.root, str(len(self.alias)))
            os.symlink(directory, alias)
            self.alias[directory], self.real[alias] = alias, directory
        return self.alias[directory]

    def translate(self, path: str) -> str:
        """An event's path with the alias of its directory replaced by the directory."""
        if not self.real:
            return path
        if path in self.real:
            return self.real[path]
        head, _, tail = path.rpartition(os.sep)
        return os.path.join(self.real[head], tail) if head in self.real else path

    def close(self) -> None:
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)


def _utf8(path: str) -> bool:
    try:
        path.encode()
    except UnicodeEncodeError:
        return False
    return True


class _AtLimit(Exception):
    """The inotify watch limit does not let RustNotify watch every directory."""


class _Notify:
    """The current RustNotify, which `reentr watch` replaces when the watched directories change
    (RustNotify cannot add a watch to a running instance), or the poller: by choice (`--poll`)
    or while the inotify limit is reached, when inotify is tried again every `_RETRY_S`."""

    def __init__(self, dirs: list[str], poll: float | None, reporter: Reporter):
        self.poll = poll
        self.limited = False
        """Polling because the inotify limit was reached."""
        self.reporter = reporter
        self.aliases = _Aliases()
        self.dirs = dirs
        self.current = self._open(dirs)

    @property
    def interval(self) -> float | None:
        """How often the poller looks, or None with inotify."""
        return self.current.interval if isinstance(self.current, _Poller) else None

    def _open(self, dirs: list[str]) -> RustNotify | _Poller:
        if self.poll is not None:
            return _Poller(dirs, self.poll)
        try:
            current: RustNotify | _Poller = self._inotify(dirs)
        except _AtLimit:
            if not self.limited:
                limit, fix = _limit_in_force()
                self.reporter.error(
                    f"the inotify watch limit ({limit}) is reached ({len(dirs)} directories to "
                    f"watch); polling every {_LIMITED_POLL_S:g}s until they fit. Raise the "
                    f"limit with: {fix}")
            self.limited = True
            return _Poller(dirs, _LIMITED_POLL_S)
        if self.limited:
            self.limited = False
            self.reporter.line(f"the inotify watches fit again ({len(dirs)} directories): "
                               "watching with inotify")
        return current

    def _inotify(self, dirs: list[str]) -> RustNotify:
        try:
            try:
                return self._rust(dirs)
            except (FileNotFoundError, PermissionError):
                # A directory went away or became unreadable since the walk: watch the rest.
                return self._rust([d for d in dirs if os.access(d, os.R_OK | os.X_OK)])
        except (OSError, RuntimeError) as error:
            if _at_limit(error):
                raise _AtLimit from None
            raise ReentrError(f"cannot watch {_some(dirs)}: {error}") from None

    def _rust(self, dirs: list[str]) -> RustNotify:
        # ignore_permission_denied=False: with True, watchfiles also swallows the inotify
        # limit, and the directories past it would go unwatched without a word.
        names = [self.aliases.name(d) for d in dirs]
        with signals.blocked():  # RustNotify starts its own thread here
            return RustNotify(names, debug=False, force_polling=False, poll_delay_ms=0,
                              recursive=False, ignore_permission_denied=False)

    def replace(self, dirs: list[str]) -> bool:
        """Watch `dirs` from now on. The new watch is in place before the old one goes, unless
        the two do not fit under the inotify limit together: then the old one goes first, and
        the answer is True (a change made in between raised no event)."""
        old, self.dirs = self.current, dirs
        if isinstance(old, RustNotify):
            try:
                self.current = self._inotify(dirs)
            except _AtLimit:
                old.close()  # its watches count against the limit too
                self.current = self._open(dirs)
                return True
        else:
            self.current = self._open(dirs)
            if isinstance(old, _Poller) and isinstance(self.current, _Poller):
                self.current.adopt(old)
        old.close()
        return False

    def retry(self) -> set[tuple[int, str]]:
        """While the limit keeps inotify out: try it again. The poller's last look is taken
        once inotify is in place, so that no change falls between the two."""
        poller = self.current
        assert isinstance(poller, _Poller)
        self.current = self._open(self.dirs)
        if self.current is poller or isinstance(self.current, _Poller):
            return set()
        return poller.look()

    def close(self) -> None:
        self.current.close()
        self.aliases.close()


@contextmanager
def watching(config: Config, events: Queue, reporter: Reporter) -> Iterator[None]:
    """Watch `config.watch` while the block runs; the watch is in place when the block starts."""
    watch = config.watch
    tree = None
    listing: dict[Path, frozenset[str]] = {}
    if isinstance(watch, WatchTree):
        tree = _Tree(watch)
        notify = _Notify(tree.watch_set(), watch.poll, reporter)
        reporter.watching_tree(len(tree.dirs), notify.interval)
        _say_unreadable(tree, reporter)
    else:
        notify = _Notify([str(d) for d in watch.watched_dirs()], None, reporter)
        # Read before the watch is announced, so that no later change is in the baseline.
        if config.dir_watch:
            listing = {d: _entries(d, config.dir_watch) for d in watch.dirs}
        reporter.watching(len(watch.files), len(watch.dirs))
    stop = threading.Event()
    wakeup = _Wakeup(stop, config.debounce_ms / 1000, config.gather_ms / 1000)
    scope = tree if tree is not None else listing
    thread = signals.start_thread(_loop, notify, config, scope, events, wakeup,
                                  name="reentr-watcher")
    try:
        yield
    finally:
        stop.set()
        wakeup.wake()
        thread.join(timeout=2.0)
        notify.close()


def _loop(
    notify: _Notify, config: Config, scope: _Tree | dict[Path, frozenset[str]], events: Queue,
    wakeup: _Wakeup,
) -> None:
    try:
        _gather(notify, config, scope, events, wakeup)
    except Exception as error:  # a thread that died would leave reentr deaf, without a word
        events.put(WatcherFailed(f"{type(error).__name__}: {error}"))
    finally:
        wakeup.done()


def _gather(
    notify: _Notify, config: Config, scope: _Tree | dict[Path, frozenset[str]], events: Queue,
    wakeup: _Wakeup,
) -> None:
    """Gather batches; `scope` is the tree (`reentr watch`) or `-d`'s directory listing."""
    stop = wakeup.stop
    woken = notify.interval is None and wakeup.arm()
    tree = scope if isinstance(scope, _Tree) else None
    listing = scope if isinstance(scope, dict) else {}
    watch = config.watch
    listed = isinstance(watch, WatchList)
    order = {str(f): i for i, f in enumerate(watch.files)} if isinstance(watch, WatchList) else {}
    step = max(config.debounce_ms, _FALLBACK_STEP_MS)  # without the wakeup; the poller ignores it
    since_ns = time.time_ns()
    """When the last batch was taken, on the wall clock (a file's modification time)."""
    reported: dict[str, int] = {}
    """The modification time of each path of the last batch (see `_recover`)."""
    while not stop.is_set():
        current = notify.current
        batch: set[tuple[int, str]] | str
        try:
            # watchfiles' names: its `debounce_ms` is the longest a burst is gathered (our
            # gather_ms), its `step_ms` the quiet pause that ends one (our --debounce).
            if woken and isinstance(current, RustNotify):
                batch = current.watch(debounce_ms=config.gather_ms, step_ms=0, timeout_ms=0,
                                      stop_event=wakeup)
            else:
                retry_ms = int(_RETRY_S * 1000) if notify.limited else 0
                batch = current.watch(debounce_ms=config.gather_ms, step_ms=step,
                                      timeout_ms=retry_ms, stop_event=stop)
                if batch == "timeout":
                    batch = notify.retry()
                    woken = notify.interval is None and wakeup.arm()
                    if not batch:
                        continue
        except Exception as error:
            name = _undecodable(error)
            if name is None:  # the runner reports it and stops
                events.put(WatcherFailed(str(error)))
                return
            try:
                batch = _recover(notify, name, since_ns, watch, tree, reported=reported)
            except ReentrError as failed:
                events.put(WatcherFailed(str(failed)))
                return
            woken = notify.interval is None and wakeup.arm()
        if isinstance(batch, str):
            continue  # 'stop' ends the loop; 'signal' and 'timeout' are not used here
        since_ns = time.time_ns()
        batch = {(change, notify.aliases.translate(path)) for change, path in batch}
        detected_ns = time.monotonic_ns()
        wakeup.batch_taken()
        if listing and _altered(listing, config.dir_watch, stop):
            events.put(DirectoryAltered())
            continue
        if listed:
            paths = [p for p in {path for _, path in batch} if p in order]
        else:
            assert tree is not None
            paths, rewatch = tree.take(batch)
            while rewatch:
                try:
                    gap = notify.replace(tree.watch_set())
                except ReentrError as error:
                    events.put(WatcherFailed(str(error)))
                    return
                woken = notify.interval is None and wakeup.arm()
                # What was written into the new directories before their watch was in place.
                more, rewatch = tree.rescan()
                if gap:  # and anywhere while no watch was in place
                    found, again = tree.take(_written_since(since_ns, watch, tree, reported))
                    more, rewatch = [*more, *found], rewatch or again
                paths = list(dict.fromkeys([*paths, *more]))
            _say_unreadable(tree, notify.reporter)
        paths = [p for p in paths if p not in config.unwatched]
        if paths:
            reported = _mtimes(paths)
            stamped = _leading_edge_first(paths, reported, order, detected_ns)
            events.put(FilesChanged(tuple(p for p, _ in stamped), detected_ns,
                                    tuple(w for _, w in stamped)))
            wakeup.mattered()  # after the event: it reads the machine's load


def _say_unreadable(tree: _Tree, reporter: Reporter) -> None:
    found = tree.said_unreadable()
    if found:
        count = len(found)
        reporter.error(f"cannot read {count} director{'ies' if count != 1 else 'y'} "
                       f"(permission denied): {_some([str(d) for d in found])}; the files in "
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
    notify: _Notify, name: str, since_ns: int, watch: WatchList | WatchTree, tree: _Tree | None,
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
        batch.add((_DELETED, name))
    return batch


def _written_since(
    since_ns: int, watch: WatchList | WatchTree, tree: _Tree | None, reported: dict[str, int],
    name: str | None = None,
) -> set[tuple[int, str]]:
    """What changed since `since_ns`, as far as modification times tell (a deletion does not
    show): files written (not one `reported` with the same time), and new directories; `name`
    is looked at too. It reads no directory whose own name is not UTF-8 (see `_recover`)."""
    since_ns -= _COARSE_NS
    batch = set()
    extra = [] if name is None else [name]
    if isinstance(watch, WatchList):
        candidates = [*extra, *map(str, watch.files)]
    else:
        assert tree is not None
        candidates = extra
        for directory in sorted(tree.dirs):
            if _utf8(os.path.basename(directory)):
                with contextlib.suppress(OSError):
                    candidates.extend(os.path.join(directory, n) for n in os.listdir(directory))
    for path in dict.fromkeys(candidates):
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            if tree is not None and path not in tree.dirs:
                batch.add((_ADDED, path))  # new: `take` watches it
        elif st.st_mtime_ns >= since_ns and reported.get(path) != st.st_mtime_ns:
            batch.add((_MODIFIED, path))
            reported[path] = st.st_mtime_ns
    return batch


class _Tree:
    """`reentr watch`'s view of its trees: the directories to watch (none that is ignored) and
    which changes matter; it follows new directories and edits of ignore files."""

    def __init__(self, spec: WatchTree):
        self.spec = spec
        self.filters: list[tuple[str, Filter]] = []
        self.dirs: set[str] = set()
        self.fresh: set[str] = set()
        """New directories whose watch is not in place yet: `rescan` looks into them again."""
        self.roots = {str(path): str(path.parent) for path in spec.paths}
        self.unreadable: list[Path] = []
        """Directories that may not be read, not said yet (`said_unreadable`)."""
        self._told: set[Path] = set()
        self._load()

    def said_unreadable(self) -> list[Path]:
        """The directories found unreadable since the last call, each once."""
        new = [d for d in dict.fromkeys(self.unreadable) if d not in self._told]
        self._told.update(new)
        self.unreadable = []
        return new

    def watch_set(self) -> list[str]:
        """Every directory that needs a kernel watch: the tree's, and the parent of a root
        that was deleted, to see it when it comes back (`rm -rf out && regenerate`, a
        branch switch)."""
        gone = {parent for root, parent in self.roots.items() if root not in self.dirs}
        return sorted(self.dirs | gone)

    def _load(self) -> None:
        self.filters = []
        self.dirs = set()
        for path in self.spec.paths:
            filter_ = Filter(Rules.load(path, self.spec.sources), self.spec.exts, self.spec.globs)
            self.filters.append((str(path), filter_))
            self.dirs.update(str(d) for d, _ in self._walk(filter_, path, dirs_only=True))
        # The deepest path first, so a path inside another one uses its own filter.
        self.filters.sort(key=lambda item: -len(item[0]))

    def _filter_for(self, path: str) -> Filter | None:
        for root, filter_ in self.filters:
            if path == root or path.startswith(root + os.sep):
                return filter_
        return None

    def take(self, batch: set[tuple[int, str]]) -> tuple[list[str], bool]:
        """The changed paths that matter, and whether the watches must change: a directory
        went, or came (a new one, or a new one by the name of one that went: the old watch
        follows the deleted directory)."""
        changed: list[str] = []
        before = set(self.dirs)
        reload = False
        # A path's deletion before its creation, whatever their order: the directory exists
        # or not, and the checks below look.
        for change, path in sorted(batch, key=lambda item: (item[1], item[0] != _DELETED)):
            filter_ = self._filter_for(path)
            if filter_ is None:
                continue
            rules = filter_.rules
            rel = rules.relative(path)
            if rel is None:
                continue
            if rules.is_rule_file(path):
                reload = True
            if change == _DELETED:
                if path in self.dirs:
                    self.dirs = {d for d in self.dirs
                                 if d != path and not d.startswith(path + os.sep)}
                    if os.path.isdir(path) and not os.path.islink(path):
                        # Made again already (a poller can see only that its inode changed,
                        # or its deletion without its return): a new directory, all of it new.
                        self._add(filter_, path)
                elif filter_.wants(rel):
                    changed.append(path)
            elif os.path.isdir(path) and not os.path.islink(path):
                if change == _ADDED and path not in self.dirs and filter_.watches_dir(rel):
                    self._add(filter_, path)
            elif filter_.wants(rel):
                changed.append(path)
        if self._remade() or reload:
            self._load()
            self.fresh &= self.dirs
        return list(dict.fromkeys(changed)), self.dirs != before or bool(self.fresh)

    def _add(self, filter_: Filter, path: str) -> None:
        """A new directory: watch it and those inside it; once the watch is in place,
        `rescan` counts the files already there as changed."""
        self.fresh.add(path)
        self.dirs.update(str(d) for d, _ in self._walk(filter_, Path(path), dirs_only=True))

    def _walk(self, filter_: Filter, start: Path, *, dirs_only: bool = False
              ) -> Iterator[tuple[Path, bool]]:
        return walk(filter_, start, dirs_only=dirs_only, unreadable=self.unreadable)

    def _remade(self) -> bool:
        """Whether a deleted root is back: a new directory by its name, all of it new."""
        remade = {root for root in self.roots if root not in self.dirs and os.path.isdir(root)}
        self.fresh |= remade
        return bool(remade)

    def rescan(self) -> tuple[list[str], bool]:
        """Once the new directories are watched: the files in them (written before the watch
        was in place, they raised no event), and whether more directories appeared meanwhile,
        which need a watch of their own."""
        added = self._remade()  # it came back before its parent's watch was in place
        if added:
            self._load()
        fresh, self.fresh = self.fresh, set()
        files: list[str] = []
        for root in sorted(fresh):
            filter_ = self._filter_for(root)
            if filter_ is None:
                continue
            for found, is_dir in self._walk(filter_, Path(root)):
                if not is_dir:
                    files.append(str(found))
                elif str(found) not in self.dirs:
                    self.dirs.add(str(found))
                    self.fresh.add(str(found))
                    added = True
        return files, added


def _at_limit(error: BaseException) -> bool:
    """Whether watching failed on the inotify limit (notify says "OS file watch limit reached";
    the kernel's own word for it is ENOSPC)."""
    text = str(error).lower()
    return (getattr(error, "errno", None) == errno.ENOSPC or "watch limit" in text
            or "no space left on device" in text or "os error 28" in text)


def _limit_in_force() -> tuple[str, str]:
    """The inotify watch limit in force, and the command that raises it. Each user namespace
    has a limit of its own (`user.max_inotify_watches`), which counts as well as the host's
    (`fs.inotify.max_user_watches`): the lower one is the one reached."""
    limits = {}
    for name in ("fs.inotify.max_user_watches", "user.max_inotify_watches"):
        with contextlib.suppress(OSError, ValueError):
            limits[name] = int(Path("/proc/sys", *name.split(".")).read_text())
    if not limits:
        return "unknown", "sudo sysctl fs.inotify.max_user_watches=524288"
    name = min(limits, key=lambda n: (limits[n], n.startswith("user.")))
    if name.startswith("user."):
        return (f"{limits[name]}, this user namespace's {name}",
                f"sysctl -w {name}=524288, as the namespace's owner")
    return str(limits[name]), f"sudo sysctl {name}=524288"


def _some(dirs: list[str]) -> str:
    return some([shown(d) for d in dirs], 3)  # only in a line that says something failed


def _leading_edge_first(
    paths: list[str], mtimes: dict[str, int], order: dict[str, int], detected_ns: int
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

    return [(path, _written_ns(mtime_ns, wall_ns, mono_ns, detected_ns))
            for path, mtime_ns in sorted(stamped, key=key)]


def _written_ns(mtime_ns: int | None, wall_ns: int, mono_ns: int, detected_ns: int) -> int:
    """A modification time moved onto the monotonic clock: its age on the wall clock, taken
    from the monotonic clock's now. Never later than `detected_ns`, never more than 10 s before
    it (a time set by hand, such as `touch -d`, is not an edit time); `detected_ns` when the
    file is gone."""
    if mtime_ns is None:
        return detected_ns
    written = mono_ns - (wall_ns - mtime_ns)
    return max(min(written, detected_ns), detected_ns - 10_000_000_000)


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
