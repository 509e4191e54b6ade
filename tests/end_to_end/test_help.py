"""`--help` of every command, word for word against tests/golden/ (80 columns), and the
one-line answers to a mistyped option.

After a deliberate change of the help, write the new text with
`REENTR_GOLDEN=write python -m pytest tests/end_to_end/test_help.py` and read the diff before
committing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REENTR

GOLDEN = Path(__file__).parent.parent / "golden"
COMMANDS = {"reentr": [], "watch": ["watch"], "bench": ["bench"], "explain": ["explain"],
            "up": ["up"], "restart": ["restart"]}


def _reentr(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*REENTR, *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "COLUMNS": "80"}, check=False)


@pytest.mark.parametrize("name", COMMANDS)
def test_help_is_the_golden_text(name: str) -> None:
    shown = _reentr([*COMMANDS[name], "--help"])
    assert shown.returncode == 0 and shown.stderr == ""
    golden = GOLDEN / f"help-{name}.txt"
    if os.environ.get("REENTR_GOLDEN") == "write":
        golden.write_text(shown.stdout)
    assert shown.stdout == golden.read_text(), (
        f"{golden.name} differs from the help: if the change is meant, write it again with "
        "REENTR_GOLDEN=write python -m pytest tests/end_to_end/test_help.py and read the diff")


@pytest.mark.parametrize("args", [["--install-completion", "--help"],
                                  ["--show-completion", "-h"]])
def test_the_completion_options_are_described_in_reentrs_own_help(args: list[str]) -> None:
    shown = _reentr(args)
    assert shown.returncode == 0
    assert shown.stdout == (GOLDEN / "help-reentr.txt").read_text()
    assert "--install-completion  add one line to your shell's startup file" in shown.stdout


@pytest.mark.parametrize(("args", "said"), [
    (["--delay", "true"], "no such option: --delay (did you mean --delay-run?) "
                          "(see reentr --help)"),
    (["watch", "--clea", "--", "true"], "no such option: --clea (did you mean --clear?) "
                                        "(see reentr watch --help)"),
    (["--ready", "true"], "no such option: --ready (did you mean --ready-line or "
                          "--ready-notify or --ready-port or --ready-timeout or --ready-url?) "
                          "(see reentr --help)"),
    (["bench", "--run", "3"], "no such option: --run (did you mean --runs?) "
                              "(see reentr bench --help)"),
    (["--zz", "true"], "no such option: --zz (see reentr --help)"),
])
def test_a_mistyped_option_is_one_line_with_only_close_suggestions(
    args: list[str], said: str
) -> None:
    shown = _reentr(args)
    assert shown.returncode == 1
    assert shown.stderr == f"reentr: {said}\n"


def test_help_and_completion_load_no_watcher_and_no_runner() -> None:
    # Every Tab of shell completion, --help and --version start a whole reentr: what only a
    # run needs (the watcher, the ignore rules, the loop) is loaded by the run.
    heavy = ["watchfiles", "pathspec", "reentr.runner", "reentr.watch", "reentr.ignore"]
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, reentr.cli.main; "
         f"print(' '.join(name for name in {heavy!r} if name in sys.modules))"],
        capture_output=True, text=True, timeout=30, check=True)
    assert loaded.stdout.split() == []
