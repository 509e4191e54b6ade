"""End to end with the real toolchains, each project set up as its developers do, outputs in the
tree and all: make with `*.o` beside the sources, `cargo new` with and without its .gitignore,
`go build -o app` with no .gitignore, tsc writing `dist/`, Django making `db.sqlite3`. A first
start, 5 edits, a compile error, its fix and 5 s of quiet give exactly one build per edit (8),
one restart per successful build (6) and nothing in the quiet; every edit is served; a save made
while a build runs is built.

Outside CI a machine without a toolchain skips its tests and says why; in CI (`CI=true`, where
`.ci/run` installs Debian's packages, TypeScript with npm, and Django in the test extra) a
missing one fails them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from helpers import (
    APPS,
    DEADLINE,
    Reentr,
    atomic_edit,
    event_records,
    free_port,
    http_get,
    inotify_watches,
    stays_false,
    wait_for,
)

sys.path.insert(0, str(APPS))
from projects import (
    KINDS,
    Project,
    environment,
    install_typescript,
    make_project,
    readme_line,
)

pytestmark = [pytest.mark.timeout(300)]

Start = Callable[..., Reentr]
QUIET_S = 5.0
SLOW = 3 * DEADLINE
"""A build of a cold cargo or tsc on a busy 2-core machine."""


def _tool(name: str) -> str:
    """The toolchain's program, or the test's end: skipped outside CI, failed in it."""
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not installed, and CI must run the toolchain tests")
        pytest.skip(f"{name} is not installed (CI installs it)")
    return found


@pytest.fixture(scope="session")
def programs() -> dict[str, str]:
    """Where each tool is, found as a test needs it (TypeScript installed once)."""
    return {}


@pytest.fixture
def built(request: pytest.FixtureRequest, tmp_path: Path, programs: dict[str, str],
          tmp_path_factory: pytest.TempPathFactory) -> Project:
    kind = request.param
    if kind == "make":
        _tool("make")
        _tool("cc")
    elif kind.startswith("cargo"):
        programs["cargo"] = _tool("cargo")
    elif kind == "go":
        programs["go"] = _tool("go")
    elif "tsc" not in programs:
        _tool("node")
        try:
            programs["tsc"] = install_typescript(_tool("npm"),
                                                 tmp_path_factory.mktemp("typescript"))
        except RuntimeError as error:
            pytest.fail(str(error))
    return make_project(kind, tmp_path / "greeter", programs)


def _count(proc: Reentr, name: str, role: str) -> int:
    return sum(r["event"] == name and r.get("role") == role for r in event_records(proc.events))


@pytest.mark.parametrize("built", KINDS, indirect=True)
def test_one_build_per_edit_whatever_the_build_writes(
    reentr: Start, built: Project, programs: dict[str, str]
) -> None:
    project = built
    assert project.build is not None
    proc = reentr(["watch", "--build", project.build, "-r", "--", *project.command], "",
                  cwd=project.root, exits=True, env=environment(programs))
    proc.out.expect(r"^served v1$", timeout=SLOW)
    if project.build.startswith("cargo"):
        # target/ (a cache directory: CACHEDIR.TAG), made by the first build while reentr
        # watched, costs no watch: only the crate's directory and src/.
        assert inotify_watches(proc.proc.pid) == 2
    for n in range(2, 7):
        project.write(n)
        proc.out.expect(rf"^served v{n}$", timeout=SLOW)
    project.broken()
    proc.err.expect(r"build failed", timeout=SLOW)
    project.write(7)
    proc.out.expect(r"^served v7$", timeout=SLOW)
    stays_false(lambda: _count(proc, "start", "build") > 8 or _count(proc, "start", "target") > 7,
                QUIET_S, "a build or a start in the quiet")
    assert _count(proc, "start", "build") == 8
    assert _count(proc, "start", "target") == 7  # the first start and 6 restarts
    assert "Terminated" not in proc.err.text()  # no build was stopped by its own writes
    # A save made while a build runs is built: the final content is served.
    project.write(8)
    wait_for(lambda: _count(proc, "start", "build") == 9, what="the build for v8")
    if project.during is None:
        project.write(9)
        final = "served v9"
    else:
        final = project.during()
    proc.out.expect(rf"^{re.escape(final)}$", timeout=SLOW)
    stays_false(partial(_last_served_is_not, proc, final), 1.0, f"a start after {final}")


def _last_served_is_not(proc: Reentr, text: str) -> bool:
    served = [line for line in proc.out.text().splitlines() if line.startswith("served ")]
    return served[-1] != text


def _serves(port: int, text: str) -> bool:
    return http_get(port) == text


def _fetch(port: int, path: str) -> str | None:
    """The body 127.0.0.1:port answers `GET /path` with; None if the request failed (a
    restart under it)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/{path}", timeout=10) as answer:
            return str(answer.read().decode())
    except OSError:
        return None


DJANGO_VIEW = (
    "from django.db import connection, transaction\n"
    "from django.http import HttpResponse\n"
    "from django.urls import path\n\n"
    "def index(request):\n    return HttpResponse('served v{n}')\n\n"
    "def write(request):\n"  # what a view that saves a model does to db.sqlite3
    "    with transaction.atomic(), connection.cursor() as c:\n"
    "        c.execute('create table if not exists hits (n integer)')\n"
    "        c.execute('insert into hits values (1)')\n"
    "    return HttpResponse('wrote')\n\n"
    "urlpatterns = [path('', index), path('write/', write)]\n"
)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A new Django project, as `django-admin startproject mysite .` makes it."""
    pytest.importorskip("django", reason="Django is in the test extra")
    root = tmp_path / "site"
    root.mkdir()
    subprocess.run([sys.executable, "-m", "django", "startproject", "mysite", str(root)],
                   check=True, capture_output=True, timeout=60)
    return root


def test_django_makes_its_database_at_its_first_start_without_a_restart(
    reentr: Start, site: Path
) -> None:
    root = site
    urls = root / "mysite" / "urls.py"
    urls.write_text(DJANGO_VIEW.format(n=1))
    port = free_port()
    proc = reentr(["watch", "-r", "--", sys.executable, "manage.py", "runserver", "--noreload",
                   f"127.0.0.1:{port}"], "", cwd=root, exits=True)
    wait_for(partial(_serves, port, "served v1"), timeout=SLOW, what="Django to serve v1")
    # Its migration check makes the database; on a loaded machine the file may show a moment
    # after the first answer.
    wait_for((root / "db.sqlite3").exists, timeout=SLOW, what="Django to make db.sqlite3")
    for n in range(2, 7):
        atomic_edit(urls, DJANGO_VIEW.format(n=n))
        wait_for(partial(_serves, port, f"served v{n}"), timeout=SLOW,
                 what=f"Django to serve v{n}")
    stays_false(lambda: _count(proc, "start", "target") > 6, QUIET_S, "a restart in the quiet")
    assert _count(proc, "start", "target") == 6  # the first start and one per edit
    assert not re.search(r"restart #\d+ .*db\.sqlite3", proc.err.text())


def test_what_django_writes_into_its_database_as_it_serves_is_no_change(
    reentr: Start, site: Path
) -> None:
    # Migrated before reentr starts (a working day), the database is not made at the start:
    # the first request that saves something wrote into it long after, and restarted the
    # server under that request.
    (site / "mysite" / "urls.py").write_text(DJANGO_VIEW.format(n=1))
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=site, check=True,
                   capture_output=True, timeout=120)
    port = free_port()
    proc = reentr(["watch", "-r", "--", sys.executable, "manage.py", "runserver", "--noreload",
                   f"127.0.0.1:{port}"], "", cwd=site, exits=True)
    wait_for(partial(_serves, port, "served v1"), timeout=SLOW, what="Django to serve v1")
    # Past what counts as its start (5 s without a readiness probe).
    stays_false(lambda: _count(proc, "start", "target") > 1, QUIET_S + 1, "a restart")
    for _ in range(3):
        assert _fetch(port, "write/") == "wrote"  # db.sqlite3, and its journal
    stays_false(lambda: _count(proc, "start", "target") > 1, 1.5, "a restart for its writes")
    atomic_edit(site / "mysite" / "urls.py", DJANGO_VIEW.format(n=2))
    wait_for(partial(_serves, port, "served v2"), timeout=SLOW, what="Django to serve v2")
    assert _count(proc, "start", "target") == 2


def test_django_runserver_under_socket_is_told_it_cannot_take_the_held_socket(
    reentr: Start, site: Path
) -> None:
    # runserver binds its port itself and cannot take fd 3: refused the port reentr holds, it
    # exits, and clients would wait on reentr's socket with no word of why.
    root = site
    port = free_port()
    proc = reentr(["watch", "-r", "--socket", f"127.0.0.1:{port}", "--", sys.executable,
                   "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"], "", cwd=root)
    proc.err.expect(r"That port is already in use", timeout=SLOW)
    proc.err.expect(rf"would use the port of the socket reentr holds \(127\.0\.0\.1:{port}\) and "
                    r"exited: .* run it without --socket$", timeout=SLOW)


@pytest.mark.parametrize("built", KINDS, indirect=True)
def test_the_readmes_toolchain_lines_are_the_ones_tested(built: Project) -> None:
    readme = (Path(__file__).parent.parent.parent / "README.md").read_text()
    assert f"`{readme_line(built)}`" in readme
    assert "`reentr watch -r -- python manage.py runserver --noreload`" in readme
