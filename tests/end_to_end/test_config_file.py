"""The configuration file (`reentr.toml`, `[tool.reentr]`), end to end; and the output
options: colour, NO_COLOR, --notify."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import REENTR, Reentr, edit, free_port, wait_for
from reentr.config import Config, WatchList
from reentr.events import Note, Role, Say
from reentr.report import Reporter

PRINT = [sys.executable, "-c", "import sys; print(' '.join(sys.argv[1:]))"]


def run(args: list[str], cwd: Path, stdin: str = "a.txt\n",
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*REENTR, *args], cwd=cwd, input=stdin, capture_output=True,
                          text=True, timeout=30, check=False, env={**os.environ, **(env or {})})


def _toml_list(argv: list[str]) -> str:
    return json.dumps(argv)  # a JSON list of strings is a TOML array too


def test_pyproject_supplies_defaults_and_the_command_line_overrides_them(project: Path) -> None:
    (project / "pyproject.toml").write_text(
        "[project]\nname = 'app'\n\n[tool.reentr]\n"
        f"command = {_toml_list([*PRINT, 'from', 'the', 'file'])}\nexit-on-exit = true\n")
    done = run([], project)
    assert (done.returncode, done.stdout) == (0, "from the file\n"), done.stderr
    done = run([*PRINT, "from", "the", "command", "line"], project)
    assert (done.returncode, done.stdout) == (0, "from the command line\n"), done.stderr
    done = run(["--no-config", "-z", *PRINT, "no", "config"], project)
    assert done.stdout == "no config\n"
    assert run(["--no-config"], project).returncode == 1  # no command: the file is not read


def test_the_nearest_file_up_from_here_counts(project: Path) -> None:
    (project / "reentr.toml").write_text(f"command = {_toml_list([*PRINT, 'top'])}\n"
                                         "exit-on-exit = true\n")
    sub = project / "sub"
    sub.mkdir()
    (sub / "pyproject.toml").write_text("[project]\nname = 'no reentr table here'\n")
    (sub / "a.txt").write_text("a")
    assert run([], sub).stdout == "top\n"
    (sub / "reentr.toml").write_text(f"command = {_toml_list([*PRINT, 'sub'])}\n"
                                     "exit-on-exit = true\n")
    assert run([], sub).stdout == "sub\n"
    assert run(["--config", str(project / "reentr.toml")], sub).stdout == "top\n"


def test_reentr_watch_reads_paths_ignores_and_command(project: Path) -> None:
    for name in ("src/app.py", "src/gen/out.py", "docs/x.md"):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text("x")
    (project / "reentr.toml").write_text(
        "paths = ['src']\nignore = ['gen/']\next = 'py'\ncommand = 'make run'\n")
    done = run(["watch", "--list"], project, stdin="")
    assert done.stdout.splitlines() == ["src/app.py"], done.stderr
    done = run(["watch", "--list", "--no-config"], project, stdin="")
    assert "docs/x.md" in done.stdout.splitlines()
    done = run(["watch", "--list", "--ignore", "app.py"], project, stdin="")
    assert done.stdout == "src/gen/out.py\n", "--ignore given replaces the file's list"


def test_watch_runs_the_command_from_the_file(
    reentr: Callable[..., Reentr], project: Path
) -> None:
    (project / "reentr.toml").write_text(
        f"command = {_toml_list([*PRINT, 'ran'])}\nrestart = false\npostpone = true\n")
    proc = reentr(["watch", "-n"], ())
    proc.err.expect("watching")
    assert proc.out.lines == [], "postpone = true: no run before the first change"
    edit(project / "a.txt", "changed")
    proc.out.expect("^ran$")


@pytest.mark.parametrize(("content", "said"), [
    ("stop-timout = '2s'\n",
     "reentr.toml: unknown key 'stop-timout'; did you mean 'stop-timeout'?"),
    ("stop-timeout = true\n",
     "reentr.toml: stop-timeout must be a string or a number, not a boolean (True)"),
    ("stop-timeout = 'soon'\n",
     "reentr.toml: stop-timeout: 'soon' is not a duration; write it as 500ms, 2s or 1m"),
    ("stop-signal = 'NOPE'\n", "reentr.toml: stop-signal: unknown signal 'NOPE'"),
    ("socket = ['unix:']\n", "reentr.toml: socket: 'unix:' has no path"),
    ("restart = 'yes'\n", "reentr.toml: restart must be true or false, not a string ('yes')"),
    ("socket = [true]\n",
     "reentr.toml: socket must be a list of strings (or numbers), not a list"),
    ("command = []\n", "reentr.toml: command must be a command: a string, or a list of str"),
    ("restart = \n", "reentr.toml: not valid TOML: "),
    # Checked once every option is read (its range): still the file's.
    ("debounce = 5\n", "reentr.toml: debounce: '5' is out of range; give 1ms to 1600ms"),
])
def test_a_wrong_key_or_type_is_one_line_naming_file_key_and_expectation(
    project: Path, content: str, said: str
) -> None:
    (project / "reentr.toml").write_text(content)
    done = run(["touch", "started"], project)
    assert done.returncode == 1
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert said in done.stderr
    assert done.stderr.startswith("reentr: ")
    assert not (project / "started").exists()


def test_ports_and_durations_may_be_numbers(reentr: Callable[..., Reentr], project: Path) -> None:
    port = free_port()
    (project / "reentr.toml").write_text(f"socket = [{port}]\nstop-timeout = 2\n"
                                         "command = 'true'\npostpone = true\n")
    proc = reentr([], files=["a.txt"])
    proc.err.expect("watching")
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass  # reentr holds the socket the number names
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT


def test_a_pyproject_error_names_its_table(project: Path) -> None:
    (project / "pyproject.toml").write_text("[tool.reentr]\nclear = 'twice'\n")
    done = run(["touch", "started"], project)
    assert done.returncode == 1
    assert "pyproject.toml [tool.reentr]: clear must be a whole number" in done.stderr


def test_config_and_no_config_together_are_refused(project: Path) -> None:
    done = run(["--no-config", "--config", "reentr.toml", "true"], project)
    assert done.returncode == 1
    assert done.stderr == "reentr: give --config PATH or --no-config, not both\n"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("no_color", "coloured"), [(None, True), ("1", False), ("", True)])
def test_colour_only_on_a_terminal_and_never_with_no_color(
    monkeypatch: pytest.MonkeyPatch, no_color: str | None, coloured: bool
) -> None:
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    config = Config(command=("app",), watch=WatchList((Path("/a"),)))
    terminal, pipe = _Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        Reporter(config, err=stream).say(Say(Note.START_FAILED, Role.TARGET, detail="gone"))
    assert ("\x1b[" in terminal.getvalue()) is coloured
    assert pipe.getvalue() == "reentr: cannot start 'app': gone\n"


def test_notify_sends_a_desktop_notification_where_notify_send_exists(
    reentr: Callable[..., Reentr], project: Path, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sent = tmp_path / "sent.txt"
    (bin_dir / "notify-send").write_text(f'#!/bin/sh\necho "$@" >> {sent}\n')
    (bin_dir / "notify-send").chmod(0o755)
    proc = reentr(["-n", "-r", "--notify", "--build", "test ! -e fail", *PRINT, "up"],
                  env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    proc.out.expect("^up$")
    edit(project / "a.txt", "one")
    wait_for(lambda: sent.exists() and "restart #1" in sent.read_text(), what="a notification")
    (project / "fail").write_text("")
    edit(project / "a.txt", "two")
    wait_for(lambda: "build failed" in sent.read_text(), what="the failed build's notification")
    assert sent.read_text().startswith("--app-name=reentr reentr: restart #1 spawned in ")


def test_notify_without_notify_send_is_silent(
    reentr: Callable[..., Reentr], project: Path
) -> None:
    proc = reentr(["-n", "-r", "--notify", *PRINT, "up"], env={"PATH": os.path.dirname(
        sys.executable) + ":/nonexistent"})
    proc.out.expect("^up$")
    edit(project / "a.txt", "one")
    proc.err.expect("restart #1 ")
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT
    assert "notify" not in proc.err.text()
