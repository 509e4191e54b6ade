"""process.py against real children: a start reported through the queue, the whole group
signalled, strays stopped with escalation, and the guardian that outlives reentr.

What would change the test process itself (a subreaper, a guardian left to fire) runs in a
child interpreter of its own, through the same module."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from helpers import DEADLINE, wait_for
from reentr import process
from reentr.events import GroupEmptied, ProcessExited, Role
from reentr.runner import EventQueue

pytestmark = [pytest.mark.timeout(60)]

SLEEPER = [sys.executable, "-c", "import signal; signal.pause()"]


def _next(queue: EventQueue, kind: type) -> object:
    """The next event of `kind` (the queue blocks; every test has a timeout)."""
    while not isinstance(event := queue.get(), kind):
        pass
    return event


@pytest.fixture
def guardian() -> Iterator[process.Guardian]:
    held = process.Guardian()
    yield held
    held.close()


def test_a_start_is_reported_and_its_exit_and_empty_group_follow(
        guardian: process.Guardian) -> None:
    queue = EventQueue()
    read, write = os.pipe()
    # It exits once the test has looked at it (the pipe's end): an exit at once could be
    # reaped before the look, on a loaded machine.
    child = process.start(Role.TARGET, [sys.executable, "-c", f"import os; os.read({read}, 1); "
                                        "raise SystemExit(3)"], queue,
                          dict(os.environ), guardian, pass_fds=(read,))
    os.close(read)
    assert os.getpgid(child.pid) == child.pid  # a process group of its own
    os.close(write)
    exited = _next(queue, ProcessExited)
    assert isinstance(exited, ProcessExited) and (exited.pid, exited.status) == (child.pid, 3)
    assert _next(queue, GroupEmptied) == GroupEmptied(Role.TARGET, child.pid)
    assert not guardian.started(child.pid)  # reaped: reentr no longer counts it as its own
    queue.close()


def test_a_signal_reaches_the_whole_group_grandchildren_included(
        guardian: process.Guardian) -> None:
    """A shell that forks its program: the group's signal reaches both, as the end of the
    pipe they share shows."""
    read, write = os.pipe()
    queue = EventQueue()
    child = process.start(Role.TARGET, ["sh", "-c", f"{SLEEPER[0]} -c 'import signal; "
                                        f"signal.pause()' & wait"], queue,
                          dict(os.environ), guardian, pass_fds=(write,))
    os.close(write)
    wait_for(lambda: len(process.members(child.pid)) >= 2, what="the grandchild")
    process.signal_group(child.pid, signal.SIGTERM)
    assert _next(queue, GroupEmptied) == GroupEmptied(Role.TARGET, child.pid)
    assert os.read(read, 1) == b""  # every holder of the pipe is gone
    os.close(read)
    queue.close()


_PASSING = textwrap.dedent("""
    import os, sys
    from reentr import process
    from reentr.events import GroupEmptied, Role
    from reentr.runner import EventQueue
    # One descriptor as reentr could inherit it from its shell (inheritable), one of its own.
    inherited_r, inherited_w = os.pipe()
    os.set_inheritable(inherited_r, True)
    own_r, own_w = os.pipe()
    kept_r, kept_w = os.pipe()
    process.own_descriptors()
    guardian = process.Guardian()
    queue = EventQueue()
    report = ("import os, sys; w = int(sys.argv[1]); os.write(w, repr([fd for fd in "
              "range(3, 1024) if fd != w and os.path.lexists(f'/proc/self/fd/{fd}')]).encode())")
    process.start(Role.TARGET, [sys.executable, "-c", report, str(kept_w)], queue,
                  dict(os.environ), guardian, pass_fds=(kept_w,))
    os.close(kept_w)
    print(os.read(kept_r, 4096).decode(), flush=True)
    while not isinstance(queue.get(), GroupEmptied):
        pass
    guardian.close()
""")


def test_the_descriptors_passed_are_the_only_ones_a_child_gets() -> None:
    """Whatever else reentr holds, of its own or inherited from its shell, a child gets only
    what it is given (and its stdin, stdout and stderr)."""
    done = subprocess.run([sys.executable, "-c", _PASSING], capture_output=True, text=True,
                          timeout=DEADLINE, check=False)
    assert done.stdout.split() == ["[]"], done.stderr


_IN_A_SUBREAPER = textwrap.dedent("""
    import os, signal, subprocess, sys, time
    from reentr import process
    process.become_subreaper()
    guardian = process.Guardian()
    # A process that leaves its group, ignores SIGTERM, and outlives its parent.
    code = ("import os, signal; os.setsid(); signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print(os.getpid(), flush=True); signal.pause()")
    spawn = f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', {code!r}])"
    parent = subprocess.Popen([sys.executable, "-c", spawn], stdout=subprocess.PIPE)
    stray = int(parent.stdout.readline())
    parent.wait()
    found = process.strays(set(), guardian)
    print("found", [pid for pid, _ in found] == [stray], flush=True)
    began = time.monotonic()
    process.stop_strays(found, 0.3, wait=True)
    print("stopped", round(time.monotonic() - began, 1) >= 0.3, flush=True)
    print("left", process.strays(set(), guardian), flush=True)
    guardian.close()
""")


def test_a_stray_that_ignores_sigterm_is_found_and_killed_after_the_grace() -> None:
    done = subprocess.run([sys.executable, "-c", _IN_A_SUBREAPER], capture_output=True,
                          text=True, timeout=DEADLINE, check=False)
    assert done.stdout.splitlines() == ["found True", "stopped True", "left []"], done.stderr


_KILLED_WITH_ITS_GUARDIAN = textwrap.dedent("""
    import os, sys
    from reentr import process
    from reentr.events import Role
    from reentr.runner import EventQueue
    guardian = process.Guardian()
    child = process.start(Role.TARGET, [sys.executable, "-c", "import signal; signal.pause()"],
                          EventQueue(), dict(os.environ), guardian,
                          pass_fds=(int(sys.argv[1]),))
    print(child.pid, flush=True)
    os._exit(0)  # as if killed: nothing is cleaned up, the guardian's pipe just closes
""")


def test_the_guardian_kills_the_groups_of_a_reentr_that_died() -> None:
    read, write = os.pipe()
    owner = subprocess.run([sys.executable, "-c", _KILLED_WITH_ITS_GUARDIAN, str(write)],
                           capture_output=True, text=True, timeout=DEADLINE, check=False,
                           pass_fds=(write,))
    os.close(write)
    assert owner.stdout.strip().isdigit(), owner.stderr
    assert os.read(read, 1) == b""  # the child, which held the pipe, is gone
    os.close(read)
