"""What pathspec makes of each ignore-file line, kept from one run to the next.

Importing pathspec is 18-25 ms of reentr's start (it looks for its optional matchers'
engines too), and every start of a project reads the same few dozen lines: the built-ins,
its `.gitignore` files. So each line's translation, a pure function of the line's text and
pathspec's version, is kept in `$XDG_CACHE_HOME/reentr` (`~/.cache/reentr`), in a file
named for this Python and this copy of pathspec (its `_version.py`, by place, time and
size: an upgrade makes a new file). A start whose lines are all there imports no pathspec.
A cache that cannot be read or written costs that time and nothing else.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import marshal
import os
import sys
import threading
import zlib

Translation = tuple[str | None, bool | None]
"""pathspec's `pattern_to_regex`: the regex (None for a line that is no pattern), and
whether the line includes (False: a `!` line; None: no pattern)."""

_MOST = 1024
"""More lines than this, and only those of the run are kept (a run that used more keeps
none: a start reads a few dozen)."""

_REFUSED = ("\0refused", None)
"""Kept for a line pathspec refuses (a trailing backslash): it raises ValueError again."""


class Translations:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[str, Translation] | None = None
        self._used: set[str] = set()
        self._new = False
        self._registered = False

    def regex(self, line: str) -> Translation:
        """pathspec's translation of `line`, from the cache or from pathspec.

        Raises:
            ValueError: pathspec refuses the line.
        """
        with self._lock:
            known = self._load()
            found = known.get(line)
        if found is None:
            from pathspec.patterns.gitignore.spec import GitIgnoreSpecPattern

            try:
                found = GitIgnoreSpecPattern.pattern_to_regex(line)
            except ValueError:
                found = _REFUSED
            with self._lock:
                known[line] = found
                if not self._new:
                    self._new = True
                    if not self._registered:
                        self._registered = True
                        atexit.register(self.save)
        self._used.add(line)
        if found == _REFUSED:
            raise ValueError(f"not a pattern: {line!r}")
        return found

    def _load(self) -> dict[str, Translation]:
        if self._known is None:
            self._known = {}
            path = cache_path()
            with contextlib.suppress(OSError, ValueError, EOFError, TypeError):
                if path is not None:
                    with open(path, "rb") as f:
                        loaded = marshal.load(f)
                    if isinstance(loaded, dict):
                        self._known = loaded
        return self._known

    def save(self) -> None:
        """Write the cache, if this run translated lines it did not have: once the watch is in
        place (reentr most often ends by a signal, which runs no exit function), and at exit."""
        with self._lock:
            if not self._new:
                return
            known = dict(self._known or {})
            self._new = False
        path = cache_path()
        if path is None:
            return
        if len(known) > _MOST:
            known = {line: known[line] for line in self._used if line in known}
            if len(known) > _MOST:
                return
        import tempfile  # only here: it costs a start 2 ms

        with contextlib.suppress(OSError):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".rules-")
            try:
                with os.fdopen(fd, "wb") as f:
                    marshal.dump(known, f)
                os.replace(temp, path)
            except OSError:
                with contextlib.suppress(OSError):
                    os.unlink(temp)


def cache_path() -> str | None:
    """The cache's file for this Python and this copy of pathspec; None where there is no
    home to keep it in, or pathspec cannot be found."""
    root = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(root):
        home = os.path.expanduser("~")
        if not os.path.isabs(home):
            return None
        root = os.path.join(home, ".cache")
    try:
        spec = importlib.util.find_spec("pathspec")  # found, not imported
        assert spec is not None and spec.submodule_search_locations
        version = os.path.join(spec.submodule_search_locations[0], "_version.py")
        st = os.stat(version)
    except (ImportError, AssertionError, OSError, ValueError):
        return None
    name = f"{zlib.crc32(os.fsencode(version)):08x}-{st.st_mtime_ns:x}-{st.st_size:x}"
    return os.path.join(root, "reentr", f"rules-{sys.implementation.cache_tag}-{name}.marshal")


TRANSLATIONS = Translations()
