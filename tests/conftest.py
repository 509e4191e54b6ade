"""Fixtures: a temporary project, reentr processes that are always cleaned up, FIFOs."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import APPS, Reentr

TARGET = [sys.executable, str(APPS / "target.py")]

# The suite's reentrs (and this process) keep their ignore rules' translations in a cache of
# the run's own, never in the user's (`rulecache.py`). Removed at exit, after this process's
# own save (exit functions run last registered, first).
_CACHE = tempfile.mkdtemp(prefix="reentr-tests-cache-")
os.environ["XDG_CACHE_HOME"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A directory with two watched files:

        tmp_path/
            a.txt
            b.txt
    """
    (tmp_path / "a.txt").write_text("a\n")
    (tmp_path / "b.txt").write_text("b\n")
    return tmp_path


@pytest.fixture
def reentr(project: Path) -> Iterator[Callable[..., Reentr]]:
    """Start `reentr ARGS < files` in the project; every one started is killed at teardown,
    and its output is shown if the test failed."""
    started: list[Reentr] = []

    def start(args: list[str], files: Any = ("a.txt", "b.txt"), **kwargs: Any) -> Reentr:
        kwargs.setdefault("cwd", project)
        proc = Reentr(args, files, **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.close()
        sys.stderr.write(f"--- reentr stdout\n{proc.out.text()}\n--- reentr stderr\n"
                         f"{proc.err.text()}\n")


@pytest.fixture
def fifos(project: Path) -> Iterator[Path]:
    """project/state/fifo-1..8, each held open for reading, for target.py --state."""
    state = project / "state"
    state.mkdir()
    readers = []
    for gen in range(1, 9):
        path = state / f"fifo-{gen}"
        os.mkfifo(path)
        readers.append(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
    yield state
    for fd in readers:
        os.close(fd)


Pair = Callable[[], tuple[int, socket.socket]]

@pytest.fixture
def pair() -> Iterator[Pair]:
    """Makes a descriptor to store (one end of a socket pair) and the other end, which is
    closed after the test."""
    peers: list[socket.socket] = []

    def make() -> tuple[int, socket.socket]:
        kept, other = socket.socketpair()
        peers.append(other)
        return kept.detach(), other

    yield make
    for peer in peers:
        peer.close()
