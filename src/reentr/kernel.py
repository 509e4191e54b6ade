"""The Linux calls Python has no name for (prctl, inotify_add_watch, statfs), through the C
library, and what a file system's link counts say about a directory."""

from __future__ import annotations

import functools
import os
import sys
from typing import Any

_COUNTING = frozenset((0xEF53, 0x58465342, 0x01021994))
"""The file systems whose directories' link counts are 2 plus their subdirectories: ext2, 3
and 4, XFS, tmpfs. Others give 1 (btrfs, overlayfs's merged directories, many FUSE ones), or a
number a server made up (CIFS, some NFS servers): there, nothing is read from it."""


@functools.cache
def libc() -> Any:
    """The C library; None where there is none to call (not Linux)."""
    if sys.platform != "linux":
        return None
    import ctypes  # only here: it costs startup time

    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def counts_subdirectories(path: str) -> bool:
    """Whether the link count of a directory on `path`'s file system is 2 plus the number of
    its subdirectories, so that a count of 2 says it has none, as find(1) reads it. No, when
    that cannot be told."""
    found = libc()
    if found is None:
        return False
    import ctypes

    # struct statfs begins with f_type, a long on every Linux ABI; the rest is room.
    buffer = ctypes.create_string_buffer(256)
    try:
        if found.statfs(os.fsencode(path), buffer) != 0:
            return False
    except AttributeError:
        return False
    return ctypes.c_long.from_buffer(buffer).value in _COUNTING
