"""The only importer of watchfiles: `RustNotify` on the directories to watch (through UTF-8
aliases for names that are not), replaced as the tree changes, falling back to polling at the
inotify limit, and what that limit is."""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import os
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from reentr import kernel, signals
from reentr.errors import ReentrError
from reentr.report import Reporter, shown, some
from reentr.watch.poller import Poller


def _load_rust_notify() -> type:
    """watchfiles' `RustNotify`, from its extension module alone. Importing it the usual way
    first runs the package's `__init__`, which imports watchfiles' asyncio and subprocess
    front ends (anyio, multiprocessing): 10-15 ms of reentr's start, for classes reentr never
    uses. Should the package's layout ever change, the usual import is taken instead."""
    name = "watchfiles._rust_notify"
    try:
        spec = importlib.util.find_spec("watchfiles")
        assert spec is not None and spec.submodule_search_locations
        folder = spec.submodule_search_locations[0]
        found = [n for n in os.listdir(folder)
                 if n.startswith("_rust_notify.") and n.endswith((".so", ".pyd"))]
        module_spec = importlib.util.spec_from_file_location(name, os.path.join(folder, found[0]))
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        sys.modules.setdefault(name, module)
        return module.RustNotify  # type: ignore[no-any-return]
    except (ImportError, OSError, AssertionError, IndexError, AttributeError):
        from watchfiles._rust_notify import RustNotify as usual
        return usual


if TYPE_CHECKING:
    from watchfiles._rust_notify import RustNotify
else:
    RustNotify = _load_rust_notify()


_LIMITED_POLL_S = 0.5
"""How often the poller looks while the inotify limit keeps inotify out."""


RETRY_S = 30.0
"""How often inotify is tried again meanwhile (other programs may have freed watches)."""


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
        if utf8(directory):
            return directory
        if directory not in self.alias:
            if self.root is None:
                import tempfile  # only here: it costs every start 2 ms

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


def utf8(path: str) -> bool:
    try:
        path.encode()
    except UnicodeEncodeError:
        return False
    return True


_RELEASE_S = 1.0
_RELEASE_STEP_S = 0.005
"""How long, and how often, a new watch is tried while a closed one's watches are released."""


class _AtLimit(Exception):
    """The inotify watch limit does not let RustNotify watch every directory."""


class Notify:
    """The current RustNotify, which `reentr watch` replaces when the watched directories change
    (RustNotify cannot add a watch to a running instance), or the poller: by choice (`--poll`)
    or while the inotify limit is reached, when inotify is tried again every `RETRY_S`."""

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
        return self.current.interval if isinstance(self.current, Poller) else None

    def _open(self, dirs: list[str]) -> RustNotify | Poller:
        if self.poll is not None:
            return Poller(dirs, self.poll)
        try:
            current: RustNotify | Poller = self._inotify(dirs)
        except _AtLimit:
            if not self.limited:
                limit, fix = _limit_in_force()
                self.reporter.error(
                    f"the inotify watch limit ({limit}) is reached ({len(dirs)} directories to "
                    f"watch); polling every {_LIMITED_POLL_S:g}s until they fit. Raise the "
                    f"limit with: {fix}")
            self.limited = True
            return Poller(dirs, _LIMITED_POLL_S)
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
            raise ReentrError(f"cannot watch {some_dirs(dirs)}: {error}") from None

    def _rust(self, dirs: list[str]) -> RustNotify:
        # ignore_permission_denied=False: with True, watchfiles also swallows the inotify
        # limit, and the directories past it would go unwatched without a word.
        names = [self.aliases.name(d) for d in dirs]
        before = inotify_fds()
        with signals.blocked():  # RustNotify starts its own thread here
            current = RustNotify(names, debug=False, force_polling=False, poll_delay_ms=0,
                                 recursive=False, ignore_permission_denied=False)
        new = inotify_fds() - before
        if len(new) == 1:
            _without_reads(new.pop(), names)
        return current

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
                self.current = self._once_released(dirs)
                return True
        else:
            self.current = self._open(dirs)
            if isinstance(old, Poller) and isinstance(self.current, Poller):
                self.current.adopt(old)
        old.close()
        return False

    def _once_released(self, dirs: list[str]) -> RustNotify | Poller:
        """Watch `dirs` once a closed RustNotify's watches are gone: its close returns before
        its thread has closed the inotify descriptor (later still on a loaded machine), and
        until then they count against the limit. Polling only if they still do not fit."""
        deadline = time.monotonic() + _RELEASE_S
        while self.poll is None and time.monotonic() < deadline:
            try:
                return self._inotify(dirs)
            except _AtLimit:
                time.sleep(_RELEASE_STEP_S)
        return self._open(dirs)

    def retry(self) -> set[tuple[int, str]]:
        """While the limit keeps inotify out: try it again. The poller's last look is taken
        once inotify is in place, so that no change falls between the two."""
        poller = self.current
        assert isinstance(poller, Poller)
        self.current = self._open(self.dirs)
        if self.current is poller or isinstance(self.current, Poller):
            return set()
        return poller.look()

    def close(self) -> None:
        self.current.close()
        self.aliases.close()


_WRITES = 0x2 | 0x4 | 0x8 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800
"""inotify(7): IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE, IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE,
IN_DELETE, IN_DELETE_SELF, IN_MOVE_SELF: what notify asks for, less IN_OPEN, IN_ACCESS and
IN_CLOSE_NOWRITE."""


def _without_reads(fd: int, names: list[str]) -> None:
    """Ask the kernel for no event when a watched file is only opened or read. notify asks for
    them, and watchfiles drops them, but each one still woke reentr (`wakeup.py`) and, coming
    again before the quiet window ended, held it open: a client polling a server that reads a
    file beside its sources on each request, or a program reading its own sources as it
    starts, kept a change from being seen for up to the 1.6 s a burst may last. Adding a
    watch for a path already watched replaces its mask (inotify_add_watch(2)); a path whose
    watch cannot be changed keeps notify's."""
    found = kernel.libc()
    if found is None:
        return
    for name in names:
        found.inotify_add_watch(fd, os.fsencode(name), _WRITES)


def inotify_fds() -> set[int]:
    """This process's inotify descriptors (reentr opens none but RustNotify's)."""
    found = set()
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/self/fd/{name}") == "anon_inode:inotify":
                    found.add(int(name))
    return found


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


def some_dirs(dirs: list[str]) -> str:
    return some([shown(d) for d in dirs], 3)  # only in a line that says something failed
