"""Every key a service's table accepts takes effect under `reentr up`: generated from the
option list of `reentr watch`, each key is given a value other than its default in a service's
table, and the service's run must differ from one without it. A new option cannot be accepted
and ignored: it fails here until it is given a value below and takes effect.

(The effects that happen while services run, such as `on-exit` and `delay-run`, have
end-to-end tests in tests/test_up.py.)"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from helpers import REENTR
from reentr import configfile
from reentr.cli import up
from reentr.cli.commands import app
from reentr.cli.options import config_kinds

WATCH = typer.main.get_command(app).commands["watch"]  # type: ignore[attr-defined]
KINDS = config_kinds(WATCH)
COMMAND = [sys.executable, "-c", "pass"]

VALUES: dict[str, Any] = {
    "paths": ["src"],
    "command": [sys.executable, "-c", "print(1)"],
    "postpone": True,
    "shell": True,
    "exit-on-exit": True,
    "restart": False,
    "build": "make",
    "on-busy": "queue",
    "on-exit": "restart",
    "signal": "SIGHUP",
    "stop-signal": "SIGINT",
    "stop-timeout": "1s",
    "delay-run": "1s",
    "no-loop-guard": True,
    "ready-port": "127.0.0.1:9",
    "ready-line": "ready",
    "ready-url": "http://127.0.0.1:9/",
    "ready-notify": True,
    "ready-timeout": "3s",
    "socket": ["127.0.0.1:8999"],
    "handoff": True,
    "fd-store": True,
    "debounce": "5ms",
    "notify": True,
    "ext": ["py"],
    "glob": ["*.py"],
    "ignore": ["gen/"],
    "no-gitignore": True,
    "no-git-exclude": True,
    "no-global-ignore": True,
    "no-dot-ignore": True,
    "no-default-ignore": True,
    "poll": True,
    "poll-interval": "1s",
    "watch": ["src"],
}
"""A value other than the default, for each key; a key needs a partner for its effect to
show (`handoff` and `ready-notify` with a socket, `poll-interval` with `poll`)."""
PARTNERS: dict[str, dict[str, Any]] = {
    "handoff": {"socket": ["127.0.0.1:8999"], "ready-line": "ready"},
    "ready-timeout": {"ready-line": "ready"},
    "poll-interval": {"poll": True},
    "on-busy": {"build": "make"},
}
RUN_KEYS = (*up.RUN_KEYS, "clear")
"""Keys of the run as a whole, which a service's table refuses (see the test below them)."""
NO_OP = {"all-events": "reentr watch always runs after a change made during a run; -a is "
                       "accepted for entr's habit (README)"}


def _config(root: Path, table: dict[str, Any]) -> object:
    found = configfile.Found(root / "reentr.toml", {"services": {"s": table}})
    _, services = configfile.services(found)
    values = configfile.defaults(services[0].options, KINDS, set(KINDS))
    config = up._service_config(WATCH, services[0], {"restart": True, **values})
    return dataclasses.replace(config, watch=config.watch)


@pytest.mark.parametrize("key", sorted(KINDS))
def test_every_key_of_a_service_table_takes_effect(key: str, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    if key in RUN_KEYS or key in NO_OP:
        return  # the whole run's (refused in a service's table, below), or documented as none
    assert key in VALUES, f"{key}: a new option; give it a value here, and make it work in up"
    partners = PARTNERS.get(key, {})
    base = _config(tmp_path, {"command": COMMAND, **partners})
    given = _config(tmp_path, {"command": COMMAND, **partners, key: VALUES[key]})
    assert given != base, f"{key} = {VALUES[key]!r} was accepted and changed nothing"


@pytest.mark.parametrize("key", RUN_KEYS)
def test_a_key_of_the_whole_run_is_refused_in_a_services_table(key: str, tmp_path: Path) -> None:
    value: Any = {"events": "events.jsonl", "clear": 1}.get(key, True)
    root = tmp_path / "p"
    root.mkdir()
    (root / "reentr.toml").write_text(
        f"[services.s]\ncommand = {json.dumps(COMMAND)}\n{key} = {json.dumps(value)}\n")
    done = subprocess.run([*REENTR, "up", "-n"], cwd=root, capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 1
    assert done.stderr.startswith(f"reentr: {root / 'reentr.toml'} [services.s]: {key} is the "
                                  "whole run's, not one service's"), done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_the_whole_runs_keys_at_the_top_take_effect(tmp_path: Path) -> None:
    root = tmp_path / "top"
    root.mkdir()
    events = tmp_path / "events.jsonl"
    (root / "reentr.toml").write_text(
        f"quiet = true\nnon-interactive = true\nevents = {json.dumps(str(events))}\n\n"
        f"[services.s]\ncommand = {json.dumps(COMMAND)}\nrestart = false\n"
        "on-exit = \"quit\"\n")
    done = subprocess.run([*REENTR, "up"], cwd=root, capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # quiet: no status line
    assert '"event": "exited"' in events.read_text()
