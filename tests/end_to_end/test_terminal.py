"""The terminal, as a shell's job control has it, under a real pseudo-terminal: an interactive
utility reads what is typed and takes Ctrl-C; Ctrl-Z suspends the whole job and `fg`
(SIGCONT) resumes it, keys included."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import Reentr, edit, process_state, wait_for

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"),
                                reason="process states are read from /proc")

Start = Callable[..., Reentr]
# Says it is reading (once it holds the terminal), then echoes the line it reads.
ASK = [sys.executable, "-c", "import os; print('asking', os.getpid(), flush=True); "
       "print('got', input(), flush=True)"]
# Says its PID and runs until stopped.
FOREVER = [sys.executable, "-c", "import os, signal; print('pid', os.getpid(), flush=True); "
           "signal.pause()"]


@pytest.mark.timeout(60)
def test_an_interactive_utility_reads_the_terminal_then_keys_work_again(
    reentr: Start, project: Path
) -> None:
    proc = reentr([*ASK], tty=True, exits=True)
    proc.out.expect(r"^asking \d+$")
    proc.press("hello\n")
    proc.out.expect(r"^got hello$")
    proc.run_ended()
    proc.press(" ")  # the keys are reentr's again: space runs it once more
    proc.out.expect(r"^asking \d+$")
    proc.press("again\n")
    proc.out.expect(r"^got again$")
    proc.run_ended()
    proc.press("q")
    assert proc.wait() == 0
    assert proc.out.count(r"^got ") == 2


@pytest.mark.timeout(60)
def test_ctrl_c_reaches_the_interactive_utility_and_reentr_then_ends_by_sigint(
    reentr: Start, project: Path
) -> None:
    proc = reentr([*ASK], tty=True)
    pid = int(proc.out.expect(r"^asking (\d+)$").group(1))
    wait_for(lambda: process_state(pid) == "S", what="the utility to wait for a line")
    proc.press("\x03")  # the terminal sends SIGINT to its foreground group: the utility's
    assert proc.wait() == -signal.SIGINT  # then reentr's own, so a shell loop would stop
    assert process_state(pid) == ""
    assert "got" not in proc.out.text()


# Catches Ctrl-C and exits 2, as pytest does ("Interrupted").
CATCHES = [sys.executable, "-c", "import os, signal, sys\n"
           "print('asking', os.getpid(), flush=True)\n"
           "try:\n    input()\nexcept KeyboardInterrupt:\n"
           "    print('caught', flush=True)\n    sys.exit(2)"]


@pytest.mark.timeout(60)
def test_ctrl_c_ends_reentr_even_when_the_utility_catches_it_and_exits_2(
    reentr: Start, project: Path
) -> None:
    # entr quits; reentr went on watching, and what was typed next was read as keys.
    proc = reentr([*CATCHES], tty=True)
    pid = int(proc.out.expect(r"^asking (\d+)$").group(1))
    wait_for(lambda: process_state(pid) == "S", what="the utility to wait for a line")
    proc.press("\x03")
    proc.out.expect(r"^caught$")
    assert proc.wait() == -signal.SIGINT
    assert "exit status 2" in proc.err.text()


@pytest.mark.timeout(90)
def test_ctrl_c_during_a_real_pytest_run_quits(reentr: Start, project: Path) -> None:
    (project / "test_slow.py").write_text(
        "import os, threading\n\n"
        "def test_slow():\n"
        "    print('testing', os.getpid(), flush=True)\n"
        "    threading.Event().wait(60)\n")
    proc = reentr([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                   "test_slow.py"], ["test_slow.py"], tty=True)
    pid = int(proc.out.expect(r"testing (\d+)").group(1))
    wait_for(lambda: process_state(pid) == "S", what="pytest to sleep in its test")
    proc.press("\x03")
    proc.out.expect(r"Interrupted|KeyboardInterrupt")
    assert proc.wait() == -signal.SIGINT
    assert "exit status 2" in proc.err.text()


@pytest.mark.timeout(60)
def test_ctrl_c_ends_reentr_only_once_the_utility_has_ended(
    reentr: Start, project: Path
) -> None:
    # A REPL takes Ctrl-C and goes on: reentr waits for it to end, then quits, as it said.
    repl = [sys.executable, "-c", "import os\n"
            "print('asking', os.getpid(), flush=True)\n"
            "while True:\n"
            "    try:\n        line = input()\n"
            "    except KeyboardInterrupt:\n        print('still here', flush=True)\n"
            "        continue\n"
            "    print('got', line, flush=True)\n"
            "    break"]
    proc = reentr(repl, tty=True)
    pid = int(proc.out.expect(r"^asking (\d+)$").group(1))
    wait_for(lambda: process_state(pid) == "S", what="the utility to wait for a line")
    proc.press("\x03")
    proc.out.expect(r"^still here$")
    wait_for(lambda: process_state(pid) == "S", what="the utility to wait again")
    proc.press("bye\n")
    proc.out.expect(r"^got bye$")
    assert proc.wait() == -signal.SIGINT


@pytest.mark.timeout(60)
def test_ctrl_z_suspends_the_whole_job_and_fg_resumes_it_with_one_run_for_the_changes(
    reentr: Start, project: Path
) -> None:
    proc = reentr(["-r", *FOREVER], tty=True)
    target = int(proc.out.expect(r"^pid (\d+)$").group(1))
    proc.press("\x1a")  # Ctrl-Z: SIGTSTP to reentr, which holds the terminal
    wait_for(lambda: process_state(proc.proc.pid) == "T" and process_state(target) == "T",
             what="reentr and its target to be stopped")
    edit(project / "a.txt", "changed while suspended\n")
    edit(project / "b.txt", "this too\n")
    os.kill(proc.proc.pid, signal.SIGCONT)  # what `fg` sends (the terminal is still reentr's)
    restarted = int(proc.out.expect(r"^pid (\d+)$").group(1))
    assert restarted != target
    assert process_state(target) == ""
    proc.press(" ")  # the keys work again
    proc.out.expect(r"^pid \d+$")
    proc.press("q")
    assert proc.wait() == 0
    assert proc.out.count(r"^pid ") == 3, "one restart for both changes, one for space"


@pytest.mark.timeout(60)
def test_ctrl_z_while_the_utility_holds_the_terminal_suspends_the_job_too(
    reentr: Start, project: Path
) -> None:
    proc = reentr([*ASK], tty=True)
    pid = int(proc.out.expect(r"^asking (\d+)$").group(1))
    proc.press("\x1a")  # SIGTSTP to the utility's group, which has the terminal
    wait_for(lambda: process_state(proc.proc.pid) == "T" and process_state(pid) == "T",
             what="reentr and the utility to be stopped")
    os.kill(proc.proc.pid, signal.SIGCONT)
    wait_for(lambda: process_state(pid) in ("S", "R"), what="the utility to run again")
    proc.press("after\n")
    proc.out.expect(r"^got after$")
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT


@pytest.mark.timeout(60)
def test_rs_and_enter_restarts_as_in_nodemon(reentr: Start, project: Path) -> None:
    proc = reentr(["-r", *FOREVER], tty=True)
    first = int(proc.out.expect(r"^pid (\d+)$").group(1))
    proc.press("rs\n")
    second = int(proc.out.expect(r"^pid (\d+)$").group(1))
    assert second != first
    proc.press("q")
    assert proc.wait() == 0
