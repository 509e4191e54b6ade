"""End to end: entr mode through the installed `reentr`, with real files, processes, signals."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import TARGET
from helpers import (
    DEADLINE,
    REENTR,
    Reentr,
    atomic_edit,
    edit,
    fifo_holders_gone,
    stays_false,
    wait_for,
)

Start = Callable[..., Reentr]
RUN = [sys.executable, "-c", "import sys; print('run', *sys.argv[1:], flush=True)"]


def run_cli(
    args: list[str], stdin: str = "", cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*REENTR, *args], input=stdin, capture_output=True, text=True, cwd=cwd, timeout=30,
        check=False,
    )


# Usage and early errors -----------------------------------------------------------------------


def test_help_and_version() -> None:
    shown = run_cli(["--help"])
    assert shown.returncode == 0
    assert "-r, --restart" in shown.stdout and "Exit status" in shown.stdout
    version = run_cli(["--version"])
    assert version.returncode == 0 and version.stdout.startswith("reentr ")


@pytest.mark.parametrize(("command", "usage"), [
    ([], "Usage: reentr [-acdnprsz] [OPTIONS] UTILITY [ARGUMENT [/_] ...] < filenames"),
    (["watch"], "Usage: reentr watch [PATH]... [OPTIONS] -- COMMAND [ARG]..."),
    (["bench"], "Usage: reentr bench [OPTIONS] [-- COMMAND [ARG]...]"),
])
def test_help_speaks_of_the_command_line_not_of_python(command: list[str], usage: str) -> None:
    shown = run_cli([*command, "--help"])
    assert shown.returncode == 0
    assert shown.stdout.splitlines()[0] == usage
    for internal in ("<list[str]>", "<int range>", "[default: 0]"):
        assert internal not in shown.stdout, internal


def test_a_subcommand_typo_at_a_terminal_names_the_subcommand(project: Path) -> None:
    # At a terminal, entr mode's usage line came, with no word of `reentr watch`.
    master, slave = os.openpty()
    try:
        done = subprocess.run([*REENTR, "wacth", "--", "ls"], stdin=slave, capture_output=True,
                              text=True, timeout=20, cwd=project, check=False)
    finally:
        os.close(slave)
        os.close(master)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == "reentr: no subcommand 'wacth'; did you mean reentr watch?\n"


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["-x", "true"], "a.txt\n", "no such option: -x"),
        ([], "a.txt\n", "usage: reentr"),
        (["-s", "echo", "hi"], "a.txt\n", "-s takes the command as one argument"),
        (["no-such-program-reentr"], "a.txt\n", "cannot run 'no-such-program-reentr'"),
        (["--stop-signal", "SIGNOPE", "true"], "a.txt\n", "unknown signal 'SIGNOPE'"),
        (["--stop-timeout", "soon", "true"], "a.txt\n", "'soon' is not a duration"),
        (["--on-busy", "later", "true"], "a.txt\n",
         "invalid value for '--on-busy': 'later' is not one of restart, queue, ignore"),
        (["true"], "", "no regular files to watch"),
        (["true"], "\n\n", "no regular files to watch"),
        (["true"], "missing.txt\n", "no regular files to watch"),
        (["true"], ".\n", "no regular files to watch"),
        (["touch", "ran"], "a.txt\0b.txt\0", "holds a NUL byte: give one path per line "
         "(find -print, not -print0)"),
        (["wacth", "--", "touch", "ran"], "a.txt\n",
         "cannot run 'wacth': no such program on PATH; check the name, or give its path; or "
         "did you mean reentr watch?"),
    ],
    ids=["unknown-flag", "no-utility", "shell-words", "no-program", "bad-signal",
         "bad-duration", "bad-choice", "empty-list", "blank-lines", "missing-only",
         "directory-only", "nul-separated", "subcommand-typo"],
)
def test_bad_input_is_one_line_and_status_1(
    project: Path, args: list[str], stdin: str, message: str
) -> None:
    done = run_cli(args, stdin, cwd=project)
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if "cannot watch" not in line]
    assert len(lines) == 1, done.stderr
    assert message in lines[0]
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert not (project / "ran").exists()


def test_missing_file_is_warned_and_skipped(reentr: Start) -> None:
    proc = reentr(["-z", *RUN], files=["gone.txt", "a.txt"])
    proc.err.expect(r"cannot watch 'gone.txt': No such file or directory; skipped")
    proc.err.expect(r"watching 1 file")
    assert proc.wait() == 0


def test_terminal_on_stdin_gets_usage(project: Path) -> None:
    master, slave = os.openpty()
    try:
        done = subprocess.run(
            [*REENTR, "true"], stdin=slave, capture_output=True, text=True, cwd=project,
            timeout=30, check=False,
        )
    finally:
        os.close(master)
        os.close(slave)
    assert done.returncode == 1
    assert "usage: reentr" in done.stderr and "standard input" in done.stderr


# Runs and triggers ---------------------------------------------------------------------------


def test_runs_then_runs_again_on_each_change(reentr: Start, project: Path) -> None:
    proc = reentr(["-n", *RUN], exits=True)
    proc.out.expect(r"^run$")
    proc.run_ended()
    edit(project / "a.txt", "changed")
    proc.out.expect(r"^run$")
    proc.run_ended()
    atomic_edit(project / "b.txt", "saved like vim")
    proc.out.expect(r"^run$")
    proc.run_ended()
    (project / "a.txt").unlink()
    (project / "a.txt").write_text("recreated")
    proc.out.expect(r"^run$")
    proc.run_ended()
    os.chmod(project / "b.txt", 0o600)
    proc.out.expect(r"^run$")
    proc.run_ended()
    edit(project / "a.txt", "and the recreated file is still watched")
    proc.out.expect(r"^run$")


def test_an_event_that_leaves_the_file_as_it_was_starts_nothing(
    reentr: Start, project: Path
) -> None:
    # vim sets a file's mode again after its fsync; when the fsync outlasts the quiet window
    # (a busy disk), that event comes alone. entr runs only for a new mode; so does reentr.
    proc = reentr(["-n", "-p", *RUN, "/_"], exits=True)
    proc.err.expect(r"watching 2 files")
    edit(project / "a.txt", "saved")
    proc.out.expect(rf"^run {project / 'a.txt'}$")
    proc.run_ended()
    mode = (project / "a.txt").stat().st_mode & 0o7777
    os.chmod(project / "a.txt", mode)
    edit(project / "b.txt", "marker")  # its run comes after anything the chmod started
    proc.out.expect(rf"^run {project / 'b.txt'}$")
    proc.run_ended()
    os.chmod(project / "a.txt", mode ^ 0o100)  # a new mode is a change
    proc.out.expect(rf"^run {project / 'a.txt'}$")
    assert proc.out.count(r"^run") == 3


def test_a_save_whose_writer_pauses_after_emptying_the_file_is_one_run_on_its_content(
    reentr: Start, project: Path
) -> None:
    # Opening a file for writing empties it; a writer that then loses its core for longer
    # than the quiet window (a loaded machine) left a batch with the file empty, and the
    # program ran on nothing, then again on the content.
    show = [sys.executable, "-c",
            "import sys; print('content', open(sys.argv[1]).read() or '<empty>', flush=True)"]
    proc = reentr(["-n", "-p", *show, "/_"], exits=True)
    proc.err.expect(r"watching 2 files")
    writer = ("import sys, threading\nf = open(sys.argv[1], 'w')\nf.flush()\n"
              "threading.Event().wait(0.02)\nf.write('saved')\nf.close()")
    subprocess.run([sys.executable, "-c", writer, str(project / "a.txt")], check=True,
                   timeout=30)
    proc.out.expect(r"^content saved$")
    proc.run_ended()
    edit(project / "b.txt", "marker")
    proc.out.expect(r"^content marker$")
    assert proc.out.count(r"^content") == 2
    (project / "b.txt").write_text("")  # emptied on purpose: still a run, a moment later
    proc.out.expect(r"^content <empty>$")


@pytest.mark.skipif(shutil.which("vim") is None, reason="needs vim (.ci/run installs it)")
@pytest.mark.parametrize("backupcopy", ["auto", "yes"])
def test_each_vim_save_is_one_run(reentr: Start, project: Path, backupcopy: str) -> None:
    # vim's own way: a swap file beside the file, a rename or an in-place write, an fsync,
    # then its mode set again (backupcopy=yes writes in place, auto through a new file).
    proc = reentr(["-n", "-p", *RUN, "/_"], exits=True)
    proc.err.expect(r"watching 2 files")
    for number in range(1, 6):
        subprocess.run(
            ["vim", "-u", "NONE", "-i", "NONE", "-N", "-es", "-c", f"set backupcopy={backupcopy}",
             "-c", f"normal Gosave {number}", "-c", "wq", "a.txt"],
            cwd=project, timeout=30, check=True, stdin=subprocess.DEVNULL)
        proc.out.expect(rf"^run {project / 'a.txt'}$")
        proc.run_ended()
    edit(project / "b.txt", "marker")
    proc.out.expect(rf"^run {project / 'b.txt'}$")
    assert proc.out.count(r"^run") == 6
    assert (project / "a.txt").read_text().endswith("save 5\n")


def test_delete_triggers_a_run(reentr: Start, project: Path) -> None:
    proc = reentr(["-n", *RUN], exits=True)
    proc.out.expect(r"^run$")
    proc.run_ended()
    (project / "b.txt").unlink()
    proc.out.expect(r"^run$")


def test_a_burst_of_50_writes_gives_one_run_or_two_on_a_loaded_machine(
    reentr: Start, project: Path
) -> None:
    # 50 writes as fast as Python makes them: one change. A writer descheduled mid-burst by a
    # busy machine can cut it once (benchmarks/storm.py: 1.05 runs per burst with 3 busy
    # loops), never more.
    proc = reentr(["-n", *RUN], exits=True)
    proc.out.expect(r"^run$")
    proc.run_ended()
    for i in range(50):
        edit(project / "a.txt", str(i))
    proc.out.expect(r"^run$")
    stays_false(lambda: proc.out.count(r"^run$") > 3, 1.0, what="a third run for one burst")
    assert proc.out.count(r"^run$") in (2, 3)


def test_writes_closer_than_debounce_are_one_run_after_the_last(
    reentr: Start, project: Path
) -> None:
    # --debounce is a quiet window after the last write, not a fixed step: a stream of writes
    # 10 ms apart that lasts four windows is still one change, seen once it stops.
    # The utility says when it started; the stream comes from a writer of its own (60
    # appends, 10 ms apart or more), and the file's modification time says when it ended.
    stamped = [sys.executable, "-c",
               "import sys, time; print('run', sys.argv[1], time.time(), flush=True)"]
    proc = reentr(["-n", "-p", "--debounce", "150ms", *stamped, "/_"], exits=True)
    proc.err.expect(r"watching 2 files")
    writer = subprocess.Popen(
        ["sh", "-c", "i=0; while [ $i -lt 60 ]; do echo more >> a.txt; sleep 0.01; "
         "i=$((i + 1)); done"], cwd=project)
    assert writer.wait(30) == 0
    last_write = (project / "a.txt").stat().st_mtime
    started = float(proc.out.expect(rf"^run {project / 'a.txt'} (\S+)$").group(1))
    # 150 ms after the last write (whose time the kernel stamps from a clock up to a tick
    # behind), not before.
    assert started - last_write >= 0.14, "the run came before the writes were quiet"
    proc.run_ended()
    edit(project / "b.txt", "marker")
    proc.out.expect(rf"^run {project / 'b.txt'} ")
    assert proc.out.count(r"^run") == 2


def test_spaces_in_names_are_kept_and_blank_lines_skipped(reentr: Start, project: Path) -> None:
    spaced = project / " with space .txt"
    spaced.write_text("x")
    proc = reentr(["-n", "-p", *RUN, "/_"], files="\n \n with space .txt\n\n")
    proc.err.expect(r"watching 1 file")
    edit(spaced, "y")
    proc.out.expect(rf"^run {spaced}$")


def test_postpone_waits_for_the_first_change(reentr: Start, project: Path) -> None:
    proc = reentr(["-n", "-p", *RUN, "/_"])
    proc.err.expect(r"watching 2 files")
    edit(project / "b.txt", "now")
    proc.out.expect(rf"^run {project / 'b.txt'}$")
    assert proc.out.count("^run") == 1


def test_placeholder_is_the_first_exact_word_only(reentr: Start, project: Path) -> None:
    link = project / "link.txt"
    link.symlink_to(project / "a.txt")
    proc = reentr(["-n", *RUN, "x/_", "/_", "/_"], files=["link.txt", "b.txt"], exits=True)
    # Before any change /_ is the first listed file, resolved (symlinks too) as entr does.
    proc.out.expect(rf"^run x/_ {project / 'a.txt'} /_$")
    proc.run_ended()
    edit(project / "b.txt", "b2")
    proc.out.expect(rf"^run x/_ {project / 'b.txt'} /_$")


def test_arguments_after_the_utility_are_the_utility_s(reentr: Start) -> None:
    proc = reentr(["-rz", *TARGET, "--exit", "0", "-p", "8000", "-r"])
    proc.out.expect(r"args=-p 8000 -r$")
    assert proc.wait() == 0


def test_clear_screen(reentr: Start, project: Path) -> None:
    once = reentr(["-c", "-z", *RUN])
    assert once.wait() == 0
    assert once.out.raw.startswith(b"\033[2J\033[H") and b"run" in once.out.raw
    twice = reentr(["-cc", "-z", *RUN])
    assert twice.wait() == 0
    assert twice.out.raw.startswith(b"\033[2J\033[3J\033[H")


def test_combined_flags_clear_and_postpone(reentr: Start, project: Path) -> None:
    proc = reentr(["-cpn", *RUN])
    proc.err.expect(r"watching 2 files")
    edit(project / "a.txt", "go")
    proc.out.expect(r"run$")
    assert proc.out.raw.startswith(b"\033[2J\033[H")


def _utility_that_waits(project: Path) -> list[str]:
    """A utility that counts its runs in project/runs, prints `begin N`, then waits until
    project/release-N exists, and prints `end N`."""
    code = (
        "import os, pathlib, select, sys\n"
        "p = pathlib.Path(sys.argv[1]); runs = p / 'runs'\n"
        "n = int(runs.read_text()) + 1 if runs.exists() else 1\n"
        "runs.write_text(str(n)); print('begin', n, flush=True)\n"
        "release = p / f'release-{n}'\n"
        "while not release.exists(): select.select([], [], [], 0.01)\n"
        "print('end', n, flush=True)\n"
    )
    return [sys.executable, "-c", code, str(project)]


@pytest.mark.parametrize("all_events", [False, True], ids=["drops", "with-a"])
def test_changes_during_a_run(reentr: Start, project: Path, all_events: bool) -> None:
    proc = reentr(["-n", "-v", *(["-a"] if all_events else []), *_utility_that_waits(project)],
                  exits=True)
    proc.out.expect(r"^begin 1$")
    edit(project / "a.txt", "during the run")
    dropped = r" \(dropped: a run is in progress\)"
    proc.err.expect(r"changed: .*a\.txt" + ("$" if all_events else dropped))
    (project / "release-1").touch()
    proc.out.expect(r"^end 1$")
    proc.run_ended()
    if all_events:
        proc.out.expect(r"^begin 2$")  # -a: the change during run 1 leads to run 2
        (project / "release-2").touch()
        proc.out.expect(r"^end 2$")
        proc.run_ended()
    # The next change after a run gives the next run number: nothing else ran between.
    edit(project / "b.txt", "after the run")
    expected = 3 if all_events else 2
    proc.out.expect(rf"^begin {expected}$")
    assert proc.out.count(r"^begin") == expected


# -r -------------------------------------------------------------------------------------------


def test_restart_stops_the_whole_group_before_starting_again(
    reentr: Start, project: Path, fifos: Path
) -> None:
    proc = reentr(["-r", *TARGET, "--state", str(fifos), "--grandchild"])
    proc.out.expect(r"started pid=\d+ gen=1")
    edit(project / "a.txt", "restart")
    proc.out.expect(r"started pid=\d+ gen=2")
    # Generation 1, grandchild included, is gone: every holder of its FIFO closed it.
    assert fifo_holders_gone(fifos / "fifo-1")
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT
    assert fifo_holders_gone(fifos / "fifo-2")


def test_a_child_that_exits_is_not_restarted(reentr: Start, project: Path) -> None:
    proc = reentr(["-r", *TARGET, "--exit", "3"])
    proc.out.expect(r"gen=0")
    proc.err.expect(r"exited \(exit status 3\)")
    edit(project / "a.txt", "change")
    proc.out.expect(r"gen=0")
    proc.err.expect(r"exited \(exit status 3\)")
    assert proc.out.count("started") == 2


def test_restart_escalates_to_sigkill(reentr: Start, project: Path, fifos: Path) -> None:
    proc = reentr(["-r", "--stop-timeout", "300ms", *TARGET, "--state", str(fifos),
                   "--ignore-term"])
    proc.out.expect(r"gen=1")
    edit(project / "a.txt", "restart")
    proc.err.expect(r"ignores SIGTERM")
    proc.err.expect(r"did not stop within 0.3s of SIGTERM; sent SIGKILL")
    proc.out.expect(r"gen=2")
    assert fifo_holders_gone(fifos / "fifo-1")


# -z and exit statuses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("utility", "status"),
    [
        (["sh", "-c", "exit 0"], 0),
        (["sh", "-c", "exit 7"], 7),
        (["sh", "-c", "kill -KILL $$"], 128 + 9),
    ],
    ids=["zero", "seven", "killed"],
)
def test_z_exits_with_the_utility_status(reentr: Start, utility: list[str], status: int) -> None:
    assert reentr(["-z", *utility]).wait() == status


def test_rz_restarts_on_change_and_exits_when_the_child_does(
    reentr: Start, project: Path, fifos: Path
) -> None:
    script = project / "run.sh"
    script.write_text(f'[ -e {project}/stop ] && exit 4\nexec {" ".join(TARGET)} '
                      f'--state {fifos}\n')
    proc = reentr(["-rz", "sh", str(script)])
    proc.out.expect(r"gen=1")
    edit(project / "a.txt", "restart")
    proc.out.expect(r"gen=2")
    (project / "stop").touch()
    edit(project / "a.txt", "restart into exit 4")
    assert proc.wait() == 4


@pytest.mark.parametrize(
    ("signum", "status"),
    [(signal.SIGINT, -signal.SIGINT), (signal.SIGHUP, 0), (signal.SIGTERM, 128 + 15)],
    ids=["INT", "HUP", "TERM"],
)
def test_signals_stop_the_children_then_exit(
    reentr: Start, fifos: Path, signum: int, status: int
) -> None:
    proc = reentr(["-r", *TARGET, "--state", str(fifos), "--grandchild"])
    proc.out.expect(r"gen=1")
    proc.signal(signum)
    assert proc.wait() == status
    assert fifo_holders_gone(fifos / "fifo-1", timeout=1)


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_ctrl_c_stops_a_shell_loop_around_reentr(project: Path) -> None:
    # entr exits 0 on SIGINT, so `while true; do ls | entr -d make; done` cannot be stopped
    # (entr#19, #175): the shell takes a child that exited 0 to have handled Ctrl-C. reentr
    # ends by SIGINT, as a shell expects of a program Ctrl-C stopped. The terminal's Ctrl-C
    # reaches the whole job: the shell, reentr and the utility.
    loop = ('while true; do printf "a.txt\\n" | "$@" -n -d touch started; echo looped; '
            "done")
    shell = subprocess.Popen(["bash", "-c", loop, "bash", *REENTR], cwd=project,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        wait_for((project / "started").exists, what="the utility's first run")
        os.killpg(shell.pid, signal.SIGINT)
        assert shell.wait(timeout=DEADLINE) == -signal.SIGINT
        assert shell.stdout is not None and shell.stdout.read() == b""  # never went round
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(shell.pid, signal.SIGKILL)
        shell.wait(timeout=DEADLINE)
        if shell.stdout is not None:
            shell.stdout.close()


def test_sigkill_of_reentr_takes_the_whole_tree_with_it(reentr: Start, fifos: Path) -> None:
    proc = reentr(["-r", *TARGET, "--state", str(fifos), "--grandchild"])
    proc.out.expect(r"gen=1")
    proc.signal(signal.SIGKILL)
    proc.proc.wait(10)
    assert fifo_holders_gone(fifos / "fifo-1")


# -s ------------------------------------------------------------------------------------------


def test_shell_runs_the_command_with_the_file_as_dollar_zero(reentr: Start, project: Path) -> None:
    proc = reentr(["-s", "-n", "echo shell $0; exit 3"], env={"SHELL": "/bin/sh"})
    proc.out.expect(rf"^shell {project / 'a.txt'}$")
    proc.out.expect(r"^sh returned exit code 3$")
    edit(project / "b.txt", "b")
    proc.out.expect(rf"^shell {project / 'b.txt'}$")


def test_shell_gets_the_argument_exactly_as_entr_gives_it(
    reentr: Start, project: Path, tmp_path: Path
) -> None:
    """entr runs `$SHELL -c ARG FILE`: the text as written, the changed file as $0."""
    record = tmp_path / "argv.json"
    shell = tmp_path / "fake-shell"
    shell.write_text(f"#!{sys.executable}\nimport json, sys\n"
                     f"open({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))\n")
    shell.chmod(0o755)
    proc = reentr(["-s", "-n", "-z", "make test"], env={"SHELL": str(shell)})
    assert proc.wait() == 0
    assert json.loads(record.read_text()) == ["-c", "make test", str(project / "a.txt")]


def test_shell_restart_signals_the_program_not_just_the_shell(
    reentr: Start, project: Path, fifos: Path
) -> None:
    command = " ".join([*TARGET, "--state", str(fifos)])
    proc = reentr(["-r", "-s", command], env={"SHELL": "/bin/sh"})
    pid = int(proc.out.expect(r"started pid=(\d+) gen=1").group(1))
    # reentr passes the text as written; sh itself runs a lone command in its own process,
    # and reentr signals the whole group in any case.
    assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1].endswith(b"target.py")
    edit(project / "a.txt", "x")
    proc.out.expect(r"gen=2")
    assert fifo_holders_gone(fifos / "fifo-1")


# -d ------------------------------------------------------------------------------------------


def test_d_runs_once_more_then_exits_2_on_a_new_file(reentr: Start, project: Path) -> None:
    proc = reentr(["-d", "-n", *RUN], exits=True)
    proc.err.expect(r"watching 2 files and 1 directory")
    proc.out.expect(r"^run$")
    proc.run_ended()
    atomic_edit(project / "a.txt", "an atomic save is not a directory change")
    proc.out.expect(r"^run$")
    proc.run_ended()
    (project / ".hidden").write_text("dotfiles do not count without -dd")
    edit(project / "b.txt", "b")
    proc.out.expect(r"^run$")
    proc.run_ended()
    (project / "new.txt").write_text("new")
    proc.err.expect(r"directory altered")
    assert proc.wait() == 2
    assert proc.out.count(r"^run$") == 4


def test_dd_counts_dotfiles_and_r_stops_the_child(
    reentr: Start, project: Path, fifos: Path
) -> None:
    proc = reentr(["-dd", "-r", *TARGET, "--state", str(fifos)])
    proc.out.expect(r"gen=1")
    (project / ".new").write_text("a dotfile")
    assert proc.wait() == 2
    assert proc.out.count("started") == 1
    assert fifo_holders_gone(fifos / "fifo-1", timeout=1)


def test_d_accepts_listed_directories(reentr: Start, project: Path) -> None:
    (project / "sub").mkdir()
    proc = reentr(["-d", "-n", "-p", *RUN], files=["sub", "a.txt"])
    proc.err.expect(r"watching 1 file and 2 directories")
    (project / "sub" / "added.txt").write_text("x")
    assert proc.wait() == 2


def test_d_watches_a_directory_listed_alone(reentr: Start, project: Path) -> None:
    # `echo src | entr -d make`: the directory alone is a list; /_ is that directory.
    (project / "src").mkdir()
    proc = reentr(["-d", "-n", *RUN, "/_"], files=["src"])
    proc.err.expect(r"watching 0 files and 1 directory")
    proc.out.expect(rf"^run {project / 'src'}$")
    (project / "src" / "added.txt").write_text("x")
    assert proc.wait() == 2
    assert proc.out.count(r"^run ") == 2  # once more, then the exit


# Keys ----------------------------------------------------------------------------------------


def test_keys_space_restarts_and_q_quits(reentr: Start, fifos: Path) -> None:
    proc = reentr(["-r", *TARGET, "--state", str(fifos)], tty=True)
    proc.out.expect(r"gen=1")
    proc.press(" ")
    proc.out.expect(r"gen=2")
    proc.press("x")  # any other key does nothing
    proc.press("q")
    assert proc.wait() == 0
    assert proc.out.count("started") == 2


def test_without_n_and_without_a_terminal_it_runs_anyway(reentr: Start) -> None:
    assert reentr(["-z", *RUN]).wait() == 0


def test_n_ignores_keys_even_with_a_terminal(reentr: Start, project: Path, fifos: Path) -> None:
    proc = reentr(["-n", "-r", "-v", *TARGET, "--state", str(fifos)], tty=True)
    proc.out.expect(r"gen=1")
    proc.press(" ")
    proc.press("q")
    edit(project / "a.txt", "a change still restarts")
    proc.err.expect(r"changed: .*a\.txt")
    proc.out.expect(r"gen=2")  # gen=2, not 3: the space did nothing, and q did not quit
    assert proc.proc.poll() is None


def test_the_utility_s_stdin_is_dev_null(reentr: Start) -> None:
    show = [sys.executable, "-c", "import os; print('stdin', os.readlink('/proc/self/fd/0'))"]
    proc = reentr(["-rz", *show])
    proc.out.expect(r"^stdin /dev/null$")
    assert proc.wait() == 0


def test_a_listed_files_directory_deleted_and_made_again_is_watched_again(
    reentr: Start, project: Path
) -> None:
    # `git checkout` or a generator: the directory goes and comes back by the same name, which
    # the kernel may give the same inode number. Its old watch died with it: reentr went deaf.
    src = project / "src"
    src.mkdir()
    (src / "a.py").write_text("print('v1')\n")
    show = [sys.executable, "-c", "import sys; print('run', open(sys.argv[1]).read().strip())",
            "src/a.py"]
    # -a: the deletion itself runs the utility (which fails); a write during that run counts.
    proc = reentr(["-n", "-p", "-a", *show], ["src/a.py"])
    proc.err.expect(r"watching 1 file")
    shutil.rmtree(src)
    src.mkdir()
    (src / "a.py").write_text("print('v2')\n")
    proc.out.expect(r"^run print\('v2'\)")
    edit(src / "a.py", "print('v3')\n")
    proc.out.expect(r"^run print\('v3'\)")
    # Gone for a while: reentr says it waits, and sees the directory come back.
    shutil.rmtree(src)
    proc.err.expect(rf"{src} is gone: watching {project} until it is back")
    src.mkdir()
    proc.err.expect(rf"{src} is back: watching it again")
    edit(src / "a.py", "print('v4')\n")
    proc.out.expect(r"^run print\('v4'\)")
    proc.signal(signal.SIGINT)
    proc.wait()
