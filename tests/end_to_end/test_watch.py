"""End to end: `reentr watch` on real trees in real git repositories: what it reacts to, new
directories, edits of ignore files, the inotify watch budget, polling, --list and explain."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import REENTR, Reentr, atomic_edit, edit, inotify_watches, stays_false, wait_for
from reentr.ignore import BUILTIN

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

Start = Callable[..., Reentr]
# Prints the changed files it was given: REENTR_CHANGED as a JSON list, and its arguments.
SHOW = [sys.executable, "-c",
        "import json, os, sys; print('run', json.dumps(os.environ.get('REENTR_CHANGED', '')"
        ".split(chr(10))), *sys.argv[1:], flush=True)"]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with nothing committed:

        .gitignore      build/ and *.log ignored, keep.log re-included
        src/app.py
        build/out.o     ignored
        node_modules/   ignored by the built-ins? no: by .gitignore, 100 directories deep
    """
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("v1\n")
    (root / "build").mkdir()
    (root / "build" / "out.o").write_text("o\n")
    for i in range(100):
        (root / "node_modules" / f"m{i}" / "lib").mkdir(parents=True)
    (root / ".gitignore").write_text("build/\nnode_modules/\n*.log\n!keep.log\n")
    subprocess.run(["git", "init", "-q", str(root)], check=True, timeout=30)
    return root


def changed(line: str) -> list[str]:
    return list(json.loads(line.split(" ", 1)[1].split("]", 1)[0] + "]"))


def test_watch_runs_on_files_git_would_list_and_not_on_ignored_ones(
    reentr: Start, repo: Path
) -> None:
    proc = reentr(["watch", "-n", "-p", "--", *SHOW, "/_"], files="", cwd=repo, exits=True)
    proc.err.expect(r"watching \d+ directories \(inotify")
    edit(repo / "build" / "out.o", "ignored\n")
    edit(repo / "debug.log", "ignored\n")
    edit(repo / "src" / "app.py", "v2\n")
    line = proc.out.expect(r"^run ").string
    # Only the file git would list reached the command: the ignored edits came first and
    # would have been part of this run (or a run of their own) if they counted.
    assert changed(line) == [str(repo / "src" / "app.py")]
    assert line.endswith(f" {repo / 'src' / 'app.py'}")  # /_ is the first changed file
    proc.run_ended()
    edit(repo / "keep.log", "re-included\n")
    assert changed(proc.out.expect(r"^run ").string) == [str(repo / "keep.log")]
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT
    assert proc.out.count(r"^run ") == 2


def test_a_reversed_range_is_read_as_git_reads_it_in_every_kind_of_pattern(
    reentr: Start, repo: Path
) -> None:
    # Python's re refuses `[z-a]`; git matches its first character with it.
    (repo / ".gitignore").write_text("[z-a]\n")
    proc = reentr(["watch", "-n", "-p", "--ignore", "x[9-0]", "--glob", "[s-a]rc/**",
                   "--glob", "[z-a]", "--", *SHOW], files="", cwd=repo, exits=True)
    proc.err.expect(r"watching \d+ directories")
    edit(repo / "z", "ignored by .gitignore\n")
    edit(repo / "x9", "ignored by --ignore\n")
    edit(repo / "arc.txt", "not matched by --glob\n")
    edit(repo / "src" / "app.py", "v2\n")
    assert changed(proc.out.expect(r"^run ").string) == [str(repo / "src" / "app.py")]
    proc.run_ended()
    (repo / ".gitignore").write_text("[z-a]\n[y-b]rc/\n")  # read again: must not stop watching
    edit(repo / "src" / "app.py", "v3\n")
    assert changed(proc.out.expect(r"^run ").string) == [str(repo / "src" / "app.py")]
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT
    assert not [line for line in proc.err.lines if "Traceback" in line or "Error" in line]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("poll", [[], ["--poll=20ms"]], ids=["inotify", "poll"])
def test_a_root_that_is_deleted_and_made_again_is_watched_again(
    reentr: Start, repo: Path, poll: list[str]
) -> None:
    gen = repo / "gen"
    gen.mkdir()
    (gen / "a.txt").write_text("1\n")
    proc = reentr(["watch", "gen", *poll, "-n", "-p", "--", *SHOW], files="", cwd=repo,
                  exits=True)
    proc.err.expect(r"watching 1 directory")

    def settled() -> None:
        wait_for(lambda: proc.events is not None and proc.events.read_text().count('"exited"')
                 == proc.out.count(r"^run "), what="the runs to end")

    def runs_for(path: Path) -> None:
        """Wait for a run that names `path`, then for every run to end."""
        wait_for(lambda: any(str(path) in changed(x) for x in proc.out.lines
                             if x.startswith("run ")), what=f"a run for {path.name}")
        settled()

    def runs_again_for(path: Path, text: str) -> None:
        """Edit `path` and wait for a run more, then for every run to end."""
        before = proc.out.count(r"^run ")
        edit(path, text)
        wait_for(lambda: proc.out.count(r"^run ") > before, what=f"a run for {path.name}")
        settled()

    shutil.rmtree(gen)  # as `rm -rf gen && regenerate` does, or a branch switch
    gen.mkdir()
    (gen / "sub").mkdir()
    edit(gen / "sub" / "b.txt", "2\n")
    runs_for(gen / "sub" / "b.txt")
    runs_again_for(gen / "sub" / "b.txt", "3\n")  # the new tree's directories are watched too
    shutil.rmtree(gen / "sub")  # the same with a directory inside the tree
    (gen / "sub").mkdir()
    edit(gen / "sub" / "c.txt", "4\n")
    runs_for(gen / "sub" / "c.txt")
    runs_again_for(gen / "sub" / "c.txt", "5\n")
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT


@pytest.mark.timeout(60)
@pytest.mark.parametrize("flags", [[], ["-a"]], ids=["default", "entr-habit-a"])
def test_a_save_made_during_a_run_is_run_after_it(
    reentr: Start, repo: Path, tmp_path: Path, flags: list[str]
) -> None:
    # Unlike entr without -a, `reentr watch` never drops a change: the last save always runs.
    gate = tmp_path / "gate"  # outside the tree: each run waits until the test opens it
    os.mkfifo(gate)
    (repo / "data.txt").write_text("1\n")
    show = [sys.executable, "-c", "import sys; print('run', open('data.txt').read().strip(), "
            "flush=True); open(sys.argv[1]).read()", str(gate)]
    proc = reentr(["watch", *flags, "-n", "--", *show], files="", cwd=repo, exits=True)
    proc.err.expect(r"watching")
    proc.out.expect(r"^run 1$")
    edit(repo / "data.txt", "2\n")  # while the run is under way
    events = proc.events
    assert events is not None
    wait_for(lambda: '"change"' in events.read_text(), what="reentr to see the change")
    with open(gate, "w"):
        pass  # the first run ends
    proc.out.expect(r"^run 2$")
    with open(gate, "w"):
        pass
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT
    assert proc.out.count(r"^run ") == 2


def test_new_directories_are_watched_and_their_files_not_missed(
    reentr: Start, repo: Path
) -> None:
    proc = reentr(["watch", "-n", "-p", "--", *SHOW], files="", cwd=repo, exits=True)
    proc.err.expect(r"watching \d+ directories")
    deep = repo / "new" / "deeper"
    deep.mkdir(parents=True)
    (deep / "first.py").write_text("written as the directory appeared\n")
    line = proc.out.expect(r"^run ").string
    assert str(deep / "first.py") in changed(line)
    proc.run_ended()
    edit(deep / "first.py", "edited later\n")
    wait_for(lambda: proc.out.count("first.py") == 2, what="a run for the later edit")
    proc.run_ended()
    (repo / "node_modules" / "fresh").mkdir()
    (repo / "node_modules" / "fresh" / "x.js").write_text("ignored\n")
    edit(repo / "src" / "app.py", "v2\n")
    wait_for(lambda: changed(proc.out.lines[-1]) == [str(repo / "src" / "app.py")],
             what="a run for src/app.py alone")


def test_an_ignored_directory_removed_and_made_again_is_no_change(
    reentr: Start, repo: Path
) -> None:
    # `build/` is a rule for directories: once deleted, `build` no longer looks like one. A
    # build that cleans first (`rm -rf build && mkdir build`) restarted itself at every start.
    clean = "rm -rf build && mkdir build && cp src/app.py build/app.py && echo built"
    proc = reentr(["watch", "-n", "--build", clean, "--", *SHOW], files="", cwd=repo,
                  exits=True)
    proc.out.expect(r"^run ")
    stays_false(lambda: proc.out.count(r"^run ") > 1 or proc.err.count("restart #") > 0,
                1.5, "a run for the build's own removal of build/")
    shutil.rmtree(repo / "build")  # by hand, too
    (repo / "build").mkdir()
    edit(repo / "src" / "app.py", "v2\n")
    assert changed(proc.out.expect(r"^run ").string) == [str(repo / "src" / "app.py")]
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT
    assert proc.out.count(r"^run ") == 2 and proc.err.count("written again") == 0


def test_a_directory_of_sources_moved_out_of_the_tree_is_a_change(
    reentr: Start, repo: Path, tmp_path: Path
) -> None:
    # A move out of the tree (to the trash, say) says nothing of the files it took along.
    (repo / "src" / "pkg").mkdir()
    (repo / "src" / "pkg" / "mod.py").write_text("x\n")
    proc = reentr(["watch", "-n", "-p", "--", *SHOW], files="", cwd=repo, exits=True)
    proc.err.expect(r"watching \d+ directories")
    (repo / "src" / "pkg").rename(tmp_path / "trash")
    assert changed(proc.out.expect(r"^run ").string) == [str(repo / "src" / "pkg")]
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT


def test_an_edit_of_gitignore_takes_effect_at_once(reentr: Start, repo: Path) -> None:
    proc = reentr(["watch", "-n", "-p", "--", *SHOW], files="", cwd=repo, exits=True)
    proc.err.expect(r"watching \d+ directories")
    with open(repo / ".gitignore", "a") as f:
        f.write("src/\n")
    assert changed(proc.out.expect(r"^run ").string) == [str(repo / ".gitignore")]
    proc.run_ended()
    edit(repo / "src" / "app.py", "now ignored\n")
    edit(repo / "top.txt", "watched\n")
    assert changed(proc.out.expect(r"^run ").string) == [str(repo / "top.txt")]


def test_ignored_directories_cost_no_kernel_watch(reentr: Start, repo: Path) -> None:
    proc = reentr(["watch", "-n", "-p", "--", *SHOW], files="", cwd=repo)
    line = proc.err.expect(r"watching (\d+) directories")
    # ., src; not build/ nor node_modules/ and its 200 directories, nor .git.
    assert int(line.group(1)) == 2
    assert wait_for(lambda: inotify_watches(proc.proc.pid) == 2, what="2 inotify watches")
    (repo / "lib").mkdir()
    (repo / "lib" / "x.py").write_text("x\n")
    proc.out.expect(r"^run .*lib/x\.py")
    assert wait_for(lambda: inotify_watches(proc.proc.pid) == 3, what="3 inotify watches")


def test_poll_watches_without_inotify(reentr: Start, repo: Path) -> None:
    proc = reentr(["watch", "--poll=50ms", "-n", "-p", "--", *SHOW], files="", cwd=repo)
    proc.err.expect(r"watching 2 directories \(polling every 0\.05s")
    assert inotify_watches(proc.proc.pid) == 0
    edit(repo / "src" / "app.py", "v2 with another size\n")
    assert changed(proc.out.expect(r"^run ").string) == [str(repo / "src" / "app.py")]


def test_filters_ext_glob_and_ignore(reentr: Start, repo: Path) -> None:
    (repo / "src" / "notes.md").write_text("n\n")
    (repo / "src" / "skip.py").write_text("s\n")
    proc = reentr(["watch", "-e", "py,toml", "--ignore", "skip.py", "-n", "-p", "--", *SHOW],
                  files="", cwd=repo)
    proc.err.expect(r"watching")
    edit(repo / "src" / "notes.md", "not a .py\n")
    edit(repo / "src" / "skip.py", "ignored on the command line\n")
    edit(repo / "pyproject.toml", "[x]\n")
    assert changed(proc.out.expect(r"^run ").string) == [str(repo / "pyproject.toml")]
    listed = subprocess.run([*REENTR, "watch", "--list", "--glob", "src/*.md"], cwd=repo,
                            capture_output=True, text=True, timeout=20, check=True).stdout
    assert listed == "src/notes.md\n"


def test_list_is_what_git_lists(repo: Path) -> None:
    (repo / "src" / "sub").mkdir()
    (repo / "src" / "sub" / ".gitignore").write_text("*.tmp\n!keep.tmp\n")
    for name in ("a.tmp", "keep.tmp", "b.py"):
        (repo / "src" / "sub" / name).write_text(name)
    (repo / "keep.log").write_text("k")
    ours = subprocess.run([*REENTR, "watch", "--list", "--no-default-ignore"], cwd=repo,
                          capture_output=True, text=True, timeout=20, check=True).stdout
    git = subprocess.run(["git", "ls-files", "--others", "--exclude-standard"], cwd=repo,
                         capture_output=True, text=True, timeout=20, check=True).stdout
    assert ours == git
    assert "src/sub/keep.tmp" in ours and "src/sub/a.tmp" not in ours


def test_explain_names_the_rule_as_git_check_ignore_does(repo: Path) -> None:
    paths = ["build/out.o", "debug.log", "keep.log", "src/app.py", "node_modules/m1/lib"]
    for name in ("debug.log", "keep.log"):
        (repo / name).write_text("log\n")
    ours = subprocess.run([*REENTR, "explain", "--no-default-ignore", *paths], cwd=repo,
                          capture_output=True, text=True, timeout=20, check=True).stdout
    git = subprocess.run(["git", "check-ignore", "-v", "-n", *paths], cwd=repo,
                         capture_output=True, text=True, timeout=20, check=False).stdout
    said = dict(line.split(": ", 1) for line in ours.splitlines())
    for line in git.splitlines():
        rule, path = line.split("\t")
        if rule == "::":
            assert said[path] == "watched: no rule matches"
        else:
            assert rule in said[path], (path, said[path])
    assert said["build/out.o"] == (
        "ignored by .gitignore:1:build/ (its directory build/ is ignored)")
    assert said["keep.log"] == "watched: re-included by .gitignore:4:!keep.log"


def test_the_peers_habits_watch_exts_and_shell(reentr: Start, repo: Path) -> None:
    # watchexec's -w PATH and --exts, and a command given as one shell string.
    (repo / "lib").mkdir()
    proc = reentr(["watch", "-w", "src", "--exts", "py", "-s", "-n", "-p", "--",
                   "echo", "ran", "$0"], files="", cwd=repo)
    proc.err.expect(r"watching 1 directory")
    edit(repo / "lib" / "x.py", "not watched: lib is not a -w tree\n")
    edit(repo / "src" / "notes.md", "not a .py file\n")
    edit(repo / "src" / "app.py", "v2\n")
    proc.out.expect(rf"^ran {repo / 'src' / 'app.py'}$")  # $0 is the changed file, as in -s
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT
    assert proc.out.count(r"^ran ") == 1


@pytest.mark.parametrize(
    ("args", "shown"),
    [(["-w", "src", "-e", "py", "-s", "echo ran $0 -x"], "ran {changed} -x"),
     (["src", "-e", "py", "echo", "ran", "-x"], "ran -x"),
     (["-re", "py", "src", "echo", "ran", "-e", "-r"], "ran -e -r")],
    ids=["watchexec-shell-string", "path-then-command", "options-first"],
)
def test_without_double_dash_the_command_begins_at_the_first_word_not_a_directory(
    reentr: Start, repo: Path, args: list[str], shown: str
) -> None:
    # watchexec's `watchexec -w src -e py pytest -x`: no `--`; every word from the command
    # on is the command's, even those that are reentr's options too (-e, -r).
    proc = reentr(["watch", "-n", "-p", *args], files="", cwd=repo)
    proc.err.expect(r"watching 1 directory")
    edit(repo / "src" / "notes.md", "not a .py file\n")
    edit(repo / "src" / "app.py", "v2\n")
    proc.out.expect("^" + re.escape(shown.format(changed=repo / "src" / "app.py")) + "$")
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT
    assert proc.out.count(r"^ran ") == 1


def test_installed_dependencies_are_not_watched_even_outside_a_repository(
    tmp_path: Path
) -> None:
    # A fresh project, no git, no .gitignore: `npm install` and `python -m venv .venv` put
    # thousands of files beside the program, none of them an edit of it.
    project = tmp_path / "fresh"
    for name in ("app.py", "node_modules/left-pad/index.js", ".venv/lib/site.py",
                 "venv/bin/activate", ".pytest_cache/v/x", "src/venv_tools.py"):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text("x\n")
    listed = subprocess.run([*REENTR, "watch", "--list"], cwd=project, capture_output=True,
                            text=True, timeout=20, check=True)
    assert listed.stdout.split() == ["app.py", "src/venv_tools.py"]
    explained = subprocess.run([*REENTR, "explain", "node_modules/left-pad/index.js"],
                               cwd=project, capture_output=True, text=True, timeout=20,
                               check=True)
    assert explained.stdout == ("node_modules/left-pad/index.js: ignored by built-in:"
                                f"{BUILTIN.index('node_modules/') + 1}:node_modules/ (its "
                                "directory node_modules/ is ignored)\n")
    with_all = subprocess.run([*REENTR, "watch", "--list", "--no-default-ignore"],
                              cwd=project, capture_output=True, text=True, timeout=20,
                              check=True)
    assert "node_modules/left-pad/index.js" in with_all.stdout.split()


def test_explain_of_a_missing_path_says_so_and_exits_1(repo: Path) -> None:
    done = subprocess.run([*REENTR, "explain", "src/app.py", "src/gone.py"], cwd=repo,
                          capture_output=True, text=True, timeout=20, check=False)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "src/app.py: watched: no rule matches",
        "src/gone.py: no such file or directory; if it were a file: watched: no rule matches"]


@pytest.mark.timeout(60)
def test_verbose_names_a_few_files_of_a_large_batch_and_counts_the_rest(
    reentr: Start, repo: Path, tmp_path: Path
) -> None:
    proc = reentr(["watch", "-v", "-n", "-p", "--", "true"], files="", cwd=repo)
    proc.err.expect(r"watching")
    many = tmp_path / "many"  # made outside, then moved in at once: one batch of 12 files
    many.mkdir()
    for i in range(12):
        (many / f"f{i:02}.py").write_text("x\n")
    many.rename(repo / "src" / "many")
    line = proc.err.expect(r"changed: 12 files: (.*) and 7 more$")
    assert len(line.group(1).split(", ")) == 5
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT


@pytest.mark.parametrize(
    ("args", "message"),
    [(["watch", "src"], "give the command after --: reentr watch src -- make"),
     (["watch", "src", "no-such-program-x"], "cannot run 'no-such-program-x'"),
     (["watch", "nope", "--", "true"], "cannot watch 'nope': not found"),
     (["watch", "--", "no-such-program-x"], "cannot run 'no-such-program-x'")],
)
def test_watch_usage_errors(repo: Path, args: list[str], message: str) -> None:
    done = subprocess.run([*REENTR, *args], cwd=repo, capture_output=True, text=True,
                          timeout=20, check=False)
    assert done.returncode == 1
    assert done.stderr.startswith(f"reentr: {message}"), done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert done.stdout == ""


def test_a_named_file_is_watched_through_its_directory_and_alone_there(
    reentr: Start, repo: Path
) -> None:
    # watchexec's, nodemon's and air's habit: -w Makefile -w src. The file's directory is
    # watched, and of it the file alone, even one git ignores: it was named.
    (repo / "Makefile").write_text("all:\n")
    (repo / ".gitignore").write_text("Makefile\nbuild/\nnode_modules/\n")
    listed = subprocess.run([*REENTR, "watch", "--list", "-w", "Makefile", "-w", "src"],
                            cwd=repo, capture_output=True, text=True, timeout=20, check=True)
    assert listed.stdout.split() == ["Makefile", "src/app.py"]
    proc = reentr(["watch", "-n", "-p", "-w", "Makefile", "-w", "src", "--", *SHOW], files="",
                  cwd=repo, exits=True)
    proc.err.expect(r"watching 2 directories \(inotify")
    edit(repo / "other.txt", "not named\n")
    atomic_edit(repo / "Makefile", "all:\n\techo made\n")  # as vim saves it
    assert changed(proc.out.expect(r"^run ").string) == [str(repo / "Makefile")]
    proc.run_ended()
    edit(repo / "src" / "app.py", "v2\n")
    assert changed(proc.out.expect(r"^run ").string) == [str(repo / "src" / "app.py")]
    proc.run_ended()
    edit(repo / "other.txt", "still not named\n")
    edit(repo / "Makefile", "all:\n\techo again\n")
    assert changed(proc.out.expect(r"^run ").string) == [str(repo / "Makefile")]
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT


def _can_lower_the_limit() -> bool:
    done = subprocess.run(["unshare", "-Ur", "sh", "-c",
                           "echo 2 > /proc/sys/user/max_inotify_watches"],
                          capture_output=True, timeout=10, check=False) \
        if shutil.which("unshare") else None
    return done is not None and done.returncode == 0


@pytest.mark.skipif(not _can_lower_the_limit(),
                    reason="needs unshare -Ur to lower the inotify limit in a user namespace")
def _limited(watches: int) -> list[str]:
    """Run in a user namespace whose own inotify limit is `watches`."""
    return ["unshare", "-Ur", "sh", "-c",
            f'echo {watches} > /proc/sys/user/max_inotify_watches && exec "$@"', "sh"]


@pytest.mark.timeout(60)
def test_the_inotify_limit_falls_back_to_polling_and_back_once_they_fit(
    reentr: Start, repo: Path
) -> None:
    # A user namespace has an inotify limit of its own: 2 watches, for 3 directories.
    (repo / "lib").mkdir()
    proc = reentr(["watch", "-n", "-p", "--", *SHOW], files="", cwd=repo, wrap=_limited(2))
    proc.err.expect(r"^reentr: the inotify watch limit \(2, this user namespace's "
                    r"user\.max_inotify_watches\) is reached \(3 directories to watch\); "
                    r"polling every 0\.5s until they fit\. Raise the limit with: sysctl -w "
                    r"user\.max_inotify_watches=524288, as the namespace's owner$")
    proc.err.expect(r"watching 3 directories \(polling every 0\.5s")
    edit(repo / "src" / "app.py", "seen by polling\n")
    assert changed(proc.out.expect(r"^run ").string) == [str(repo / "src" / "app.py")]
    (repo / "lib").rmdir()  # a watched directory gone is a change (what was in it went)
    assert changed(proc.out.expect(r"^run ").string) == [str(repo / "lib")]
    proc.err.expect(r"the inotify watches fit again \(2 directories\): watching with inotify")
    assert wait_for(lambda: inotify_watches(proc.proc.pid) == 2, what="2 inotify watches")
    edit(repo / "src" / "app.py", "seen by inotify\n")
    assert changed(proc.out.expect(r"^run ").string) == [str(repo / "src" / "app.py")]


@pytest.mark.timeout(60)
def test_a_new_directory_needs_only_its_own_watch_under_the_limit(
    reentr: Start, repo: Path
) -> None:
    # 2 directories, then 3, under a limit of 3: the old watches go before the new ones come,
    # so the limit is not reached at half of it; a file written meanwhile is not missed.
    proc = reentr(["watch", "-n", "-p", "--", *SHOW], files="", cwd=repo, wrap=_limited(3))
    proc.err.expect(r"watching 2 directories \(inotify")
    (repo / "lib").mkdir()
    edit(repo / "lib" / "x.py", "x\n")
    proc.out.expect(r"^run .*lib/x\.py")
    assert wait_for(lambda: inotify_watches(proc.proc.pid) == 3, what="3 inotify watches")
    edit(repo / "src" / "app.py", "v2\n")
    assert changed(proc.out.expect(r"^run ").string) == [str(repo / "src" / "app.py")]
    assert "limit" not in proc.err.text()


def test_changed_is_empty_at_the_first_start_whatever_reentr_inherited(
    reentr: Start, repo: Path
) -> None:
    proc = reentr(["watch", "-n", "-z", "--", *SHOW], files="", cwd=repo,
                  env={"REENTR_CHANGED": "/inherited/from/a/parent"})
    assert changed(proc.out.expect(r"^run ").string) == [""]
    assert proc.wait() == 0


# Prints how many bytes REENTR_CHANGED holds, how many lines, and how many lines the file in
# REENTR_CHANGED_FILE holds.
COUNT = [sys.executable, "-c",
         "import os; v = os.environb.get(b'REENTR_CHANGED', b''); "
         "f = open(os.environ['REENTR_CHANGED_FILE'], 'rb').read().splitlines(); "
         "print('run', len(v), len(v.splitlines()), len(f), flush=True)"]


@pytest.mark.timeout(120)
def test_a_batch_of_30000_paths_still_builds_and_runs_with_the_list_bounded(
    reentr: Start, repo: Path
) -> None:
    # A branch switch or an unpack: 30,000 long names in one batch. Unbounded, the variable
    # passed Linux's 128 KiB for one environment string, and every build and run failed with
    # "Argument list too long".
    proc = reentr(["watch", "-n", "-p", "--build", "echo built", "--", *COUNT], files="",
                  cwd=repo)
    proc.err.expect(r"watching \d+ directories \(inotify")
    many = repo.parent / "many"  # made aside, then moved in whole: one batch
    many.mkdir()
    for i in range(30000):
        (many / f"a-fairly-long-generated-file-name-{i:06}.txt").touch()
    many.rename(repo / "many")
    line = proc.out.expect(r"^run ").string
    size, lines, listed = map(int, line.split()[1:])
    assert 0 < size <= 32 * 1024
    assert listed == 30000
    assert lines < listed
    assert "built" in proc.err.text()
    assert "failed" not in proc.err.text()
    assert "too long" not in proc.err.text()


def test_a_cache_directory_is_left_out_and_explain_says_why(repo: Path) -> None:
    # cargo's target/ with no .gitignore line: tagged as a cache (bford.info/cachedir).
    target = repo / "target" / "debug"
    target.mkdir(parents=True)
    (target / "app").write_bytes(b"\x00")
    (repo / "target" / "CACHEDIR.TAG").write_text(
        "Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag.\n")
    listed = subprocess.run([*REENTR, "watch", "--list"], cwd=repo, capture_output=True,
                            text=True, timeout=20, check=True)
    assert listed.stdout.split() == [".gitignore", "src/app.py"]
    said = subprocess.run([*REENTR, "explain", "target/debug/app"], cwd=repo,
                          capture_output=True, text=True, timeout=20, check=True)
    assert said.stdout == ("target/debug/app: ignored: its directory target/ is tagged as a "
                           "cache (CACHEDIR.TAG)\n")
    listed = subprocess.run([*REENTR, "watch", "--list", "--no-default-ignore"], cwd=repo,
                            capture_output=True, text=True, timeout=20, check=True)
    assert "target/debug/app" in listed.stdout.split()


def test_a_builds_own_output_is_no_change_and_verbose_says_so(
    reentr: Start, repo: Path
) -> None:
    # A binary the build writes beside the sources (an object file, say), in no .gitignore.
    build = "printf 'built\\000' > src/out.bin"
    proc = reentr(["watch", "-v", "-n", "--build", build, "-r", "--", *SHOW], files="",
                  cwd=repo, exits=True)
    proc.out.expect(r"^run ")
    proc.err.expect(r"taking these as the runs' outputs, not changes: src/out\.bin \(to say it "
                    r"for good, in \.gitignore: /src/out\.bin\)")
    proc.err.expect(r"not changes \(what the runs made, or a temporary gone again\): "
                    r"src/out\.bin")
    edit(repo / "src" / "app.py", "v2\n")
    assert changed(proc.out.expect(r"^run ").string) == [str(repo / "src" / "app.py")]
    stays_false(lambda: proc.out.count(r"^run ") > 2, 1.0, "a run for the build's output")
    proc.signal(signal.SIGINT)
    proc.wait()
