"""The controlling terminal: keys (space: run now, q: quit) and clearing the screen."""

from __future__ import annotations

import os
import select
import sys
import termios
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from reentr.events import KeyPressed, Queue
from reentr.signals import start_thread

CLEAR = {1: "\033[2J\033[H", 2: "\033[2J\033[3J\033[H"}
"""entr's sequences for -c and -cc (-cc also erases the scrollback)."""


def clear_screen(level: int) -> None:
    """Clear the screen before a run. Like entr, this is written even when stdout is no TTY."""
    sys.stdout.write(CLEAR[min(level, 2)])
    sys.stdout.flush()


@contextmanager
def keys(events: Queue, enabled: bool) -> Iterator[bool]:
    """Read single keys from /dev/tty while the block runs; yields whether keys are read.

    Keys are read only when reentr is in the terminal's foreground process group: changing the
    modes of a terminal from the background would stop reentr with SIGTTOU. Unlike entr, having
    no terminal is not an error: reentr then simply runs without keys.
    """
    if not enabled:
        yield False
        return
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        yield False
        return
    try:
        if os.tcgetpgrp(fd) != os.getpgrp():
            yield False
            return
        saved = termios.tcgetattr(fd)
        mode = termios.tcgetattr(fd)
        mode[3] &= ~(termios.ICANON | termios.ECHO)
        mode[6][termios.VMIN] = 1
        mode[6][termios.VTIME] = 0
        termios.tcsetattr(fd, termios.TCSANOW, mode)
        wake_r, wake_w = os.pipe()
        reader = start_thread(_read_keys, fd, wake_r, events, name="reentr-keys")
        try:
            yield True
        finally:
            os.write(wake_w, b"x")
            reader.join(timeout=1.0)
            os.close(wake_w)
            os.close(wake_r)
            with suppress(termios.error):
                termios.tcsetattr(fd, termios.TCSADRAIN, saved)
    finally:
        os.close(fd)


def _read_keys(fd: int, wake: int, events: Queue) -> None:
    while True:
        ready, _, _ = select.select([fd, wake], [], [])
        if wake in ready:
            return
        try:
            data = os.read(fd, 32)
        except OSError:
            return
        if not data:
            return  # EOF: like entr, stop reading keys.
        for key in data.decode(errors="replace"):
            events.put(KeyPressed(key))
