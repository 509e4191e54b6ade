"""Projects of the real toolchains, each set up as its developers do, outputs in the tree and
all: the end-to-end tests (tests/test_toolchains.py) and `benchmarks/toolchains.py` both take
them from here. Each program prints `served vN` once it has started, N written by `write`."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

KINDS = ("make", "cargo", "cargo-no-gitignore", "go", "tsc", "tsc-dist-before")


@dataclass
class Project:
    """A project of one toolchain: where it is, how it is built and run, how to edit it."""

    root: Path
    build: str
    command: list[str]
    edited: Path
    """The file `write` saves."""
    write: Callable[[int], None]
    """Save version N of the source, as vim saves (a new file renamed over the old): a write
    in place is two events, a truncation and the text, which a busy machine may deliver as two
    batches, and so two builds."""
    broken: Callable[[], None]
    """Save a source that does not compile."""
    during: Callable[[], str] | None = None
    """A save made while the build of v8 runs, and what the program then serves; None: v9.
    make decides by modification times, so a file saved again while the compiler reads it
    can look older than the object made from its old text (make's own race, which reentr's
    stop of the build narrows, make then deleting the half-made target, but cannot close):
    make's save is to another file."""


def environment(programs: dict[str, str]) -> dict[str, str]:
    """The environment the builds run in: the tools' directories first on PATH (TypeScript's
    tsc is installed into a directory of its own), and cargo offline (no dependencies)."""
    dirs = [os.path.dirname(path) for path in programs.values()]
    path = os.pathsep.join([*dict.fromkeys(dirs), os.environ.get("PATH", os.defpath)])
    return {**os.environ, "PATH": path, "CARGO_NET_OFFLINE": "1"}


def readme_line(project: Project) -> str:
    """The command line the README gives for the project's toolchain."""
    build = project.build if " " not in project.build else f"'{project.build}'"
    return f"reentr watch --build {build} -r -- {' '.join(project.command)}"


def save(path: Path, text: str) -> None:
    """Write a temporary file and rename it over `path`, as vim saves."""
    temp = path.with_name(path.name + ".tmp~")
    temp.write_text(text)
    os.replace(temp, path)


def make_project(kind: str, root: Path, programs: dict[str, str]) -> Project:
    """A new project of `kind` (one of KINDS) at `root`; `programs` names where each tool is
    (`cargo`, `go`, `tsc`). Its build runs with `environment(programs)`."""
    if kind == "make":
        return _c(root)
    if kind.startswith("cargo"):
        return _cargo(root, programs["cargo"], gitignore=kind == "cargo")
    if kind == "go":
        return _go(root, programs["go"])
    return _tsc(root, programs["tsc"], dist_before=kind == "tsc-dist-before")


def _c(root: Path) -> Project:
    (root / "src").mkdir(parents=True)
    (root / "Makefile").write_text(
        "app: src/main.o src/util.o\n\tcc -o app src/main.o src/util.o\n"
        "src/%.o: src/%.c\n\tcc -c -o $@ $<\n")
    main, util = root / "src" / "main.c", root / "src" / "util.c"

    def mark(text: str) -> str:
        save(main, "#include <stdio.h>\n#include <unistd.h>\nint version(void);\n"
                   f"int main(void) {{ printf(\"served v%d{text}\\n\", version()); "
                   "fflush(stdout); pause(); }\n")
        return f"served v8{text}"

    def write(n: int) -> None:
        save(util, f"int version(void) {{ return {n}; }}\n")

    mark("")
    write(1)
    return Project(root, "make", ["./app"], util, write,
                   partial(save, util, "int version(void) { return }\n"), partial(mark, "+"))


def _cargo(root: Path, cargo: str, *, gitignore: bool) -> Project:
    subprocess.run([cargo, "new", "-q", "--vcs", "git", str(root)], check=True,
                   capture_output=True, timeout=60, env={**os.environ, "CARGO_NET_OFFLINE": "1"})
    if not gitignore:
        (root / ".gitignore").unlink()
    main = root / "src" / "main.rs"

    def write(n: int) -> None:
        save(main, f'fn main() {{ println!("served v{n}"); '
                   "loop { std::thread::park(); } }\n")

    write(1)
    return Project(root, "cargo build -q", ["./target/debug/" + root.name], main,
                   write, partial(save, main, "fn main() { let }\n"))


def _go(root: Path, go: str) -> Project:
    root.mkdir(parents=True)
    env = {**os.environ, "GOPROXY": "off", "GOFLAGS": "-mod=mod"}
    subprocess.run([go, "mod", "init", "example.com/app"], cwd=root, check=True,
                   capture_output=True, timeout=60, env=env)
    main = root / "main.go"

    def write(n: int) -> None:
        save(main, 'package main\n\nimport ("fmt"; "time")\n\n'
                   f'func main() {{ fmt.Println("served v{n}"); time.Sleep(600 * time.Second) }}\n')

    write(1)
    return Project(root, "go build -o app .", ["./app"], main, write,
                   partial(save, main, "package main\n\nfunc main() { x := }\n"))


def _tsc(root: Path, tsc: str, *, dist_before: bool = False) -> Project:
    (root / "src").mkdir(parents=True)
    (root / "tsconfig.json").write_text(
        '{"compilerOptions": {"outDir": "dist", "rootDir": "src", "target": "es2020", '
        '"module": "commonjs", "strict": true}, "include": ["src"]}\n')
    index = root / "src" / "index.ts"

    def write(n: int) -> None:
        save(index, f"const v: number = {n};\nconsole.log(`served v${{v}}`);\n"
                    "setInterval(() => {}, 1 << 30);\n")

    write(1)
    if dist_before:  # yesterday's session, or a tsc run by hand: dist/ is there already
        subprocess.run([tsc], cwd=root, check=True, capture_output=True, timeout=120)
    return Project(root, "tsc", ["node", "dist/index.js"], index, write,
                   partial(save, index, 'const v: number = "x";\n'))


def install_typescript(npm: str, where: Path) -> str:
    """TypeScript, installed with npm into `where`; the path of its tsc.

    Raises:
        RuntimeError: npm failed, with the end of what it said.
    """
    done = subprocess.run([npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix",
                           str(where), "typescript"], capture_output=True, text=True,
                          timeout=240, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"npm install typescript failed: {done.stderr.strip()[-500:]}")
    return str(where / "node_modules" / ".bin" / "tsc")
