"""entr's `-d`: the entries of the watched directories, and whether one gained or lost a file."""

from __future__ import annotations

import os
import threading
from pathlib import Path

_SETTLE_TRIES = 5


_SETTLE_S = 0.1
"""entr re-reads a directory 5 x 100 ms before it calls it altered, so a save through a
temporary file (which appears and disappears) does not count (entr.c compare_dir_contents)."""


def entries(directory: Path, dir_watch: int) -> frozenset[str]:
    """The names in a directory that `-d` counts: no dotfiles unless `-dd`."""
    try:
        names = os.listdir(directory)
    except OSError:
        return frozenset()
    return frozenset(n for n in names if dir_watch > 1 or not n.startswith("."))


def altered(listing: dict[Path, frozenset[str]], dir_watch: int, stop: threading.Event) -> bool:
    """Whether a directory's entries differ from the start, after letting transient files go.

    entr compares counts; comparing names also catches a rename, which is what a
    `while ls | reentr -d` loop wants to re-list.
    """
    for _ in range(_SETTLE_TRIES):
        if all(entries(d, dir_watch) == names for d, names in listing.items()):
            return False
        if stop.wait(_SETTLE_S):
            return False
    return True
