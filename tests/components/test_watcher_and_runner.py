"""The watcher against real directories, and the runner driven by real file writes, each
without the command line: the modules a run is made of, put together as `cli/` puts them.

Each runs in a child interpreter of its own: the watcher takes SIGIO for its thread and the
runner makes its process a subreaper with signal handlers of its own, which the test process
must not inherit."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers import DEADLINE

pytestmark = [pytest.mark.timeout(60)]

_WATCHER = textwrap.dedent("""
    import os, sys, threading
    from pathlib import Path
    from reentr import watch
    from reentr.config import Config, Sources, WatchTree
    from reentr.events import FilesChanged
    from reentr.report import Reporter
    from reentr.runner import EventQueue

    root = Path(sys.argv[1])
    config = Config(command=("true",), watch=WatchTree((root,), Sources()))
    queue = EventQueue()

    def changed():
        while not isinstance(event := queue.get(), FilesChanged):
            pass
        return sorted(os.path.relpath(p, root) for p in event.paths)

    with watch.watching(config, queue, Reporter(config, err=open(os.devnull, "w"))):
        (root / "a.py").write_text("x")
        print("write", changed(), flush=True)
        (root / "node_modules" / "dep.js").write_text("x")  # ignored: no event
        (root / "new").mkdir()
        (root / "new" / "b.py").write_text("x")  # a directory made during the watch
        print("new dir", changed(), flush=True)
        os.replace(root / "a.py", root / "c.py")
        print("rename", changed(), flush=True)
""")


def test_the_watcher_reports_writes_new_directories_and_renames_but_not_the_ignored(
        tmp_path: Path) -> None:
    (tmp_path / "node_modules").mkdir()
    done = subprocess.run([sys.executable, "-c", _WATCHER, str(tmp_path)], capture_output=True,
                          text=True, timeout=DEADLINE, check=False)
    assert done.stdout.splitlines() == [
        "write ['a.py']", "new dir ['new/b.py']", "rename ['a.py', 'c.py']"], done.stderr


_RUNNER = textwrap.dedent("""
    import io, os, sys, threading
    from pathlib import Path
    from reentr import runner
    from reentr.config import Config, WatchList
    from reentr.report import Reporter

    work = Path(sys.argv[1])
    watched, starts = work / "watched.txt", work / "starts.txt"
    # Each start notes itself; the second exits by itself, which ends the run (-z).
    target = ("import pathlib, signal, sys; p = pathlib.Path(sys.argv[1]); "
              "p.write_text(p.read_text() + 'x') if p.exists() else p.write_text('x'); "
              "sys.exit(0) if len(p.read_text()) == 2 else signal.pause()")
    config = Config(command=(sys.executable, "-c", target, str(starts)),
                    watch=WatchList((watched,)), restart=True, exit_on_exit=True,
                    interactive=False)

    def edit_once_started():
        while not starts.exists():
            threading.Event().wait(0.01)
        watched.write_text("changed")

    threading.Thread(target=edit_once_started, daemon=True).start()
    err = io.StringIO()
    status = runner.run(config, Reporter(config, err=err))
    print("status", status, "starts", len(starts.read_text()), flush=True)
    print("restarted", "restart #1" in err.getvalue(), flush=True)
""")


def test_the_runner_restarts_on_a_real_write_and_ends_with_its_target(tmp_path: Path) -> None:
    (tmp_path / "watched.txt").write_text("x")
    done = subprocess.run([sys.executable, "-c", _RUNNER, str(tmp_path)], capture_output=True,
                          text=True, timeout=DEADLINE, check=False)
    assert done.stdout.splitlines() == ["status 0 starts 2", "restarted True"], done.stderr
