"""A command that writes into its own tree, end to end: the loop guard, reentr's own files,
the program a build writes, and builds run as a shell would."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from helpers import DEADLINE, REENTR, Reentr, edit, stays_false, wait_for
from reentr.loops import CHECKS, ROUNDS

Start = Callable[..., Reentr]

WRITES_ITS_TREE = ["sh", "-c", "echo ran; exec date +%N > out.txt"]

def _runs_ended(proc: Reentr) -> int:
    """Once every run started so far has exited and printed: how many there were."""
    events = proc.events
    assert events is not None

    def settled() -> int | None:
        records = [json.loads(x) for x in events.read_text().splitlines() if x]
        starts = sum(r["event"] == "start" for r in records)
        exits = sum(r["event"] == "exited" for r in records)
        return starts if starts == exits and proc.out.count("^ran$") == starts else None

    return wait_for(settled, what="every run to end")

LOOP_LINE = (r"out\.txt is written again by every run, even one made for it alone: no longer "
             r"reacting to its changes while a run could write it \(an edit made while nothing "
             r"runs still counts\)\. If it is an output, leave it off the list; if it is an "
             r"input, run with --no-loop-guard$")


@pytest.mark.parametrize("mode", ["-a", "-r"])
def test_a_command_that_writes_into_its_tree_stops_after_a_few_runs(
    reentr: Start, project: Path, mode: str
) -> None:
    # entr mode's -a: a change seen while the run is still ending leads to one more run, not
    # nothing, so the loop goes on until the guard steps in, however loaded the machine.
    # -r: the command writes and exits at once, and the batch with its write may be seen
    # before its exit has been processed; reentr takes the exit first, and so knows the write
    # came from a run that ended by itself.
    (project / "out.txt").write_text("")
    proc = reentr(["-n", mode, *WRITES_ITS_TREE], files=["a.txt", "out.txt"], exits=True)
    proc.err.expect(LOOP_LINE)
    runs = _runs_ended(proc)
    # The first run, ROUNDS rounds, then CHECKS runs made for out.txt alone (and -a's one
    # more for a change seen as a run ends).
    assert 1 < runs <= 1 + ROUNDS + CHECKS + 1
    # Nothing more comes of it, and another file's edit runs once, as usual.
    edit(project / "a.txt", "edited\n")
    wait_for(lambda: _runs_ended(proc) == runs + 1, what="the run after the edit")
    stays_false(lambda: proc.out.count("^ran$") > runs + 1, 1.0, "a run for out.txt")
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT
    assert proc.out.count("^ran$") == runs + 1
    assert proc.err.count("is written again by every run") == 1


def test_an_edit_of_a_looping_path_made_while_nothing_runs_counts(
    reentr: Start, project: Path
) -> None:
    # The user's own edit of the file, once the loop has been stopped, is a change (the
    # command then writes it again, and the guard steps in again, saying nothing new).
    (project / "out.txt").write_text("")
    proc = reentr(["-n", "-a", *WRITES_ITS_TREE], files=["b.txt", "out.txt"], exits=True)
    proc.err.expect(r"out\.txt is written again by every run")
    runs = _runs_ended(proc)
    edit(project / "out.txt", "by hand\n")
    wait_for(lambda: _runs_ended(proc) > runs, what="the run after the edit")
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT
    assert proc.err.count("is written again by every run") == 1


# A slow build that copies the source out of the tree, and a program that serves the copy.
_SLOW_BUILD = "sleep 0.5; cp src.txt \"$OUT/built.txt\""
_SERVES = [sys.executable, "-c",
           "import os, signal; print('serving', open(os.environ['OUT'] + '/built.txt').read(), "
           "flush=True); signal.pause()"]


def _builds(events: Path) -> int:
    """How many builds reentr has started, from its --events file."""
    return sum(r["event"] == "start" and r["role"] == "build"
               for r in (json.loads(x) for x in events.read_text().splitlines() if x))


def _more_builds(events: Path, than: int) -> bool:
    return _builds(events) > than


def _saves_during_builds(proc: Reentr, source: Path) -> int:
    """Save v2 while nothing runs, then ROUNDS more, each once the build the one before
    started is under way: as many changes in a row that a run could have written as the
    loop guard needs. The number of the last."""
    events = proc.events
    assert events is not None
    last = 2 + ROUNDS
    for number in range(2, last + 1):
        before = _builds(events)
        edit(source, f"v{number}")
        if number < last:
            wait_for(partial(_more_builds, events, before), what=f"the build of v{number}")
    return last


def test_saves_made_again_and_again_while_builds_run_are_built_to_the_last(
    reentr: Start, project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Saves made one after another, each while the build that the one before started runs
    (an autosave, a user who saves twice during a slow build). The last one is built and
    served, nothing is said of a loop, and the file counts as before."""
    out = tmp_path_factory.mktemp("out")  # outside the watched tree
    source = project / "src.txt"
    source.write_text("v1")
    proc = reentr(["watch", "-n", "--build", _SLOW_BUILD, "-r", "--", *_SERVES], files="",
                  env={"OUT": str(out)}, exits=True)
    proc.out.expect(r"^serving v1$")
    last = _saves_during_builds(proc, source)
    proc.out.expect(rf"^serving v{last}$")
    assert "is written again by every run" not in proc.err.text()
    edit(source, "again")
    proc.out.expect(r"^serving again$")
    proc.signal(signal.SIGINT)
    proc.wait()


_MAKEFILE = ("$(OUT)/built.txt: src.txt\n"
             "\tcat src.txt > $(OUT)/next.txt; sleep 0.5; cp $(OUT)/next.txt $@\n")
"""A make rule that reads its source as it starts and writes its output at its end, as a
compiler does: an output finished after a save looks newer than it."""


def test_with_make_the_last_of_saves_made_during_builds_is_built(
    reentr: Start, project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The build under way when a change is held is for an older content, and is stopped as
    for any change: left to finish, its output would look newer than the save, and make
    would find nothing to do for the last save (which a new user met with C sources)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed (CI installs it)")
    out = tmp_path_factory.mktemp("out")  # outside the watched tree
    (project / "Makefile").write_text(_MAKEFILE)
    source = project / "src.txt"
    source.write_text("v1")
    proc = reentr(["watch", "-n", "--build", "make -s", "-r", "--", *_SERVES], files="",
                  env={"OUT": str(out)}, exits=True)
    proc.out.expect(r"^serving v1$")
    last = _saves_during_builds(proc, source)
    proc.out.expect(rf"^serving v{last}$")
    proc.signal(signal.SIGINT)
    proc.wait()


def test_a_write_made_while_the_utility_runs_is_dropped_as_entr_drops_it(
    reentr: Start, project: Path
) -> None:
    """Without -a or -r, entr drops what changes while the utility runs: the utility's own
    write of a listed file, run after run, is neither a loop nor a change held for a run
    after it. One run per edit, and none of its own."""
    (project / "out.txt").write_text("")
    writes_then_works = ["sh", "-c", "echo ran; date +%N > out.txt; sleep 0.3"]
    proc = reentr(["-n", *writes_then_works], files=["a.txt", "out.txt"], exits=True)
    proc.run_ended()
    for number in range(1, ROUNDS + 2):
        edit(project / "a.txt", f"edit {number}\n")
        proc.run_ended()
    stays_false(lambda: proc.out.count("^ran$") > ROUNDS + 2, 2.0, "a run nobody asked for")
    assert proc.out.count("^ran$") == ROUNDS + 2
    proc.signal(signal.SIGINT)
    proc.wait()


def test_no_loop_guard_keeps_reacting(reentr: Start, project: Path) -> None:
    (project / "out.txt").write_text("")
    proc = reentr(["-n", "-a", "--no-loop-guard", *WRITES_ITS_TREE], files=["out.txt"])
    wait_for(lambda: proc.out.count("^ran$") >= 2 * ROUNDS, what="runs past the guard")
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT
    assert "is written again by every run" not in proc.err.text()

@pytest.mark.parametrize("mode", ["entr", "watch"])
def test_the_events_file_inside_the_tree_causes_no_run(
    reentr: Start, project: Path, mode: str
) -> None:
    events = project / "restarts.jsonl"
    args = ["-n", "-r", "--events", str(events), "sh", "-c", "echo ran; exec sleep 60"]
    # In entr mode the file is even on the list.
    proc = (reentr(["watch", *args[:4], "--", *args[4:]], files="") if mode == "watch"
            else reentr(args, files=["a.txt", "restarts.jsonl"]))
    proc.out.expect("^ran$")
    edit(project / "a.txt", "edited\n")
    proc.err.expect(r"restart #1 ")
    proc.out.expect("^ran$")
    # The restart wrote its own events; had they counted, a second restart would follow.
    # A second edit is the evidence that reentr went on: exactly one more restart.
    edit(project / "a.txt", "edited again\n")
    proc.err.expect(r"restart #2 ")
    proc.out.expect("^ran$")
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT
    starts = [json.loads(x) for x in events.read_text().splitlines()]
    assert sum(r["event"] == "start" for r in starts) == 3
    assert proc.out.count("^ran$") == 3

def test_a_build_is_run_as_a_shell_would(reentr: Start, project: Path) -> None:
    proc = reentr(["-n", "--build", "exit 3", "-r", "sh", "-c", "sleep 60"])
    proc.err.expect(r"build failed \(exit status 3\); nothing is running yet; the next "
                    r"change builds again")
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT
    assert "not found" not in proc.err.text()

def test_the_program_a_build_writes_is_looked_up_after_the_build(
    reentr: Start, project: Path
) -> None:
    (project / "prog.src").write_text("#!/bin/sh\necho serving $(cat prog.src | wc -l)\n"
                                      "exec sleep 60\n")
    build = "cp prog.src app && chmod +x app"
    proc = reentr(["watch", "-n", "-r", "--build", build, "--", "./app"], files="")
    proc.out.expect(r"^serving 3$")
    # The build rewrote ./app: that is no change, so nothing restarts until a real edit.
    edit(project / "prog.src", (project / "prog.src").read_text() + "# more\n")
    proc.out.expect(r"^serving 4$")
    proc.err.expect(r"restart #1 ")
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT
    assert proc.out.count("^serving") == 2
    assert proc.err.count("restart #") == 1

def test_a_new_directory_seen_before_the_build_began_is_never_the_builds(
    reentr: Start, project: Path
) -> None:
    # A generator (or a checkout) makes gen/ and keeps writing into it, moving its
    # modification time up to the moment its first batch is taken; the build begins a
    # moment later. gen/ was taken for the build's directory, its later files for outputs,
    # and an edit there was ignored for the rest of the session (the server went stale).
    # The future modification time here stands for a generator still adding entries.
    events = project.parent / "events.jsonl"
    proc = reentr(["watch", "-n", "-v", "-p", "--events", str(events), "--build", "sleep 2", "-r",
                   "--", "sleep", "600"], files="")
    proc.err.expect("watching")
    (project / "gen").mkdir()
    (project / "gen" / "a.c").write_text("1\n")
    ahead = time.time() + 0.5
    os.utime(project / "gen", (ahead, ahead))
    wait_for(lambda: _builds(events) == 1, what="the build for gen/a.c")
    proc.err.expect(r"changed: gen/a\.c$")
    (project / "gen" / "b.c").write_text("1\n")  # while the build runs: a change
    proc.err.expect(r"restart #1 .*\(2 runs, 1 cancelled\)")
    edit(project / "gen" / "a.c", "2\n")
    proc.err.expect(r"restart #2 .* gen/a\.c$")
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT
    assert "outputs" not in proc.err.text()


def test_a_build_that_does_not_write_the_program_says_so_and_keeps_watching(
    reentr: Start, project: Path
) -> None:
    proc = reentr(["watch", "-n", "-r", "--build", "true", "--", "./app"], files="")
    proc.err.expect(r"cannot start './app' after the build: \./app: No such file or "
                    r"directory; does the build write it\? The next change builds again$")
    (project / "app").write_text("#!/bin/sh\necho serving\nexec sleep 60\n")
    (project / "app").chmod(0o755)
    # The program itself is no trigger (a build writes it); the next edit builds again.
    edit(project / "a.txt", "edited\n")
    proc.out.expect("^serving$")
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT

def test_without_a_build_a_missing_program_is_refused_up_front(
    reentr: Start, project: Path
) -> None:
    proc = reentr(["watch", "-n", "-r", "--", "./app"], files="")
    assert proc.wait() == 1
    assert proc.err.text() == "reentr: cannot run './app': no such executable file"

@pytest.mark.parametrize(("args", "stdin", "config", "says"), [
    (["watch", "--build", "nosuchmake-x -j2", "--", "true"], "", "",
     "--build: cannot run 'nosuchmake-x': no such program on PATH"),
    (["--build", "nosuchmake-x", "true"], "a.txt\n", "",
     "--build: cannot run 'nosuchmake-x': no such program on PATH"),
    (["watch", "--build", "./build.sh", "--", "true"], "", "",
     "--build: cannot run './build.sh': no such executable file"),
    (["watch", "--", "true"], "", 'build = "nosuchmake-x"\n',
     "reentr.toml: build: cannot run 'nosuchmake-x'"),
    (["up"], "", '[services.api]\nbuild = "nosuchmake-x"\ncommand = "true"\n',
     "reentr.toml [services.api]: --build: cannot run 'nosuchmake-x'"),
])
def test_a_build_whose_program_is_missing_is_refused_up_front(
    project: Path, args: list[str], stdin: str, config: str, says: str
) -> None:
    # It was started at every change instead: `/bin/sh: nosuchmake: not found` and a failed
    # build each time, and nothing ever built.
    (project / "a.txt").write_text("a\n")
    if config:
        (project / "reentr.toml").write_text(config)
    done = subprocess.run([*REENTR, *args], cwd=project, input=stdin, capture_output=True,
                          text=True, timeout=20, check=False)
    assert done.returncode == 1
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert says in done.stderr, done.stderr
    assert done.stdout == ""


def test_a_build_with_shell_syntax_is_left_to_the_shell(reentr: Start, project: Path) -> None:
    # `nosuchmake || true` succeeds: only a build that is one plain program is looked up.
    proc = reentr(["watch", "-n", "--build", "nosuchmake-x 2>/dev/null || true", "--",
                   "echo", "ran"], files="")
    proc.out.expect("^ran$")
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT


def test_a_program_without_a_probe_that_writes_its_tree_as_it_starts_is_told_why_it_loops(
    reentr: Start, project: Path
) -> None:
    # A worker that logs into the watched tree: each start's write restarts it, dozens of
    # times a second, for ever; it went on without a word (no readiness probe: no start-up
    # span, and a user's save just as it starts looks the same, so nothing is muted).
    logs = ["sh", "-c", "echo started >> worker.log; echo started; exec sleep 600"]
    proc = reentr(["watch", "-r", "-n", "--", *logs], files="", exits=True)
    proc.err.expect(r"worker\.log changed just as the program started, 20 times in a row, "
                    r"restarting it each time\. If the program writes it, --ignore worker\.log, "
                    r"or a \.gitignore line; or give the program a readiness probe")
    proc.signal(signal.SIGINT)
    proc.wait()
    assert proc.err.count(r"changed just as the program started") == 1


def test_reentrs_own_output_redirected_into_the_tree_is_no_change(project: Path) -> None:
    """`reentr watch ... 2> err.log` inside the watched tree: reentr's own lines (and the
    command's) are written there, and must not restart the command."""
    log = project / "err.log"
    events = project.parent / "events.jsonl"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [*REENTR, "watch", "-n", "-r", "--events", str(events), "--", sys.executable, "-c",
             "import signal, sys; print('up', file=sys.stderr, flush=True); signal.pause()"],
            cwd=project, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
            start_new_session=True)
    try:
        wait_for(lambda: log.read_text().count("up") == 1, what="the first start")
        edit(project / "a.txt", "edited\n")
        wait_for(lambda: log.read_text().count("up") == 2, what="the restart for the edit")
        stays_false(lambda: log.read_text().count("up") > 2, 1.0,
                    what="a restart for reentr's own lines")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(DEADLINE)
    assert [json.loads(x)["paths"] for x in events.read_text().splitlines()
            if json.loads(x)["event"] == "change"] == [[str(project / "a.txt")]]
