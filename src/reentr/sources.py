"""entr mode's input: the list of files to watch, read once from standard input."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from reentr.config import WatchList
from reentr.errors import UsageError
from reentr.report import shown


def read_watch_list(lines: Iterable[bytes], dir_watch: int) -> tuple[WatchList, list[str]]:
    """Parse entr's stdin contract into a `WatchList`, with a warning per skipped path.

    One path per line, as bytes: a name need not be UTF-8 (it is kept exactly, through the
    file system's encoding); only the newline is stripped, so spaces are kept; blank lines are
    skipped. Paths are `stat`ed, following symlinks. A missing path is warned about and
    skipped; other non-regular paths are skipped silently, except directories under `-d`,
    whose entries are then watched (entr(1), and entr.c process_input). A NUL byte, which no
    path can hold, is a `UsageError`: the list was written for `xargs -0`.
    """
    files: dict[Path, None] = {}
    dirs: dict[Path, None] = {}
    warnings: list[str] = []
    for raw in lines:
        if b"\0" in raw:
            raise UsageError(
                "the list on standard input holds a NUL byte: give one path per line "
                "(find -print, not -print0)"
            )
        name = os.fsdecode(raw[:-1] if raw.endswith(b"\n") else raw)
        if not name:
            continue
        path = Path(os.path.abspath(name))
        try:
            mode = os.stat(path).st_mode
        except OSError as error:
            warnings.append(f"cannot watch '{shown(name)}': {error.strerror}; skipped")
            continue
        if stat.S_ISREG(mode):
            files[path] = None
        elif stat.S_ISDIR(mode) and dir_watch:
            dirs[path] = None
    if dir_watch:
        dirs.update(dict.fromkeys(f.parent for f in files))
    return WatchList(tuple(files), tuple(dirs)), warnings
