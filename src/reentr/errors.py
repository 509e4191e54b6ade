"""The exit statuses reentr documents, and the errors that carry them to `cli/`."""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    """entr's documented contract (entr(1) EXIT STATUS), which reentr keeps."""

    OK = 0
    """Normal quit: `q` or SIGHUP."""
    ERROR = 1
    """Any error, bad usage included."""
    DIRECTORY_ALTERED = 2
    """`-d` saw a file added to or removed from a watched directory."""
    TERMINATED = 128 + 15
    """SIGTERM: the shell's status for a program killed by SIGTERM, after the children stopped."""
    INTERRUPTED = 128 + 2
    """SIGINT (Ctrl-C): once the children are gone, reentr ends by SIGINT itself, as a shell
    expects of a program that Ctrl-C stopped, so that a loop around it stops too (entr exits 0,
    and `while true; do ls | entr -d make; done` cannot be stopped: entr#19, #175)."""


class ReentrError(Exception):
    """An error the user can fix; `str(error)` is the one line reentr prints."""

    status: ExitStatus = ExitStatus.ERROR


class UsageError(ReentrError):
    """The command line or the file list is wrong."""
