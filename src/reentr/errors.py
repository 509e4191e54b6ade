"""The exit statuses reentr documents, and the errors that carry them to `cli/`."""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    """entr's documented contract (entr(1) EXIT STATUS), which reentr keeps."""

    OK = 0
    """Normal quit: `q`, SIGINT or SIGHUP."""
    ERROR = 1
    """Any error, bad usage included."""
    DIRECTORY_ALTERED = 2
    """`-d` saw a file added to or removed from a watched directory."""
    TERMINATED = 128 + 15
    """SIGTERM: the shell's status for a program killed by SIGTERM, after the children stopped."""


class ReentrError(Exception):
    """An error the user can fix; `str(error)` is the one line reentr prints."""

    status: ExitStatus = ExitStatus.ERROR


class UsageError(ReentrError):
    """The command line or the file list is wrong."""
