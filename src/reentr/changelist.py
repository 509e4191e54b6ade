"""The changed paths handed to a command: `REENTR_CHANGED`, bounded so that a start never fails
for its size, and `REENTR_CHANGED_FILE`, a file that always holds every path.

Linux refuses to start a program when one environment string is longer than 128 KiB
(MAX_ARG_STRLEN) or all of them with the arguments pass ARG_MAX: a branch switch or an unpack of
30,000 files would make every build and run fail with "Argument list too long" (watchexec met
the same limit: watchexec#78). So the variable holds the leading paths that fit in `LIMIT`
bytes, whole lines only, and the file has them all.
"""

from __future__ import annotations

import os
import shutil
import tempfile

VARIABLE = "REENTR_CHANGED"
FILE_VARIABLE = "REENTR_CHANGED_FILE"
LIMIT = 32 * 1024
"""The most bytes `REENTR_CHANGED` holds: a quarter of MAX_ARG_STRLEN, so that the rest of the
environment and the arguments still fit beside it."""


def bounded(paths: tuple[str, ...], limit: int = LIMIT) -> str:
    """The leading `paths`, one per line, as many whole lines as fit in `limit` bytes."""
    size = 0
    kept = 0
    for path in paths:
        size += len(os.fsencode(path)) + (1 if kept else 0)
        if size > limit:
            break
        kept += 1
    return "\n".join(paths[:kept])


class Lists:
    """The files that hold each command's full list, in a private directory of reentr's own
    (mode 0700), made at the first start and removed with everything in it by `close`."""

    def __init__(self) -> None:
        self._dir: str | None = None
        self._last: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {}
        """What each command's file holds, and its variables."""

    def env(self, key: str, paths: tuple[str, ...]) -> dict[str, str]:
        """The two variables for a start of the command `key` (a role, under a service's name):
        the file is replaced whole (written aside, then renamed), so a process that still
        reads the previous list reads all of it. The same list as the last start's (the same
        file saved again) is not written again, unless its file is gone: writing it took
        0.3 ms of the path from a save to its start."""
        last = self._last.get(key)
        if last is not None and last[0] == paths and os.path.exists(last[1][FILE_VARIABLE]):
            return dict(last[1])
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="reentr-changed-")
        path = os.path.join(self._dir, key)
        aside = path + ".new"
        with open(aside, "wb") as out:
            out.writelines(os.fsencode(p) + b"\n" for p in paths)
        os.replace(aside, path)
        variables = {VARIABLE: bounded(paths), FILE_VARIABLE: path}
        self._last[key] = (paths, variables)
        return dict(variables)

    def close(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
            self._last.clear()
