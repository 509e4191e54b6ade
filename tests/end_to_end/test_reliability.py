"""What a supervisor must survive, end to end: file names that are not UTF-8 or that hold
control characters, and the other faults of the reliability issue, with real files and
processes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from helpers import APPS, REENTR, Reentr, edit, event_records, process_state, wait_for

Start = Callable[..., Reentr]
# Prints, in hex, the bytes of REENTR_CHANGED and of its first argument (/_).
SHOW_BYTES = [sys.executable, "-c",
              "import os, sys; print('run', os.environb.get(b'REENTR_CHANGED', b'').hex(), "
              "os.fsencode(sys.argv[1]).hex(), flush=True)"]
BAD = os.fsdecode(b"bad\xff.txt")
"""A file name that is not UTF-8 (0xff never appears in UTF-8), as Python holds it."""


def _ran(proc: Reentr, path: Path) -> None:
    """Wait for a run whose REENTR_CHANGED and /_ are exactly the bytes of `path`."""
    raw = os.fsencode(str(path)).hex()
    proc.out.expect(rf"^run {raw} {raw}$")


@pytest.mark.timeout(60)
def test_entr_mode_runs_for_a_name_that_is_not_utf8_with_its_exact_bytes(
    reentr: Start, project: Path
) -> None:
    (project / BAD).write_text("1\n")
    proc = reentr(["-n", "-p", *SHOW_BYTES, "/_"], files=[BAD, "a.txt"], exits=True)
    proc.err.expect(r"watching 2 files")
    # Another such name in the same directory, not on the list, must not stop the watch.
    (project / os.fsdecode(b"other\xfe.txt")).write_text("x\n")
    edit(project / BAD, "2\n")
    _ran(proc, project / BAD)
    proc.run_ended()
    edit(project / "a.txt", "a2\n")
    _ran(proc, project / "a.txt")
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT
    assert "watching failed" not in proc.err.text()
    assert "\\xff" in proc.err.text(), "the status line shows the byte escaped"


@pytest.mark.timeout(60)
def test_watch_follows_directories_and_files_whose_names_are_not_utf8(
    reentr: Start, project: Path
) -> None:
    odd = project / os.fsdecode(b"dir\xfd")
    odd.mkdir()
    proc = reentr(["watch", "-n", "-p", "--", *SHOW_BYTES, "/_"], files="", exits=True)
    proc.err.expect(r"watching 2 directories")
    inside = odd / os.fsdecode(b"g\xfc.txt")
    edit(inside, "1\n")
    _ran(proc, inside)
    proc.run_ended()
    newer = project / os.fsdecode(b"new\xfa")
    newer.mkdir()
    edit(newer / "x.txt", "1\n")
    _ran(proc, newer / "x.txt")
    proc.run_ended()
    edit(project / "a.txt", "a2\n")  # and the ordinary files are still seen
    _ran(proc, project / "a.txt")
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT
    assert "watching failed" not in proc.err.text()
    assert "dir\\xfd/g\\xfc.txt" in proc.err.text()


def test_watch_list_prints_names_as_their_exact_bytes(project: Path) -> None:
    (project / BAD).write_text("1\n")
    done = subprocess.run([*REENTR, "watch", "--list"], cwd=project, capture_output=True,
                          timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert b"bad\xff.txt" in done.stdout.split(b"\n")


@pytest.mark.timeout(60)
def test_a_name_with_a_newline_or_an_escape_cannot_break_a_status_line(
    reentr: Start, project: Path
) -> None:
    name = "evil\n\x1b[31mred.txt"
    (project / name).write_text("1\n")
    watch = reentr(["watch", "-n", "-p", "--", *SHOW_BYTES, "/_"], files="", exits=True)
    watch.err.expect(r"watching 1 directory")
    edit(project / name, "2\n")
    _ran(watch, project / name)
    line = wait_for(lambda: next((x for x in watch.err.lines if " run #1 " in x), None))
    assert line.endswith("evil\\n\\x1b[31mred.txt")
    assert "\x1b" not in watch.err.text()
    watch.signal(signal.SIGINT)
    assert watch.wait() == -signal.SIGINT


def _alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie is dead)."""
    return process_state(pid) not in ("", "Z", "X")


def _gone(pid: int) -> bool:
    return not _alive(pid)


@pytest.mark.skipif(sys.platform != "linux", reason="a child subreaper is a Linux feature")
@pytest.mark.timeout(60)
def test_a_process_that_leaves_its_group_is_stopped_at_each_restart_and_at_exit(
    reentr: Start, project: Path
) -> None:
    proc = reentr(["-r", sys.executable, str(APPS / "escape.py")])
    escaped = [int(proc.out.expect(r"^escaped (\d+)$").group(1))]
    for number in range(1, 4):
        edit(project / "a.txt", f"a{number}\n")
        escaped.append(int(proc.out.expect(r"^escaped (\d+)$").group(1)))
        wait_for(partial(_gone, escaped[-2]),
                 what=f"the process that escaped before restart #{number} to be stopped")
        proc.err.expect(rf"stopping 1 process that had left its process group and outlived "
                        rf"the run: {escaped[-2]} \(python")
    assert _alive(escaped[-1])
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT
    assert not _alive(escaped[-1]), "the last one is stopped before reentr exits"
    proc.err.expect(rf"outlived the run: {escaped[-1]} ")


def _children(pid: int) -> list[tuple[int, bytes]]:
    """(pid, command line) of each child of `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[-1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if ppid == pid:
            found.append((int(entry), cmdline))
    return found


@pytest.mark.skipif(sys.platform != "linux", reason="the guardian is found through /proc")
@pytest.mark.timeout(60)
def test_a_killed_guardian_is_said_and_replaced_so_a_sigkill_still_takes_the_children(
    reentr: Start, project: Path
) -> None:
    show_pid = "import os, signal; print('pid', os.getpid(), flush=True); signal.pause()"
    proc = reentr(["-r", sys.executable, "-c", show_pid])
    target = int(proc.out.expect(r"^pid (\d+)$").group(1))
    guardian = next(pid for pid, cmdline in _children(proc.proc.pid)
                    if cmdline.startswith(b"/bin/sh\0-c\0"))
    os.kill(guardian, signal.SIGKILL)
    proc.err.expect(rf"the guardian \(pid {guardian}\) ended \(killed by SIGKILL\); another one "
                    r"\(pid \d+\) now holds its 1 process group$")
    proc.signal(signal.SIGKILL)
    proc.proc.wait(30)
    wait_for(lambda: not _alive(target), what="the target to be killed by the new guardian")


def _without_dac_override() -> list[str]:
    """A prefix that runs reentr unable to read what its permissions forbid, root included."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root, and setpriv (util-linux) is not there to drop "
                    "CAP_DAC_OVERRIDE, so no directory is unreadable")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


@pytest.mark.timeout(60)
def test_a_directory_that_cannot_be_read_is_said_once(
    reentr: Start, project: Path
) -> None:
    wrap = _without_dac_override()
    (project / "locked").mkdir(mode=0)
    try:
        proc = reentr(["watch", "-n", "-p", "--", "true"], files="", wrap=wrap, exits=True)
        proc.err.expect(r"^reentr: cannot read 1 directory \(permission denied\): "
                        rf"{project / 'locked'}; the files in it are not watched$")
        (project / "later").mkdir(mode=0)  # found when it appears
        proc.err.expect(rf"cannot read 1 directory \(permission denied\): {project / 'later'};")
        edit(project / "a.txt", "a2\n")  # and the rest is watched
        proc.run_ended()
        proc.signal(signal.SIGINT)
        assert proc.wait() == -signal.SIGINT
        assert proc.err.count("cannot read") == 2
    finally:
        (project / "locked").chmod(0o755)
        if (project / "later").exists():
            (project / "later").chmod(0o755)


def test_events_never_writes_through_a_symbolic_link(project: Path) -> None:
    victim = project / "precious.txt"
    victim.write_text("keep me\n")
    (project / "events.jsonl").symlink_to(victim)
    done = subprocess.run([*REENTR, "--events", "events.jsonl", "touch", "ran"], cwd=project,
                          input=b"a.txt\n", capture_output=True, timeout=30, check=False)
    assert done.returncode == 1
    assert done.stderr.decode().splitlines() == [
        "reentr: --events: 'events.jsonl' is a symbolic link; give the path of the file itself"]
    assert victim.read_text() == "keep me\n"
    assert not (project / "ran").exists()


PACED_WRITER = """
import select, sys, time
for i in range(int(sys.argv[2])):
    last = time.time()
    with open(sys.argv[1], "w") as f:
        f.write(f"{i}\\n")
    select.select([], [], [], 0.005)  # a writer that waits for a core between writes
print(last)
"""


@pytest.mark.skipif(not os.path.exists("/proc/loadavg"), reason="load is read from /proc")
@pytest.mark.timeout(60)
def test_a_burst_of_uneven_writes_on_a_loaded_machine_stays_a_few_runs(
    reentr: Start, project: Path
) -> None:
    # 30 writes 5 ms apart: each pause is longer than the 2 ms --debounce. With every core
    # busy, reentr takes the pause after its first batch as a burst cut short and widens its
    # window, so the burst gives a few runs (entr's fixed window would give 30). Most often
    # two; with every core busy the writer can wait for one longer than three times any pause
    # before (benchmarks/storm.py: at most 3 from one burst, 1.05-1.10 on average).
    proc = reentr(["-r", "-n", sys.executable, "-c", "import signal; signal.pause()"],
                  files=["a.txt"], exits=True)
    proc.err.expect(r"watching 1 file")
    events = proc.events
    assert events is not None
    wait_for(lambda: '"spawned"' in events.read_text(), what="the first start")
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"],
                             start_new_session=True) for _ in range((os.cpu_count() or 1) + 2)]
    try:
        writer = subprocess.run([sys.executable, "-c", PACED_WRITER, str(project / "a.txt"),
                                 "30"], check=True, timeout=30, capture_output=True, text=True)
    finally:
        for loop in busy:
            os.killpg(loop.pid, signal.SIGKILL)
            loop.wait()
    written = float(writer.stdout)  # just before the last write

    def started_after_the_last_write() -> bool:
        return any(r["event"] == "spawned" and r["time"] > written
                   for r in event_records(events))

    wait_for(started_after_the_last_write, what="the start with the burst's last write")
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT
    assert events.read_text().count('"restart"') <= 3
