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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from helpers import (
    DEADLINE,
    Reentr,
    atomic_edit,
    event_records,
    free_port,
    http_get,
    stays_false,
    wait_for,
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


@dataclass
class Project:
    """A project of one toolchain: where it is, how reentr runs it, how to edit it."""

    root: Path
    build: str | None
    command: list[str]
    write: Callable[[int], None]
    """Write version N of the source, which the program prints as `served vN` once started.
    Saved as vim saves (a new file renamed over the old): a write in place is two events, a
    truncation and the text, which a busy machine may deliver as two batches, and so two
    builds."""
    broken: Callable[[], None]
    """Write a source that does not compile."""
    during: Callable[[], str] | None = None
    """A save made while the build of v8 runs, and what the program then serves; None: v9.
    make decides by modification times, so a file saved again while the compiler reads it
    can look older than the object made from its old text (make's own race, which reentr's
    stop of the build narrows, make then deleting the half-made target, but cannot close):
    make's save is to another file."""


def _c(root: Path) -> Project:
    _tool("make")
    _tool("cc")
    (root / "src").mkdir(parents=True)
    (root / "Makefile").write_text(
        "app: src/main.o src/util.o\n\tcc -o app src/main.o src/util.o\n"
        "src/%.o: src/%.c\n\tcc -c -o $@ $<\n")
    main = root / "src" / "main.c"

    def mark(text: str) -> str:
        atomic_edit(main, "#include <stdio.h>\n#include <unistd.h>\nint version(void);\n"
                          f"int main(void) {{ printf(\"served v%d{text}\\n\", version()); "
                          "fflush(stdout); pause(); }\n")
        return f"served v8{text}"

    def write(n: int) -> None:
        atomic_edit(root / "src" / "util.c", f"int version(void) {{ return {n}; }}\n")

    mark("")
    write(1)
    return Project(root, "make", ["./app"], write,
                   lambda: atomic_edit(root / "src" / "util.c", "int version(void) { return }\n"),
                   partial(mark, "+"))


def _cargo(root: Path, *, gitignore: bool) -> Project:
    cargo = _tool("cargo")
    subprocess.run([cargo, "new", "-q", "--vcs", "git", str(root)], check=True,
                   capture_output=True, timeout=60, env={**os.environ, "CARGO_NET_OFFLINE": "1"})
    if not gitignore:
        (root / ".gitignore").unlink()
    main = root / "src" / "main.rs"

    def write(n: int) -> None:
        atomic_edit(main, f'fn main() {{ println!("served v{n}"); '
                   "std::thread::sleep(std::time::Duration::from_secs(600)); }\n")

    write(1)
    return Project(root, "cargo build -q --offline", ["./target/debug/" + root.name], write,
                   lambda: atomic_edit(main, "fn main() { let }\n"))


def _go(root: Path) -> Project:
    go = _tool("go")
    root.mkdir()
    env = {**os.environ, "GOPROXY": "off", "GOFLAGS": "-mod=mod"}
    subprocess.run([go, "mod", "init", "example.com/app"], cwd=root, check=True,
                   capture_output=True, timeout=60, env=env)

    def write(n: int) -> None:
        atomic_edit(root / "main.go", 'package main\n\nimport ("fmt"; "time")\n\n'
                               f'func main() {{ fmt.Println("served v{n}"); '
                               "time.Sleep(600 * time.Second) }\n")

    write(1)
    return Project(root, "go build -o app .", ["./app"], write,
                   lambda: atomic_edit(root / "main.go", "package main\n\nfunc main() { x := }\n"))


@pytest.fixture(scope="session")
def tsc(tmp_path_factory: pytest.TempPathFactory) -> str:
    """TypeScript, installed with npm into a directory of its own (once per session)."""
    npm = _tool("npm")
    _tool("node")
    where = tmp_path_factory.mktemp("typescript")
    done = subprocess.run([npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix",
                           str(where), "typescript"], capture_output=True, text=True,
                          timeout=240, check=False)
    if done.returncode != 0:
        pytest.fail(f"npm install typescript failed: {done.stderr.strip()[-500:]}")
    return str(where / "node_modules" / ".bin" / "tsc")


def _tsc(root: Path, tsc: str) -> Project:
    (root / "src").mkdir(parents=True)
    (root / "tsconfig.json").write_text(
        '{"compilerOptions": {"outDir": "dist", "rootDir": "src", "target": "es2020", '
        '"module": "commonjs", "strict": true}, "include": ["src"]}\n')

    def write(n: int) -> None:
        atomic_edit(root / "src" / "index.ts", f'const v: number = {n};\n'
                                        'console.log(`served v${v}`);\n'
                                        "setInterval(() => {}, 1 << 30);\n")

    write(1)
    return Project(root, tsc, ["node", "dist/index.js"], write,
                   lambda: atomic_edit(root / "src" / "index.ts", 'const v: number = "x";\n'))


@pytest.fixture
def built(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    kind = request.param
    root = tmp_path / "greeter"
    if kind == "make":
        yield _c(root)
    elif kind == "cargo":
        yield _cargo(root, gitignore=True)
    elif kind == "cargo-no-gitignore":
        yield _cargo(root, gitignore=False)
    elif kind == "go":
        yield _go(root)
    else:
        yield _tsc(root, request.getfixturevalue("tsc"))


def _count(proc: Reentr, name: str, role: str) -> int:
    return sum(r["event"] == name and r.get("role") == role for r in event_records(proc.events))


@pytest.mark.parametrize("built", ["make", "cargo", "cargo-no-gitignore", "go", "tsc"],
                         indirect=True)
def test_one_build_per_edit_whatever_the_build_writes(reentr: Start, built: Project) -> None:
    project = built
    assert project.build is not None
    proc = reentr(["watch", "--build", project.build, "-r", "--", *project.command], "",
                  cwd=project.root, exits=True)
    proc.out.expect(r"^served v1$", timeout=SLOW)
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


DJANGO_VIEW = (
    "from django.http import HttpResponse\n"
    "from django.urls import path\n\n"
    "def index(request):\n    return HttpResponse('served v{n}')\n\n"
    "urlpatterns = [path('', index)]\n"
)


def test_django_makes_its_database_at_its_first_start_without_a_restart(
    reentr: Start, tmp_path: Path
) -> None:
    pytest.importorskip("django", reason="Django is in the test extra")
    root = tmp_path / "site"
    root.mkdir()
    subprocess.run([sys.executable, "-m", "django", "startproject", "mysite", str(root)],
                   check=True, capture_output=True, timeout=60)
    urls = root / "mysite" / "urls.py"
    urls.write_text(DJANGO_VIEW.format(n=1))
    port = free_port()
    proc = reentr(["watch", "-r", "--", sys.executable, "manage.py", "runserver", "--noreload",
                   f"127.0.0.1:{port}"], "", cwd=root, exits=True)
    wait_for(partial(_serves, port, "served v1"), timeout=SLOW, what="Django to serve v1")
    assert (root / "db.sqlite3").exists()
    for n in range(2, 7):
        atomic_edit(urls, DJANGO_VIEW.format(n=n))
        wait_for(partial(_serves, port, f"served v{n}"), timeout=SLOW,
                 what=f"Django to serve v{n}")
    stays_false(lambda: _count(proc, "start", "target") > 6, QUIET_S, "a restart in the quiet")
    assert _count(proc, "start", "target") == 6  # the first start and one per edit
    assert not re.search(r"restart #\d+ .*db\.sqlite3", proc.err.text())
    assert "taking these as the runs' outputs, not changes: db.sqlite3" in proc.err.text()
