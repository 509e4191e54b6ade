"""Shell completion: the committed scripts are what the app generates, and real bash, zsh and
fish complete subcommands, options, signal names and paths with them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reentr.cli.completion import COMPLETION_FILES, completion_script

COMPLETIONS = Path(__file__).parent.parent.parent / "completions"
PATH = f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"
"""So that the scripts find the reentr under test, as they find an installed one."""


@pytest.mark.parametrize("shell", sorted(COMPLETION_FILES))
def test_the_committed_scripts_are_what_the_app_generates(shell: str) -> None:
    committed = (COMPLETIONS / COMPLETION_FILES[shell]).read_text()
    assert committed == completion_script(shell), (
        f"completions/{COMPLETION_FILES[shell]} is stale: run python completions/generate.py")


def _shell(shell: str) -> str:
    found = shutil.which(shell)
    if found is None:
        pytest.skip(f"{shell} is not installed (apt-get install {shell}; .ci/run installs it "
                    "where it can)")
    return found


def _run(argv: list[str], cwd: Path, project: str | None = None) -> list[str]:
    """The lines a shell prints, run in `cwd` with PROJECT as its reentr.toml (or, given
    `project`, that text as the Procfile of the directory above), and PROGRAMS, two
    programs and a file that is not one, in a directory first on PATH."""
    if project is None:
        (cwd / "reentr.toml").write_text(PROJECT)
    else:
        (cwd.parent / "Procfile").write_text(project)
    programs = cwd / "bin"
    programs.mkdir(exist_ok=True)
    for name in PROGRAMS:
        (programs / name).write_text("#!/bin/sh\n")
        (programs / name).chmod(0o755 if name != "reentrprog-text" else 0o644)
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PATH": f"{programs}:{PATH}"}, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


CASES = [
    ("reentr ", ["bench", "explain", "restart", "up", "watch"]),
    ("reentr up --ev", ["--events"]),
    ("reentr wa", ["watch"]),
    ("reentr watch --sto", ["--stop-signal", "--stop-timeout"]),
    ("reentr --ready-n", ["--ready-notify"]),
    ("reentr -r --signal SIGH", ["SIGHUP"]),
    ("reentr watch --stop-signal SIGTE", ["SIGTERM"]),
    # Every form --signal accepts is offered in the form being typed.
    ("reentr --signal sigh", ["sighup"]),
    ("reentr watch --signal hu", ["hup"]),
    ("reentr --signal HU", ["HUP"]),
    ("reentr bench --j", ["--json"]),
    # The services of the project's reentr.toml (PROJECT), less those already named.
    ("reentr up ", ["api", "store", "web"]),
    ("reentr up store ", ["api", "web"]),
    ("reentr restart w", ["web"]),
    # The program to run: entr mode's first word, or the word after -- (not after one).
    ("reentr -r reentrpr", ["reentrprog-one", "reentrprog-two"]),
    ("reentr reentrprog-t", ["reentrprog-two"]),
    ("reentr watch -r -- reentrpr", ["reentrprog-one", "reentrprog-two"]),
    ("reentr watch src -- reentrprog-o", ["reentrprog-one"]),
    ("reentr bench --runs 3 -- reentrpr", ["reentrprog-one", "reentrprog-two"]),
]

PROGRAMS = ("reentrprog-one", "reentrprog-two", "reentrprog-text")

PROJECT = """
[services.store]
command = "./store --port 8001"

[services.api]
command = ["./api", "--store", "http://127.0.0.1:8001"]
depends-on = ["store"]

[services.web]
command = "python3 web.py"
"""
"""The reentr.toml of the directory each completion runs in."""


@pytest.mark.parametrize(("line", "expected"), CASES)
def test_bash_completes(tmp_path: Path, line: str, expected: list[str]) -> None:
    bash = _shell("bash")
    words = line.split(" ")
    script = (
        f"source {COMPLETIONS / 'reentr.bash'}\n"
        f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
        "_reentr_completion reentr\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    assert sorted(_run([bash, "--norc", "-c", script], tmp_path)) == expected


def test_bash_falls_back_to_paths_where_reentr_offers_nothing(tmp_path: Path) -> None:
    # The script offers nothing for a path, and bash's `-o default` completes file names.
    bash = _shell("bash")
    script = (f"source {COMPLETIONS / 'reentr.bash'}\n"
              "COMP_WORDS=(reentr watch sr); COMP_CWORD=2; _reentr_completion reentr\n"
              'echo "${#COMPREPLY[@]}"; complete -p reentr')
    count, spec = _run([bash, "--norc", "-c", script], tmp_path)
    assert count == "0"
    assert "-o default" in spec


@pytest.mark.parametrize("line", ["reentr -r reentrprog-one reentrpr",
                                  "reentr watch reentrpr", "reentr watch -- ./reentrpr"])
def test_bash_completes_file_names_in_a_commands_arguments(tmp_path: Path, line: str) -> None:
    # Only a command's first word is a program; elsewhere the script offers nothing, and
    # bash's `-o default` completes file names (watch's words before -- are its paths).
    bash = _shell("bash")
    words = line.split(" ")
    script = (f"source {COMPLETIONS / 'reentr.bash'}\n"
              f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
              "_reentr_completion reentr\n"
              'echo "${#COMPREPLY[@]}"')
    assert _run([bash, "--norc", "-c", script], tmp_path) == ["0"]


@pytest.mark.parametrize(("line", "expected"), [
    ("reentr restart ", ["web", "worker"]), ("reentr restart wo", ["worker"])])
@pytest.mark.parametrize("shell", ["bash", "fish"])
def test_a_procfiles_processes_complete_from_anywhere_in_the_project(
    tmp_path: Path, shell: str, line: str, expected: list[str]
) -> None:
    # Only a reentr.toml's services completed; with a Procfile, Tab gave file names.
    below = tmp_path / "project" / "lib"
    below.mkdir(parents=True)
    procfile = "web: python3 web.py --port $PORT\nworker: ./worker\n"
    if shell == "bash":
        words = line.split(" ")
        script = (f"source {COMPLETIONS / 'reentr.bash'}\n"
                  f"COMP_WORDS=({' '.join(repr(w) for w in words)}); "
                  f"COMP_CWORD={len(words) - 1}\n"
                  "_reentr_completion reentr\n"
                  'printf "%s\\n" "${COMPREPLY[@]}"\n')
        out = _run([_shell("bash"), "--norc", "-c", script], below, procfile)
    else:
        out = _run([_shell("fish"), "--no-config", "-c",
                    f"source {COMPLETIONS / 'reentr.fish'}; complete -C '{line}'"],
                   below, procfile)
    assert sorted(candidate.split("\t")[0] for candidate in out) == expected
    if shell == "fish" and "web" in expected:  # each with its command, as written
        assert "web\tpython3 web.py --port $PORT" in out


@pytest.mark.parametrize(("line", "expected"), CASES)
def test_fish_completes(tmp_path: Path, line: str, expected: list[str]) -> None:
    fish = _shell("fish")
    out = _run([fish, "--no-config", "-c",
                f"source {COMPLETIONS / 'reentr.fish'}; complete -C '{line}'"], tmp_path)
    assert sorted(candidate.split("\t")[0] for candidate in out) == expected


def test_fish_completes_paths(tmp_path: Path) -> None:
    fish = _shell("fish")
    (tmp_path / "src").mkdir()
    out = _run([fish, "--no-config", "-c",
                f"source {COMPLETIONS / 'reentr.fish'}; complete -C 'reentr watch sr'"], tmp_path)
    assert out == ["src/"]


def _zsh(tmp_path: Path, line: str) -> str:
    """What the zsh script asks of zsh's completion system for `line`: zsh runs the real
    script; `_arguments` and `_files`, the completion system's functions it calls, print
    what they were given instead of drawing a menu (that needs a terminal)."""
    zsh = _shell("zsh")
    words = line.split(" ")
    script = (
        "compdef() { :; }; _arguments() { print -r -- \"$@\"; }; _files() { print _files; }\n"
        f"source {COMPLETIONS / '_reentr'}\n"
        f"words=({' '.join(repr(w) for w in words)}); CURRENT={len(words)}\n"
        "_reentr_completion\n"
    )
    return "\n".join(_run([zsh, "-f", "-c", script], tmp_path))


@pytest.mark.parametrize(("line", "expected"), CASES)
def test_zsh_completes(tmp_path: Path, line: str, expected: list[str]) -> None:
    said = _zsh(tmp_path, line)
    assert said.startswith("*: :((")
    assert sorted(re.findall(r'(?:\(|\s)"([^"]+)"', said)) == expected


def test_zsh_completes_paths(tmp_path: Path) -> None:
    assert _zsh(tmp_path, "reentr watch sr") == "_files"


def test_install_completion_installs_the_same_script_for_the_users_bash(tmp_path: Path) -> None:
    bash = _shell("bash")
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "PATH": PATH, "HOME": str(home)}
    # typer detects the shell reentr runs under: here, bash (`; true` keeps bash from
    # replacing itself with reentr).
    done = subprocess.run([bash, "--norc", "-c", "reentr --install-completion; true"], env=env,
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    installed = home / ".bash_completions" / "reentr.sh"
    assert installed.read_text().strip() == completion_script("bash").strip()
    done = subprocess.run([bash, "--norc", "-c", "source ~/.bashrc; complete -p reentr"],
                          env=env, capture_output=True, text=True, timeout=30, check=False)
    assert "_reentr_completion reentr" in done.stdout, done.stderr


DESCRIBED = [
    ("reentr --no-c", "Do not read reentr.toml or [tool.reentr] in pyproject.toml."),
    ("reentr watch --no-default-i", "__pycache__, *.py[co], editors' swap and backup files, "
                                    "build tools' temporary files (*-go-tmp-umask)."),
    ("reentr --conf", "Read the options' defaults from FILE (a reentr.toml, or a "
                      "pyproject.toml's [tool.reentr]) instead of the nearest one from here up"),
    ("reentr restart a", "./api --store http://127.0.0.1:8001"),
]


@pytest.mark.parametrize(("line", "description"), DESCRIBED)
def test_zsh_and_fish_show_descriptions_intact(
    tmp_path: Path, line: str, description: str
) -> None:
    # Brackets are not markup, an apostrophe is not a quote, a line break is a space.
    fish = _shell("fish")
    out = _run([fish, "--no-config", "-c",
                f"source {COMPLETIONS / 'reentr.fish'}; complete -C '{line}'"], tmp_path)
    assert len(out) == 1 and description in out[0]
    # A colon reaches _arguments as `\\:`, which its own unquoting makes the `\:` it reads as
    # a colon of the description (a real zsh lists `api -- ./api --store http://...`).
    said = _zsh(tmp_path, line).replace("\\\\:", ":").replace("\n", " ")
    assert description in said


def test_install_completion_adds_one_line_to_the_users_zshrc(tmp_path: Path) -> None:
    zsh = _shell("zsh")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".zshrc").write_text("zstyle ':completion:*' menu no\nalias ll='ls -l'\n")
    before = (home / ".zshrc").read_text()
    env = {**os.environ, "PATH": PATH, "HOME": str(home), "SHELL": zsh}
    for _ in range(2):  # a second install adds nothing
        done = subprocess.run([zsh, "-f", "-c", "reentr --install-completion; true"], env=env,
                              capture_output=True, text=True, timeout=30, check=False)
        assert done.returncode == 0, done.stderr
    after = (home / ".zshrc").read_text()
    assert after.startswith(before)
    assert len(after[len(before):].splitlines()) == 1
    assert (home / ".zfunc" / "_reentr").read_text() == completion_script("zsh")
    # A new interactive zsh reads it, and reentr's completion is in place.
    done = subprocess.run([zsh, "-i", "-c", "print -r -- $_comps[reentr]"], env=env,
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.stdout.strip().splitlines()[-1] == "_reentr_completion", done.stderr
