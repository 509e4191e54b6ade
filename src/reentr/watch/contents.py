"""Whether a changed file really changed: the file as each batch found it, and the events that
left it as it was.

inotify reports more than edits of content. vim saves a file, fsyncs it, and only then closes it
and sets its mode again: when the fsync takes longer than the quiet window (a busy disk), the
mode's event (IN_ATTRIB, which watchfiles reports as a modification) came in a batch of its own
and started the program a second time, on the content it had already run. entr starts nothing
for an IN_ATTRIB that leaves the mode and the inode as they were; nor does reentr now.

A file counts as unchanged when its inode, mode, size, modification time and content (a
BLAKE2 digest of all of it) are those it had when the last batch that held it was taken. Each
part can only show a change: content written in the same tick of the kernel's coarse clock,
with the same size, still differs in its digest; a `touch` moves the time. A file larger than
`WHOLE` is not read through and always counts, as does anything but a regular file, and any
file past the first `MOST` of a batch.

A batch is taken before the start it leads to, so a start always sees at least the content
recorded here: dropping a later event that finds the same content loses no edit.
"""

from __future__ import annotations

import os
import stat

try:  # what hashlib.blake2b is, without hashlib's OpenSSL module (2.5 ms of every start)
    from _blake2 import blake2b
except ImportError:  # pragma: no cover (an interpreter built without it)
    from hashlib import blake2b

WHOLE = 256 * 1024
"""The largest file read through to compare its content (0.1 ms at most)."""

MOST = 256
"""The most files compared per batch: a checkout of 30,000 files is not read through; the rest
count as changed."""

KEPT = 10_000
"""The most files remembered; the oldest are forgotten (a forgotten file counts as changed)."""

Identity = tuple[int, int, int, int, bytes]


class Contents:
    """The identity of each file as the last batch that held it found it."""

    def __init__(self) -> None:
        self._seen: dict[str, Identity] = {}

    def sift(self, paths: list[str]) -> tuple[list[str], dict[str, bytes]]:
        """The paths that changed since the last batch that held them, and the content read
        of each file read through (for `traits`, which would otherwise open it again)."""
        changed, read = [], {}
        for count, path in enumerate(paths):
            identity, content = _identity(path) if count < MOST else (None, b"")
            if identity is None:
                self._seen.pop(path, None)
                changed.append(path)
                continue
            read[path] = content
            if self._seen.get(path) == identity:
                continue
            self._seen.pop(path, None)  # the newest last, for the eviction below
            self._seen[path] = identity
            changed.append(path)
        while len(self._seen) > KEPT:
            del self._seen[next(iter(self._seen))]
        return changed, read


def _identity(path: str) -> tuple[Identity | None, bytes]:
    """The file's identity and content, or None for what is not compared: gone, not a regular
    file, larger than `WHOLE`, or unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None, b""
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > WHOLE:
            return None, b""
        content = os.read(fd, WHOLE + 1)
    except OSError:
        return None, b""
    finally:
        os.close(fd)
    digest = blake2b(content, digest_size=16).digest()
    return (st.st_ino, st.st_mode, len(content), st.st_mtime_ns, digest), content
