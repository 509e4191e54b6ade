"""`reentr up` end to end: a three-service project (a store, an api that calls the store, a web
front that calls the api), each a real Python server on the socket reentr holds for it
(tests/apps/service.py), each answering with its version, PID and name."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from helpers import (
    APPS,
    DEADLINE,
    REENTR,
    Hammer,
    Reentr,
    atomic_edit,
    edit,
    event_records,
    free_ports,
    http_get,
    stays_false,
    wait_for,
)

pytestmark = pytest.mark.timeout(120)

NAMES = ("store", "api", "web")
Up = Callable[..., Reentr]
"""The `up` fixture: `up(ARGS, ROOT, tty=False)` starts `reentr up ARGS` in ROOT."""


def _toml(value: object) -> str:
    return json.dumps(value)  # a JSON string or list of strings is a TOML one too


def write_project(
    root: Path, ports: dict[str, int], *, handoff: bool = False,
    builds: dict[str, str] | None = None,
) -> Path:
    """The project, its reentr.toml holding one table per service:

        root/
            reentr.toml
            shared/lib.txt        watched by store and api
            store/ api/ web/      service.py and version.txt ("one") each
    """
    (root / "shared").mkdir(parents=True)
    (root / "shared" / "lib.txt").write_text("lib\n")
    lines = [
        f"command = {_toml([sys.executable, 'service.py'])}",
        "stop-timeout = \"5s\"",
        "",
    ]
    upstream = {"api": "store", "web": "api"}
    for name in NAMES:
        (root / name).mkdir()
        shutil.copy(APPS / "service.py", root / name / "service.py")
        (root / name / "version.txt").write_text("one\n")
        url = f"http://127.0.0.1:{ports[name]}/"
        lines += [
            f"[services.{name}]",
            f"cwd = {_toml(name)}",
            f"socket = [{ports[name]}]",
            f"ready-url = {_toml(url)}",
            "handoff = true" if handoff else "restart = true",
        ]
        if name != "web":
            lines.append(f"paths = {_toml(['.', '../shared'])}")
        if name in upstream:
            above = upstream[name]
            lines.append(f"depends-on = [{_toml(above)}]")
            lines.append(f"env = {{ UPSTREAM = {_toml(f'http://127.0.0.1:{ports[above]}/')} }}")
        if builds and name in builds:
            lines.append(f"build = {_toml(builds[name])}")
        lines.append("")
    (root / "reentr.toml").write_text("\n".join(lines))
    return root


@pytest.fixture
def ports() -> dict[str, int]:
    return dict(zip(NAMES, free_ports(len(NAMES)), strict=True))


@pytest.fixture
def up(reentr: Callable[..., Reentr], tmp_path: Path) -> Up:
    """Start `reentr up ARGS` in a project, with its --events file; cleaned up as every
    reentr the `reentr` fixture starts."""
    numbers = itertools.count()

    def start(args: list[str], root: Path, *, tty: bool = False) -> Reentr:
        events = tmp_path / f"events-{next(numbers)}.jsonl"
        proc = reentr(["up", "--events", str(events), *args], "", cwd=root, tty=tty)
        proc.events = events
        return proc

    return start


def records(proc: Reentr) -> list[dict[str, Any]]:
    return event_records(proc.events)


def all_ready(proc: Reentr) -> list[dict[str, Any]] | None:
    """The events so far, once each of the three services has been ready once."""
    seen = records(proc)
    return seen if {r["service"] for r in seen if r["event"] == "ready"} == set(NAMES) else None


def answer(port: int) -> list[tuple[str, str, str]]:
    """What the service on `port` answers, split into (version, PID, name) per service along
    the chain of calls; empty if nothing answers."""
    body = http_get(port)
    if body is None:
        return []
    return [tuple(hop.split()) for hop in body.split(" -> ")]  # type: ignore[misc]


def pids(ports: dict[str, int], *names: str) -> dict[str, str]:
    """The PID of each service named, once each answers."""
    def pid(name: str) -> str | None:
        hops = answer(ports[name])
        return hops[0][1] if hops else None
    return {name: wait_for(partial(pid, name), what=f"{name} to answer") for name in names}


def serves(ports: dict[str, int], name: str, version: str, old_pid: str | None = None) -> str:
    """Wait until `name` answers `version` from a process other than `old_pid`; its PID."""
    def new() -> str | None:
        hops = answer(ports[name])
        if hops and hops[0][0] == version and hops[0][1] != old_pid:
            return hops[0][1]
        return None
    return wait_for(new, what=f"{name} to serve {version}")


def run_reentr(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`reentr ARGS` run to its end."""
    return subprocess.run([*REENTR, *args], check=False, cwd=cwd, capture_output=True, text=True,
                          timeout=DEADLINE, stdin=subprocess.DEVNULL)


def gone(pid: str) -> bool:
    return not alive(pid)


def alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)  # signal 0: a check, nothing is sent
    except ProcessLookupError:
        return False
    return True


def test_services_start_in_dependency_order_once_each_is_ready(
    up: Up, tmp_path: Path, ports: dict[str, int]
) -> None:
    root = write_project(tmp_path / "project", ports)
    proc = up(["-n"], root)
    proc.err.expect(r"^reentr: services: 1 store, 2 api, 3 web$")
    chain = wait_for(lambda: answer(ports["web"]), what="web to answer through api and store")
    assert [hop[2] for hop in chain] == ["web", "api", "store"]
    # Each starts only after what it depends on answered its readiness probe.
    seen = wait_for(lambda: all_ready(proc), what="all three ready")
    order = [(r["event"], r["service"]) for r in seen if r["event"] in ("start", "ready")]
    assert order == [("start", "store"), ("ready", "store"), ("start", "api"), ("ready", "api"),
                     ("start", "web"), ("ready", "web")]
    # Output: every line behind its service's name, padded to a common width (no colour: not
    # a terminal).
    proc.out.expect(r"^store \| serving one$")
    proc.out.expect(r"^api   \| serving one$")
    proc.out.expect(r"^web   \| serving one$")


def test_an_edit_restarts_only_its_service_and_a_shared_one_store_before_api(
    up: Up, tmp_path: Path, ports: dict[str, int]
) -> None:
    root = write_project(tmp_path / "project", ports)
    proc = up(["-n"], root)
    before = pids(ports, *NAMES)
    wait_for(lambda: all_ready(proc), what="all three ready")
    edit(root / "api" / "version.txt", "two\n")
    new_api = serves(ports, "api", "two", before["api"])
    proc.err.expect(r"^api   \| reentr: restart #1 ")
    assert pids(ports, "store", "web") == {"store": before["store"], "web": before["web"]}
    assert not alive(before["api"])
    # web calls the new api, which calls the same store.
    assert [hop[:2] for hop in answer(ports["web"])] == [
        ("one", before["web"]), ("two", new_api), ("one", before["store"])]

    # A file both store and api watch: both restart, store first; web does not.
    atomic_edit(root / "shared" / "lib.txt", "lib 2\n")
    new_store = serves(ports, "store", "one", before["store"])
    newest_api = serves(ports, "api", "two", new_api)
    assert pids(ports, "web") == {"web": before["web"]}
    starts = [r["service"] for r in records(proc) if r["event"] == "start"]
    assert starts[3:] == ["api", "store", "api"]
    # api is stopped only once the new store is ready: it never calls a store that is gone.
    seen = [(r["event"], r["service"]) for r in records(proc)
            if r["event"] == "ready" or (r["event"] == "signal" and r.get("stop"))]
    assert seen[5:] == [("signal", "store"), ("ready", "store"), ("signal", "api"),
                        ("ready", "api")]
    assert [hop[:2] for hop in answer(ports["web"])] == [
        ("one", before["web"]), ("two", newest_api), ("one", new_store)]
    # api's restart counts that wait as a stage of its own, as long as store's restart took
    # from the change on, and shows it on its line.
    restarts = wait_for(lambda: [r for r in records(proc) if r["event"] == "restart"][1:] or None,
                        what="the shared edit's restarts")
    wait_for(lambda: len(restarts) == 2 or None, what="two restarts")
    store, api = sorted(restarts, key=lambda r: NAMES.index(r["service"]))
    assert store["wait_ms"] == 0
    store_span = store["total_ms"] - store["detect_ms"]  # from the change seen to store ready
    assert store_span - 1 <= api["wait_ms"] <= store_span + 5
    proc.err.expect(r"api   \| reentr: restart #2 ready in \d+ ms \(detect \d+, wait \d+, ")


def test_a_program_its_build_writes_is_found_from_its_cwd_and_is_no_change(
    up: Up, tmp_path: Path, ports: dict[str, int]
) -> None:
    # As `go build -o store .` then `./store`: the build writes the program into the watched
    # tree, and the program is named from the service's directory, not from reentr's.
    root = write_project(tmp_path / "project", ports)
    launcher = f"#!/bin/sh\nexec {sys.executable} service.py\n"
    (root / "launcher").write_text(launcher)
    text = (root / "reentr.toml").read_text().replace(
        "[services.store]\n",
        "[services.store]\nbuild = \"cp ../launcher store && chmod +x store\"\n"
        "command = \"./store\"\n")
    (root / "reentr.toml").write_text(text)
    proc = up(["-n", "store"], root)
    first = pids(ports, "store")["store"]

    def builds() -> int:
        return sum(r["event"] == "spawned" and r["role"] == "build" for r in records(proc))

    assert builds() == 1
    stays_false(lambda: builds() > 1, 0.5, what="the build's own output to trigger a build")
    edit(root / "store" / "version.txt", "two\n")
    serves(ports, "store", "two", first)
    assert builds() == 2
    assert "is written again by every run" not in proc.err.text()


def test_a_unix_socket_path_is_the_services_from_its_cwd(
    up: Up, tmp_path: Path, ports: dict[str, int]
) -> None:
    root = write_project(tmp_path / "project", ports)
    text = (root / "reentr.toml").read_text().replace(
        f"socket = [{ports['store']}]", "socket = [\"unix:store.sock\"]")
    (root / "reentr.toml").write_text(text.replace("ready-url", "ready-line = \"serving\"\n#"))
    up(["-n", "store"], root)
    path = root / "store" / "store.sock"

    def unix_answer() -> str | None:
        with socket.socket(socket.AF_UNIX) as conn:
            try:
                conn.connect(str(path))
                conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
                return conn.makefile("rb").read().decode().split("\r\n\r\n", 1)[1]
            except OSError:
                return None

    assert wait_for(unix_answer, what="store on store/store.sock").split()[2] == "store"
    assert not (root / "store.sock").exists()


def test_with_handoff_clients_of_every_service_see_no_failure_over_ten_restarts_each(
    up: Up, tmp_path: Path, ports: dict[str, int]
) -> None:
    root = write_project(tmp_path / "project", ports, handoff=True)
    proc = up(["-n"], root)
    pids(ports, *NAMES)
    hammers = {name: Hammer(ports[name], interval=0.005) for name in NAMES}
    try:
        for version in range(2, 12):
            for name in NAMES:
                old = pids(ports, name)[name]
                atomic_edit(root / name / "version.txt", f"v{version}\n")
                serves(ports, name, f"v{version}", old)
                wait_for(partial(gone, old), what=f"the old {name} to stop")
    finally:
        for hammer in hammers.values():
            hammer.stop()
    for name, hammer in hammers.items():
        assert hammer.failures == [], f"{name}: {hammer.failures[:5]}"
        assert hammer.served("v11") is not None
        # web's answers went through api and store at every moment, and none failed.
        assert len(hammer.answers) > 50
    restarts = [r for r in records(proc) if r["event"] == "restart"]
    assert {name: sum(r["service"] == name for r in restarts) for name in NAMES} == {
        name: 10 for name in NAMES}


def test_a_failed_build_leaves_that_service_and_the_others_serving(
    up: Up, tmp_path: Path, ports: dict[str, int]
) -> None:
    builds = {"api": "test ! -e broken || { echo 'api: broken'; exit 1; }"}
    root = write_project(tmp_path / "project", ports, builds=builds)
    proc = up(["-n"], root)
    before = pids(ports, *NAMES)
    (root / "api" / "broken").write_text("")
    wait_for(lambda: any(r["event"] == "build_failed" and r["service"] == "api"
                         for r in records(proc)), what="api's build to fail")
    proc.err.expect(r"^api   \| api: broken$")
    assert pids(ports, *NAMES) == before
    assert [hop[2] for hop in answer(ports["web"])] == ["web", "api", "store"]
    # Fixed: the api restarts, alone.
    (root / "api" / "broken").unlink()
    serves(ports, "api", "one", before["api"])
    assert pids(ports, "store", "web") == {"store": before["store"], "web": before["web"]}


def test_naming_a_service_runs_it_and_what_it_depends_on_only(
    up: Up, tmp_path: Path, ports: dict[str, int]
) -> None:
    root = write_project(tmp_path / "project", ports)
    proc = up(["-n", "api"], root)
    proc.err.expect(r"^reentr: services: 1 store, 2 api$")
    assert [hop[2] for hop in wait_for(lambda: answer(ports["api"]), what="api")] == [
        "api", "store"]
    assert {r["service"] for r in records(proc) if r["event"] == "start"} == {"store", "api"}
    assert http_get(ports["web"], timeout=0.5) is None


def test_reentr_restart_restarts_one_service_from_another_process(
    up: Up, tmp_path: Path, ports: dict[str, int]
) -> None:
    root = write_project(tmp_path / "project", ports)
    proc = up(["-n"], root)
    before = pids(ports, *NAMES)
    asked = run_reentr(["restart", "api"], root / "web")
    assert (asked.returncode, asked.stderr) == (0, "")
    serves(ports, "api", "one", before["api"])
    restart = wait_for(lambda: next((r for r in records(proc) if r["event"] == "restart"), None),
                       what="api's restart event")
    assert (restart["service"], restart["trigger"], restart["asked"]) == (
        "api", None, "reentr restart")
    assert pids(ports, "store", "web") == {"store": before["store"], "web": before["web"]}
    wrong = run_reentr(["restart", "nope"], root)
    assert wrong.returncode == 1
    assert wrong.stderr.count("\n") == 1
    assert "nope" in wrong.stderr and "store, api, web" in wrong.stderr


def test_a_second_up_of_the_same_project_is_one_line_before_anything(
    up: Up, tmp_path: Path, ports: dict[str, int]
) -> None:
    root = write_project(tmp_path / "project", ports)
    up(["-n"], root)
    before = pids(ports, *NAMES)
    second = run_reentr(["up", "-n"], root / "api")
    # Refused before its sockets (their ports are the first one's: that would be another
    # error) and before its first line.
    assert second.returncode == 1
    assert second.stdout == ""
    assert second.stderr.count("\n") == 1
    assert "another reentr up is already running" in second.stderr
    assert pids(ports, *NAMES) == before


def test_reentr_restart_without_a_running_up_says_so(tmp_path: Path, ports: dict[str, int]) -> None:
    root = write_project(tmp_path / "project", ports)
    asked = run_reentr(["restart", "api"], root)
    assert asked.returncode == 1
    assert asked.stderr.count("\n") == 1
    assert asked.stderr.startswith("reentr: ") and "reentr up" in asked.stderr


def test_keys_restart_one_service_or_all(up: Up, tmp_path: Path, ports: dict[str, int]) -> None:
    root = write_project(tmp_path / "project", ports)
    proc = up([], root, tty=True)
    proc.err.expect(r"r then a number restarts one")
    before = pids(ports, *NAMES)
    wait_for(lambda: all_ready(proc), what="all three ready")
    proc.press("r")
    proc.press("3")
    serves(ports, "web", "one", before["web"])
    assert pids(ports, "store", "api") == {"store": before["store"], "api": before["api"]}
    wait_for(lambda: sum(r["event"] == "ready" for r in records(proc)) == 4,
             what="web ready again")
    current, count = pids(ports, *NAMES), len(records(proc))
    proc.press(" ")
    for name in NAMES:
        serves(ports, name, "one", current[name])
    wait_for(lambda: sum(r["event"] == "ready" for r in records(proc)) == 7,
             what="all three ready again")
    # In dependency order: each is stopped once the one it depends on serves again.
    seen = [(r["event"], r["service"]) for r in records(proc)[count:]
            if r["event"] == "ready" or (r["event"] == "signal" and r.get("stop"))]
    assert seen == [("signal", "store"), ("ready", "store"), ("signal", "api"), ("ready", "api"),
                    ("signal", "web"), ("ready", "web")]
    # Each restart says that a key asked for it, in its event and on its line.
    restarts = wait_for(lambda: [r for r in records(proc) if r["event"] == "restart"] if sum(
        r["event"] == "restart" for r in records(proc)) == 4 else None, what="four restarts")
    assert [(r["service"], r["trigger"], r["asked"]) for r in restarts] == [
        ("web", None, "key"), ("store", None, "key"), ("api", None, "key"), ("web", None, "key")]
    proc.err.expect(r"web +\| reentr: restart #2 ready in \d+ ms \([^)]*\), asked by key")
    proc.press("q")
    assert proc.wait() == 0


def test_ctrl_c_stops_dependents_first_and_leaves_no_process(
    up: Up, tmp_path: Path, ports: dict[str, int]
) -> None:
    root = write_project(tmp_path / "project", ports)
    proc = up(["-n"], root)
    running = pids(ports, *NAMES)
    proc.signal(signal.SIGINT)
    assert proc.wait() == -signal.SIGINT  # and every child has closed reentr's stdout
    assert not any(alive(pid) for pid in running.values())
    exited = [r["service"] for r in records(proc) if r["event"] == "exited"]
    assert exited == ["web", "api", "store"]


def test_a_sigkill_of_reentr_up_takes_every_service_with_it(
    up: Up, tmp_path: Path, ports: dict[str, int]
) -> None:
    root = write_project(tmp_path / "project", ports)
    proc = up(["-n"], root)
    running = pids(ports, *NAMES)
    proc.signal(signal.SIGKILL)
    proc.wait()  # reentr is gone, and so is every holder of its stdout
    wait_for(lambda: not any(alive(pid) for pid in running.values()),
             what="every service to be gone (the guardian)")


BAD = {
    "cycle": ("[services.a]\ncommand = \"true\"\ndepends-on = [\"b\"]\n"
              "[services.b]\ncommand = \"true\"\ndepends-on = [\"a\"]\n", "cycle"),
    "unknown service": ("[services.a]\ncommand = \"true\"\ndepends-on = [\"nope\"]\n",
                        "'nope'"),
    "unknown key": ("[services.a]\ncommand = \"true\"\nstop-timout = \"1s\"\n",
                    "did you mean 'stop-timeout'"),
    "shared socket": ("[services.a]\ncommand = \"true\"\nsocket = [\"{port}\"]\n"
                      "[services.b]\ncommand = \"true\"\nsocket = [\"{port}\"]\n",
                      "both hold the socket"),
    "no services": ("command = \"true\"\n", "no services"),
    "bad value": ("[services.a]\ncommand = \"true\"\non-busy = \"never\"\n",
                  "[services.a]: Invalid value for '--on-busy': 'never'"),
    # docker compose's spelling, and the keys that are not options listed.
    "depends_on": ("[services.a]\ncommand = \"true\"\ndepends_on = [\"b\"]\n"
                   "[services.b]\ncommand = \"true\"\n",
                   "unknown key 'depends_on'; did you mean 'depends-on'? (the keys are the "
                   "long names of reentr's options, as reentr --help lists them, and in a "
                   "service's table depends-on, cwd, env, env-file)"),
    # A misspelt [services.b] was skipped: the error named what it left out instead.
    "misspelt table": ("[service.b]\ncommand = \"true\"\n[services.a]\ncommand = \"true\"\n"
                       "depends-on = [\"b\"]\n",
                       "unknown table [service]; a service is a [services.NAME] table"),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_config_is_one_line_and_starts_nothing(
    tmp_path: Path, case: str, ports: dict[str, int]
) -> None:
    text, named = BAD[case]
    (tmp_path / "reentr.toml").write_text(text.replace("{port}", str(ports["store"])))
    done = run_reentr(["up", "-n"], tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("reentr: ") and "reentr.toml" in done.stderr
    assert named in done.stderr


def test_services_in_pyproject_toml(up: Up, tmp_path: Path, ports: dict[str, int]) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (root / "store").mkdir()
    shutil.copy(APPS / "service.py", root / "store" / "service.py")
    (root / "pyproject.toml").write_text(
        "[project]\nname = \"demo\"\n\n"
        "[tool.reentr.services.store]\n"
        f"cwd = \"store\"\ncommand = {_toml([sys.executable, 'service.py'])}\n"
        f"socket = [{ports['store']}]\nrestart = true\n")
    proc = up(["-n"], root)
    proc.err.expect(r"^reentr: services: 1 store$")
    assert wait_for(lambda: answer(ports["store"]), what="store")[0][2] == "store"


def test_a_file_in_a_services_paths_is_watched_alone_in_its_directory(
    up: Up, tmp_path: Path
) -> None:
    root = tmp_path / "files"
    (root / "src").mkdir(parents=True)
    (root / "Makefile").write_text("all:\n")
    (root / "src" / "main.c").write_text("int main(void) { return 0; }\n")
    show = [sys.executable, "-c", "import os; print('run', os.environ['REENTR_CHANGED'])"]
    (root / "reentr.toml").write_text(
        f"[services.make]\ncommand = {_toml(show)}\nrestart = false\n"
        f"paths = {_toml(['Makefile', 'src'])}\n")
    proc = up([], root)
    proc.out.expect(r"run $")
    edit(root / "notes.txt", "not a path of the service\n")
    edit(root / "Makefile", "all:\n\techo made\n")
    assert proc.out.expect(r"run (.*)$").group(1) == str(root / "Makefile")
    edit(root / "src" / "main.c", "int main(void) { return 1; }\n")
    assert proc.out.expect(r"run (.*)$").group(1) == str(root / "src" / "main.c")
    proc.signal(signal.SIGINT)
    proc.wait()


def _service_project(root: Path, toml: str) -> Path:
    root.mkdir(exist_ok=True)
    (root / "reentr.toml").write_text(toml)
    return root


def _procfile_project(root: Path, procfile: str) -> Path:
    root.mkdir()
    (root / "Procfile").write_text(procfile)
    return root


def _says(text: str) -> list[str]:
    """A program that prints `text` and its PID, then runs until stopped."""
    return [sys.executable, "-c", f"import os, signal; print({text!r}, os.getpid(), flush=True); "
            "signal.pause()"]


def test_every_option_of_a_service_takes_effect_on_exit_and_delay_run(
    up: Up, tmp_path: Path
) -> None:
    # Both were accepted and did nothing: the back-off timer and the delay were routed by the
    # PID of a process that was gone, or of none.
    crash = [sys.executable, "-c", "print('w up', flush=True); raise SystemExit(3)"]
    root = _service_project(tmp_path / "opts", (
        f"[services.w]\ncommand = {_toml(crash)}\non-exit = \"restart\"\n\n"
        f"[services.d]\ncommand = {_toml(_says('d up'))}\ndelay-run = \"500ms\"\n\n"
        f"[services.after]\ndepends-on = [\"d\"]\ncommand = {_toml(_says('after up'))}\n"))
    proc = up(["-n"], root)
    # Each in its own time: the lines of the three interleave as they will.
    wait_for(lambda: proc.out.count(r"w up") >= 2, what="w restarted after its back-off")
    wait_for(lambda: proc.out.count(r"d up \d+") == 1, what="d started after its delay")
    wait_for(lambda: proc.out.count(r"after up \d+") == 1, what="after started once d had")
    proc.signal(signal.SIGINT)
    proc.wait()


def test_a_service_restarts_on_a_change_by_default(up: Up, tmp_path: Path) -> None:
    root = _service_project(tmp_path / "default", (
        f"[services.s]\ncommand = {_toml(_says('s up'))}\n"))
    proc = up(["-n"], root)
    first = proc.out.expect(r"s up (\d+)").group(1)
    edit(root / "app.py", "changed\n")
    second = proc.out.expect(r"s up (\d+)").group(1)
    assert second != first
    proc.signal(signal.SIGINT)
    proc.wait()


def test_a_dependant_says_what_it_waits_for(up: Up, tmp_path: Path) -> None:
    crash = [sys.executable, "-c", "raise SystemExit(1)"]
    root = _service_project(tmp_path / "waits", (
        f"[services.db]\ncommand = {_toml(crash)}\nready-line = \"ready\"\n\n"
        f"[services.web]\ndepends-on = [\"db\"]\ncommand = {_toml(_says('web up'))}\n"))
    proc = up(["-n"], root)
    proc.err.expect(r"web +\| reentr: waits for db, which is not running and was never ready; "
                    r"web starts once db is ready")
    proc.signal(signal.SIGINT)
    proc.wait()
    assert "web up" not in proc.out.text()


@pytest.mark.timeout(60)
def test_a_second_ctrl_c_kills_every_service_at_once(up: Up, tmp_path: Path) -> None:
    # Both ignore SIGTERM and have 30 s to stop; web depends on api, so api is told to stop
    # only once web is gone. The second Ctrl-C reached only those told already.
    stubborn = [sys.executable, "-c", "import os, signal; "
                "signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "print('up', os.getpid(), flush=True); signal.pause()"]
    root = _service_project(tmp_path / "stubborn", (
        f"stop-timeout = \"30s\"\n\n[services.api]\ncommand = {_toml(stubborn)}\n\n"
        f"[services.web]\ndepends-on = [\"api\"]\ncommand = {_toml(stubborn)}\n"))
    proc = up(["-n"], root)
    pids = [int(proc.out.expect(r"up (\d+)").group(1)) for _ in range(2)]
    proc.signal(signal.SIGINT)
    wait_for(lambda: event_records(proc.events) and any(
        r["event"] == "signal" and r.get("stop") for r in event_records(proc.events)),
        what="web told to stop")
    proc.signal(signal.SIGINT)
    proc.wait(timeout=10)
    assert not any(os.path.exists(f"/proc/{pid}") for pid in pids)


def test_a_services_socket_in_use_names_the_file_and_the_service(tmp_path: Path) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    root = _service_project(tmp_path / "busy", (
        f"[services.api]\ncommand = {_toml(_says('api up'))}\nsocket = [{port}]\n"))
    done = subprocess.run([*REENTR, "up", "-n"], cwd=root, capture_output=True, text=True,
                          timeout=30, check=False)
    busy.close()
    assert done.returncode == 1
    assert done.stderr == (f"reentr: {root / 'reentr.toml'} [services.api]: --socket "
                           f"127.0.0.1:{port}: address already in use; stop the program "
                           "listening there, or choose another\n")


# Prints its name, PORT, and GREETING from its environment, then runs until stopped.
SHOW_ENV = ("python3 -c \"import os, signal, sys; print('{name}', os.environ.get('PORT'), "
            "os.environ.get('GREETING'), os.getpid(), flush=True); signal.pause()\"")


def test_a_procfile_and_its_env_run_as_under_foreman(up: Up, tmp_path: Path) -> None:
    # What a foreman, honcho or overmind user tries first: no reentr.toml.
    root = tmp_path / "procfile"
    root.mkdir()
    (root / "Procfile").write_text(
        "# the processes\n"
        f"web: {SHOW_ENV.format(name='web')}\n"
        f"worker: {SHOW_ENV.format(name='worker')} && true\n")
    (root / ".env").write_text("export GREETING='hello there'\nPORT=7000 # the first port\n")
    proc = up(["-n"], root)
    proc.err.expect(r"no reentr\.toml: running the Procfile")
    web = proc.out.expect(r"^web +\| web 7000 hello there (\d+)$").group(1)
    # The two start side by side: the worker's line may come before the web's or after it.
    wait_for(lambda: proc.out.count(r"^worker +\| worker 7100 hello there \d+$") == 1,
             what="the worker's line")
    edit(root / "app.py", "changed\n")  # anywhere in the tree: each process restarts
    again = proc.out.expect(r"^web +\| web 7000 hello there (\d+)$").group(1)
    assert again != web
    # `reentr restart` works from anywhere in the project, a Procfile's too.
    (root / "lib").mkdir()
    asked = run_reentr(["restart", "web"], root / "lib")
    assert (asked.returncode, asked.stderr) == (0, "")
    assert proc.out.expect(r"^web +\| web 7000 hello there (\d+)$").group(1) != again
    # An edit of the Procfile is said, and restarts nothing: it is read at the start alone.
    edit(root / "Procfile", (root / "Procfile").read_text() + "# more\n")
    proc.err.expect(r"^reentr: Procfile changed: its services and their keys are read when "
                    r"reentr up starts")
    stays_false(lambda: proc.out.count(r"^web ") > 3, 1.0, what="a restart for the edit")
    proc.signal(signal.SIGINT)
    proc.wait()


def test_an_output_every_process_of_a_procfile_sees_is_said_once(
    up: Up, tmp_path: Path
) -> None:
    # Each process watches the whole tree: the line came once per process, the same each time.
    # A binary file the first process writes as it starts (text could be the user's save).
    root = _procfile_project(tmp_path / "procfile", "a: printf 'x\\0' > made.bin && exec "
                             "sleep 60\nb: exec sleep 60\nc: exec sleep 60\n")
    proc = up(["-n"], root)
    proc.err.expect(r"taking these as the runs' outputs, not changes: made\.bin")
    stays_false(lambda: proc.err.count(r"taking these as the runs' outputs") > 1, 1.0,
                what="the line again")
    proc.signal(signal.SIGINT)
    proc.wait()


def test_a_procfile_process_that_cannot_run_is_refused_and_the_others_run_with_sh(
    up: Up, tmp_path: Path
) -> None:
    # A missing program started, and the shell said `not found` behind `$0`, the project's
    # directory: `/tmp/x: line 1: nosuchprog: command not found`. foreman and honcho run a
    # line with `sh -c`, `$0` the shell's.
    root = _procfile_project(tmp_path / "procfile", "web: nosuchprog-x --port 1\nworker: true\n")
    done = run_reentr(["up", "-n"], root)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (f"reentr: {root / 'Procfile'}: web: cannot run 'nosuchprog-x': no "
                           "such program on PATH; check the name, or give its path\n")
    (root / "Procfile").write_text("web: echo $0 $PORT && exec sleep 60\n")
    proc = up(["-n"], root)
    proc.out.expect(r"^web +\| /bin/sh 5000$")
    proc.signal(signal.SIGINT)
    proc.wait()


@pytest.mark.parametrize("moment", range(6))
def test_a_change_made_while_reentr_up_starts_is_never_lost(
    up: Up, tmp_path: Path, moment: int
) -> None:
    # An edit made in reentr's first moments, before or while it sets up its watch and starts
    # the services: each service ends up running on it, whether its first start sees it or
    # a restart does. Each case waits a different number of the services' lines first.
    root = tmp_path / "early"
    root.mkdir()
    (root / "version.txt").write_text("v1\n")
    show = ("python3 -c \"import signal; print('{name}', open('version.txt').read().strip(), "
            "flush=True); signal.pause()\"")
    (root / "Procfile").write_text("".join(f"{name}: {show.format(name=name)}\n"
                                           for name in ("web", "worker", "clock")))
    proc = up(["-n"], root)
    wait_for(lambda: proc.out.count(r"^\w+ +\| \w+ v1$") >= min(moment, 3),
             what=f"{min(moment, 3)} services' first lines")
    edit(root / "version.txt", "v2\n")
    wait_for(lambda: all(proc.out.count(rf"^{name} +\| {name} v2$") >= 1
                         for name in ("web", "worker", "clock")),
             what="every service to run on v2 (in any order)")
    proc.signal(signal.SIGINT)
    proc.wait()


def test_a_reentr_toml_wins_over_a_procfile(up: Up, tmp_path: Path) -> None:
    root = _service_project(tmp_path / "both", (
        f"[services.api]\ncommand = {_toml(_says('api up'))}\n"))
    (root / "Procfile").write_text("web: echo from the Procfile\n")
    proc = up(["-n"], root)
    proc.out.expect(r"api up")
    proc.signal(signal.SIGINT)
    proc.wait()
    assert "Procfile" not in proc.err.text() + proc.out.text()


def test_env_file_is_read_into_every_service_and_a_services_env_wins(
    up: Up, tmp_path: Path
) -> None:
    show = [sys.executable, "-c", "import os, signal; print(os.environ.get('NAME'), "
            "os.environ.get('GREETING'), os.environ.get('LEVEL'), flush=True); signal.pause()"]
    root = _service_project(tmp_path / "dotenv", (
        f"[services.a]\ncommand = {_toml(show)}\nenv = {{ NAME = \"a\" }}\n\n"
        f"[services.b]\ncommand = {_toml(show)}\nenv = {{ NAME = \"b\", LEVEL = \"own\" }}\n"
        "env-file = \"b.env\"\n\n"
        f"[services.c]\ncommand = {_toml(show)}\nenv = {{ NAME = \"c\" }}\nenv-file = false\n"))
    (root / ".env").write_text("GREETING=hi\nLEVEL=file\n")
    (root / "b.env").write_text("GREETING=other\nLEVEL=file\n")
    proc = up(["-n"], root)
    for line in ("a hi file", "b other own", "c None None"):
        wait_for(lambda line=line: proc.out.count(rf"\| {line}$") == 1,  # type: ignore[misc]
                 what=line)
    proc.signal(signal.SIGINT)
    proc.wait()


def test_a_bad_env_file_names_its_line_and_never_a_value(tmp_path: Path) -> None:
    root = _service_project(tmp_path / "badenv", (
        f"[services.a]\ncommand = {_toml(_says('a up'))}\n"))
    (root / ".env").write_text("OK=1\nTOKEN=\"s3cr3t\n")
    done = subprocess.run([*REENTR, "up", "-n"], cwd=root, capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 1
    assert done.stderr == (f"reentr: {root / '.env'}:2: the value of TOKEN opens a \" quote "
                           "and does not close it\n")
    assert "a up" not in done.stdout


def test_a_change_two_services_want_builds_them_side_by_side(up: Up, tmp_path: Path) -> None:
    # api depends on store; both build from shared/. api's build runs beside store's; only
    # api's swap waits until the new store serves. (They ran one after the other.)
    build = "sleep 0.5"
    root = tmp_path / "side"
    (root / "shared").mkdir(parents=True)
    (root / "shared" / "lib.txt").write_text("1\n")
    (root / "reentr.toml").write_text(
        f"paths = [\"shared\"]\nbuild = {_toml(build)}\n\n"
        f"[services.store]\ncommand = {_toml(_says('store up'))}\nready-line = \"store up\"\n\n"
        f"[services.api]\ndepends-on = [\"store\"]\ncommand = {_toml(_says('api up'))}\n"
        "ready-line = \"api up\"\n")
    proc = up(["-n"], root)
    proc.out.expect(r"api up \d+", timeout=30)
    edit(root / "shared" / "lib.txt", "2\n")
    wait_for(lambda: any(r["event"] == "restart" and r.get("service") == "api"
                         for r in event_records(proc.events)), timeout=30, what="api's restart")
    records = event_records(proc.events)
    after = [r for r in records if r["time"] >= next(
        r["time"] for r in records if r["event"] == "change")]

    def when(service: str, event: str, role: str) -> float:
        return float(next(r["time"] for r in after if r.get("service") == service
                          and r["event"] == event and r.get("role") == role))

    # The two builds overlapped: api's began before store's had ended.
    assert when("api", "start", "build") < when("store", "exited", "build")
    # api's swap waited for the new store: its new target started after store was ready.
    assert when("api", "start", "target") >= when("store", "ready", "target")
    restarts = [r for r in after if r["event"] == "restart" and r.get("service") == "api"]
    assert restarts and restarts[0]["build_ms"] >= 400  # the build is counted as a build
    proc.signal(signal.SIGINT)
    proc.wait()


def test_an_edit_of_env_takes_effect_at_the_restart_it_causes(up: Up, tmp_path: Path) -> None:
    # .env is in the tree: its edit restarted the services, with the values read at start.
    show = [sys.executable, "-c", "import os, signal; print('greeting', os.environ['GREETING'], "
            "os.environ['URL'], flush=True); signal.pause()"]
    root = _service_project(tmp_path / "reread", (
        f"[services.a]\ncommand = {_toml(show)}\nenv = {{ URL = \"http://${{HOST}}:1\" }}\n"))
    (root / ".env").write_text("GREETING=hello\nHOST=db\n")
    proc = up(["-n"], root)
    proc.out.expect(r"greeting hello http://db:1$")
    edit(root / ".env", "GREETING=bonjour\nHOST=cache\n")
    proc.out.expect(r"greeting bonjour http://cache:1$")
    # A bad line now: said, without its value, and the last good values kept.
    edit(root / ".env", "GREETING=hola\nSECRET=\"s3cr3t\n")
    proc.err.expect(r"\.env:2: the value of SECRET opens a \" quote and does not close it; this "
                    r"start keeps its values as last read")
    proc.out.expect(r"greeting bonjour http://cache:1$")
    proc.signal(signal.SIGINT)
    proc.wait()
    assert "s3cr3t" not in proc.err.text() + proc.out.text()


def test_an_edit_of_env_restarts_services_that_do_not_watch_it_even_when_gitignored(
    up: Up, tmp_path: Path
) -> None:
    # Services in subdirectories watch their own; .env beside reentr.toml, and in .gitignore
    # as projects keep it: its edit changed nothing, and nothing said so.
    show = [sys.executable, "-c", "import os, signal; print('greeting', os.environ['GREETING'], "
            "flush=True); signal.pause()"]
    root = _service_project(tmp_path / "outside", (
        f"[services.api]\ncwd = \"api\"\ncommand = {_toml(show)}\n\n"
        f"[services.web]\ncwd = \"web\"\ncommand = {_toml(show)}\next = [\"js\"]\n"))
    for name in ("api", "web"):
        (root / name).mkdir()
    (root / ".gitignore").write_text(".env\n")
    subprocess.run(["git", "init", "-q", str(root)], check=True, timeout=30)
    (root / ".env").write_text("GREETING=hey\n")
    proc = up(["-n"], root)
    wait_for(lambda: proc.out.count(r"\| greeting hey$") == 2, what="both services on hey")
    edit(root / ".env", "GREETING=yo\n")
    wait_for(lambda: proc.out.count(r"\| greeting yo$") == 2, what="both services on yo")
    proc.signal(signal.SIGINT)
    proc.wait()


def test_a_services_env_file_is_found_from_its_cwd(up: Up, tmp_path: Path) -> None:
    show = [sys.executable, "-c", "import os, signal; print('level', os.environ['LEVEL'], "
            "flush=True); signal.pause()"]
    root = _service_project(tmp_path / "cwdenv", (
        f"[services.api]\ncwd = \"api\"\ncommand = {_toml(show)}\nenv-file = \"dev.env\"\n"))
    (root / "api").mkdir()
    (root / "api" / "dev.env").write_text("LEVEL=debug\n")
    proc = up(["-n"], root)
    proc.out.expect(r"level debug$")
    proc.signal(signal.SIGINT)
    proc.wait()


def test_a_command_string_with_shell_syntax_is_run_by_the_shell(up: Up, tmp_path: Path) -> None:
    # As a Procfile line or process-compose's command is: `$PORT` and `&&` reached the
    # program as words.
    root = _service_project(tmp_path / "shell", (
        "[services.api]\ncommand = \"echo port=$PORT && exec sleep 600\"\n"
        "env = { PORT = \"5600\" }\n\n"
        f"[services.plain]\ncommand = \"{sys.executable} -c 'print(42)'\"\nrestart = false\n"))
    proc = up(["-n"], root)
    proc.out.expect(r"api +\| port=5600$")
    proc.out.expect(r"plain +\| 42$")
    proc.signal(signal.SIGINT)
    proc.wait()


def test_an_edit_of_the_configuration_is_said_to_need_a_new_reentr_up(
    up: Up, tmp_path: Path
) -> None:
    toml = f"[services.a]\ncommand = {_toml(_says('a up'))}\n"
    root = _service_project(tmp_path / "edited", toml)
    proc = up(["-n"], root)
    proc.out.expect(r"a up \d+")
    edit(root / "reentr.toml", toml + "env = { A = \"1\" }\n")
    proc.err.expect(r"^reentr: reentr\.toml changed: its services and their keys are read when "
                    r"reentr up starts; restart reentr up to take the edit in$")
    # Nor does the service that watches it restart: a restart would look like the edit
    # taken in (the Procfile's edit restarted every process).
    stays_false(lambda: proc.out.count(r"a up \d+") > 1, 1.0, what="a restart for the edit")
    (root / "other.txt").write_text("x\n")  # the next change restarts it, alone
    wait_for(lambda: proc.out.count(r"a up \d+") == 2, what="the restart for other.txt")
    proc.signal(signal.SIGINT)
    proc.wait()
    assert proc.err.count(r"reentr\.toml changed") == 1
    assert proc.err.count(r"restart #") == 1


def test_an_edit_of_the_configuration_is_said_where_no_service_watches_it(
    up: Up, tmp_path: Path
) -> None:
    # Services in subdirectories of their own: the file at the top was in no tree, and an
    # edit of it passed without a word (a key typed there seemed to do nothing).
    root = tmp_path / "top"
    toml = "".join(f"[services.{n}]\ncwd = \"{n}\"\ncommand = {_toml(_says(f'{n} up'))}\n"
                   for n in ("a", "b"))
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
    (root / "reentr.toml").write_text(toml)
    proc = up(["-n"], root)
    # The two start side by side: their lines come in either order.
    wait_for(lambda: proc.out.count(r"^[ab] +\| [ab] up \d+$") == 2, what="both starts")
    edit(root / "reentr.toml", toml + "# more\n")
    proc.err.expect(r"^reentr: reentr\.toml changed: its services and their keys are read when "
                    r"reentr up starts; restart reentr up to take the edit in$")
    (root / "a" / "x.txt").write_text("x\n")  # a service's own change still restarts it
    proc.err.expect(r"restart #1 ")
    proc.signal(signal.SIGINT)
    proc.wait()
    assert proc.err.count(r"reentr\.toml changed") == 1
    assert proc.err.count(r"restart #") == 1


@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset (util-linux) is not here")
def test_builds_side_by_side_are_at_most_as_many_as_the_cores(
    reentr: Callable[..., Reentr], tmp_path: Path
) -> None:
    # Given one core (taskset), the builds of three services that one change wants run one
    # at a time; each service is still restarted.
    root = tmp_path / "cap"
    (root / "shared").mkdir(parents=True)
    (root / "shared" / "lib.txt").write_text("1\n")
    tables = "".join(f"[services.{n}]\ncommand = {_toml(_says(f'{n} up'))}\n\n"
                     for n in ("a", "b", "c"))
    (root / "reentr.toml").write_text(
        f"paths = [\"shared\"]\nbuild = \"sleep 0.3\"\n\n{tables}")
    events = tmp_path / "cap-events.jsonl"
    proc = reentr(["up", "-n", "--events", str(events)], "", cwd=root,
                  wrap=["taskset", "-c", "0"])
    for n in ("a", "b", "c"):
        wait_for(lambda n=n: proc.out.count(rf"{n} up \d+") == 1,  # type: ignore[misc]
                 timeout=30, what=f"{n} up")
    edit(root / "shared" / "lib.txt", "2\n")
    wait_for(lambda: sum(r["event"] == "restart" for r in event_records(events)) == 3,
             timeout=30, what="three restarts")
    steps = sorted((r["time"], 1 if r["event"] == "spawned" else -1)
                   for r in event_records(events)
                   if r.get("role") == "build" and r["event"] in ("spawned", "exited"))
    running = most = 0
    for _, step in steps:
        running += step
        most = max(most, running)
    assert most == 1
    proc.signal(signal.SIGINT)
    proc.wait()
