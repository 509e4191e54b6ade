"""The controlling terminal: keys (space: run now, q: quit), clearing the screen, and, as a
shell's job control does, the terminal handed to an interactive utility and taken back."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import termios
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from reentr.events import KeyPressed, Queue
from reentr.signals import readable, start_thread

_INTERRUPTIBLE = (
    # The shell runs the utility and waits for it; a trap runs only once it has ended (POSIX,
    # trap). Ctrl-C reaches both, being sent to the terminal's foreground group: the shell
    # leaves a mark ($0), and dies by SIGINT as the utility did, if it did.
    "trap 'i=1' INT; i=; \"$@\"; s=$?; [ -z \"$i\" ] && exit $s; : > \"$0\"; "
    "[ $s = 130 ] && { trap - INT; kill -INT $$; }; exit $s"
)

CLEAR = {1: "\033[2J\033[H", 2: "\033[2J\033[3J\033[H"}
"""entr's sequences for -c and -cc (-cc also erases the scrollback)."""


def clear_screen(level: int) -> None:
    """Clear the screen before a run. Like entr, this is written even when stdout is no TTY."""
    sys.stdout.write(CLEAR[min(level, 2)])
    sys.stdout.flush()


class Terminal:
    """reentr's controlling terminal, when it has one and keys are wanted (not `-n`).

    While reentr holds it (it is the terminal's foreground process group), keys are read one
    at a time, unechoed. `give` hands it to a utility's process group, in the mode reentr
    found it in, and `take_back` takes it back, as a shell does for a foreground job. Nothing
    is done from the background: changing the terminal from there would stop reentr with
    SIGTTOU. Unlike entr, having no terminal is not an error: reentr then runs without keys.
    """

    def __init__(self, events: Queue, fd: int):
        self._events = events
        self.fd = fd
        """/dev/tty, read and write: also the stdin of an interactive utility."""
        self._saved = termios.tcgetattr(fd)
        self._reader: threading.Thread | None = None
        self._wake_w: int | None = None
        self.holder: int | None = None
        """The process group it was handed over to (`hand_over`), if any."""
        self._marks = tempfile.mkdtemp(prefix="reentr-tty-")
        self._interrupted = os.path.join(self._marks, "interrupted")

    def foreground(self) -> bool:
        """Whether reentr is the terminal's foreground process group."""
        try:
            return os.tcgetpgrp(self.fd) == os.getpgrp()
        except OSError:
            return False

    def keys_on(self) -> None:
        """Single-key mode, and a thread that turns keys into events; only in the foreground."""
        if self._reader is not None or not self.foreground():
            return
        mode = termios.tcgetattr(self.fd)
        mode[3] &= ~(termios.ICANON | termios.ECHO)
        mode[6][termios.VMIN] = 1
        mode[6][termios.VTIME] = 0
        with suppress(termios.error):
            termios.tcsetattr(self.fd, termios.TCSANOW, mode)
        wake_r, self._wake_w = os.pipe()
        self._reader = start_thread(_read_keys, self.fd, wake_r, self._events,
                                    name="reentr-keys")

    def keys_off(self) -> None:
        """No more keys: the reader is gone and the terminal is in the mode reentr found."""
        if self._reader is None or self._wake_w is None:
            return
        os.write(self._wake_w, b"x")
        self._reader.join(timeout=1.0)
        os.close(self._wake_w)
        self._reader = self._wake_w = None
        with suppress(termios.error):
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)

    def hand_over(self) -> None:
        """Before a utility that takes the terminal starts (it does so itself before its exec:
        see `in_foreground`): reentr reads no key from then on, since a read from the
        background would stop it (SIGTTIN), and the utility finds the mode reentr found.
        `holder` is then the utility's group, 0 until it is known."""
        self.keys_off()
        self.holder = 0

    def give_again(self) -> None:
        """After a suspension: the shell's `fg` gave reentr the terminal; its utility has it."""
        if self.holder is not None and self.foreground():
            _set_foreground(self.fd, self.holder)

    def take_back(self) -> None:
        """The terminal is reentr's again, in single-key mode."""
        if self.holder is not None:
            self.holder = None
            _set_foreground(self.fd, os.getpgrp())
        self.keys_on()

    def interruptible(self, argv: list[str]) -> list[str]:
        """`argv` run so that a Ctrl-C while it holds the terminal can be known (`interrupted`)
        whatever it does with it: pytest, a REPL or a shell catch SIGINT, and only the
        terminal's foreground group, theirs, receives it. entr shares that group with its
        utility and so quits; reentr's utility has a group of its own (see `process.start`),
        so a small shell in it notes the Ctrl-C."""
        with suppress(FileNotFoundError):
            os.unlink(self._interrupted)
        return ["/bin/sh", "-c", _INTERRUPTIBLE, self._interrupted, *argv]

    def interrupted(self) -> bool:
        """Whether Ctrl-C was pressed while the utility that has just ended held the
        terminal."""
        try:
            os.unlink(self._interrupted)
        except FileNotFoundError:
            return False
        return True

    def close(self) -> None:
        self.keys_off()
        os.close(self.fd)
        shutil.rmtree(self._marks, ignore_errors=True)


def _set_foreground(fd: int, pgid: int) -> None:
    """Make `pgid` the terminal's foreground group; from the background too (SIGTTOU is
    blocked meanwhile, which the kernel takes as leave to do it)."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTTOU})
    try:
        with suppress(OSError):
            os.tcsetpgrp(fd, pgid)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def in_foreground(fd: int) -> None:
    """In a new utility, between fork and exec: a process group of its own, made the
    terminal's foreground group, as a shell does for a foreground job."""
    os.setpgid(0, 0)
    _set_foreground(fd, os.getpgrp())


@contextmanager
def opened(events: Queue, enabled: bool) -> Iterator[Terminal | None]:
    """The controlling terminal, with keys read while the block runs, if reentr is in its
    foreground when it starts and keys are `enabled`; else None."""
    if not enabled:
        yield None
        return
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        yield None
        return
    try:
        if os.tcgetpgrp(fd) != os.getpgrp():
            os.close(fd)
            yield None
            return
        term = Terminal(events, fd)
    except (OSError, termios.error):
        os.close(fd)
        yield None
        return
    term.keys_on()
    try:
        yield term
    finally:
        if term.holder is not None:
            term.take_back()
        term.close()


def _read_keys(fd: int, wake: int, events: Queue) -> None:
    typed = ""  # the last keys, for nodemon's `rs` and Enter
    try:
        while True:
            ready = readable([fd, wake])
            if wake in ready:
                return
            try:
                data = os.read(fd, 32)
            except OSError:
                return
            if not data:
                return  # EOF: like entr, stop reading keys.
            for key in data.decode(errors="replace"):
                typed = (typed + key)[-3:]
                # `rs` and Enter, as nodemon users type it, is space: run now.
                rs = key in "\r\n" and typed[:-1].endswith("rs")
                events.put(KeyPressed(" " if rs else key))
    finally:
        os.close(wake)
