"""Ignore rules against git itself: `git ls-files --others --exclude-standard` for what is
watched and `git check-ignore -v` for the rule that decided, on tricky generated trees and on
real project trees (../shared/data/real-trees, when present)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from reentr.config import Sources
from reentr.filters import Filter, walk
from reentr.ignore import Rules

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

def _find_real_trees() -> Path:
    """$REENTR_REAL_TREES, or shared/data/real-trees beside any folder above the tests."""
    if os.environ.get("REENTR_REAL_TREES"):
        return Path(os.environ["REENTR_REAL_TREES"])
    for folder in Path(__file__).resolve().parents:
        candidate = folder / "shared" / "data" / "real-trees"
        if candidate.is_dir():
            return candidate
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "real-trees"


REAL_TREES = _find_real_trees()

# Each case: ignore files (path -> text) and the files to create. Comments say what git does.
CASES: dict[str, tuple[dict[str, str], list[str]]] = {
    "an excluded directory cannot be re-included into": (
        {".gitignore": "build/\n!build/keep.txt\n"},
        ["build/keep.txt", "build/x.o", "src/build/y.o", "keep.txt"],
    ),
    "dir/** excludes the contents, not the directory": (
        {".gitignore": "cache/**\n!cache/keep\n!cache/sub/\n"},
        ["cache/keep", "cache/x", "cache/sub/y", "cache/sub/deeper/z"],
    ),
    "anchoring": (
        {".gitignore": "/top.txt\ndoc/*.txt\nmiddle/slash\n"},
        ["top.txt", "sub/top.txt", "doc/a.txt", "doc/sub/a.txt", "sub/doc/a.txt",
         "middle/slash", "x/middle/slash"],
    ),
    "double stars": (
        {".gitignore": "**/logs\na/**/b\n**/deep/**/*.tmp\n"},
        ["logs/1", "x/logs/2", "a/b", "a/x/b", "a/x/y/b", "ab", "deep/t.tmp", "q/deep/w/t.tmp",
         "deep/t.txt"],
    ),
    "a reversed range is its first character, as git reads it": (
        {".gitignore": "[z-a]\n[!n-b]x\nd[9-05]\n[]q-c]r\n"},
        ["z", "a", "m", "cx", "nx", "bx", "d9", "d5", "d1", "qr", "cr", "]r"],
    ),
    "directory-only patterns do not match files": (
        {".gitignore": "out/\n"},
        ["out/a", "sub/out/b", "file/out", "x/out"],
    ),
    "escapes and trailing spaces": (
        {".gitignore": "\\#hash\n\\!bang\nspace\\ \ntrail   \n# comment\nfoo #bar\n\tlead\n"},
        ["#hash", "!bang", "space ", "trail", "trail   ", "# comment", "foo #bar", "foo",
         "\tlead", "lead"],
    ),
    "nested files override their parents": (
        {".gitignore": "*.log\n/only-root\n", "sub/.gitignore": "!important.log\n/only-here\n",
         "sub/deeper/.gitignore": "*.log\n"},
        ["a.log", "important.log", "sub/important.log", "sub/other.log",
         "sub/deeper/important.log", "only-root", "sub/only-root", "sub/only-here",
         "sub/deeper/only-here"],
    ),
    "a parent's directory rule beats a deeper negation": (
        {".gitignore": "gen/\n", "gen/.gitignore": "!*\n"},
        ["gen/a", "gen/b/c", "x/gen/d"],
    ),
    "character classes and wildcards": (
        {".gitignore": "[abc].txt\nq?.md\n[!x]y.c\nz[0-9]\n"},
        ["a.txt", "d.txt", "q1.md", "q12.md", "ay.c", "xy.c", "z5", "za"],
    ),
    "whitelisting": (
        {".gitignore": "*\n!*/\n!*.py\nnode_modules/\n"},
        ["a.py", "a.txt", "src/b.py", "src/c.js", "node_modules/m.py", ".gitignore"],
    ),
    "CRLF line endings and a CR inside a class": (
        {".gitignore": "crlf.txt\r\nIcon[\r]\r\nplain\r\n"},
        ["crlf.txt", "Icon\r", "Icon", "plain"],
    ),
}


def _git(root: Path, *args: str, stdin: bytes = b"") -> bytes:
    return subprocess.run(["git", *args], cwd=root, input=stdin, capture_output=True,
                          check=False, timeout=60, env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1",
                                                        "HOME": str(root.parent)}).stdout


def _make(root: Path, ignores: dict[str, str], files: list[str]) -> None:
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    for name, text in ignores.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
    subprocess.run(["git", "init", "-q", str(root)], check=True, timeout=30)


def _git_watched(root: Path) -> set[str]:
    out = _git(root, "ls-files", "-z", "--others", "--exclude-standard")
    return {p for p in out.decode("utf-8", "surrogateescape").split("\0") if p}


def _reentr_watched(root: Path, sources: Sources) -> set[str]:
    rules = Rules.load(root, sources)
    return {str(rules.relative(p)) for p, is_dir in walk(Filter(rules), root) if not is_dir}


def _git_explain(root: Path, paths: list[str]) -> dict[str, str]:
    """`git check-ignore -v -n` per path: `source:line:pattern`, or `::` when none matched."""
    out = _git(root, "check-ignore", "-v", "-n", "-z", "--stdin",
               stdin="\0".join(paths).encode("utf-8", "surrogateescape"))
    fields = out.decode("utf-8", "surrogateescape").split("\0")
    return {fields[i + 3]: f"{fields[i]}:{fields[i + 1]}:{fields[i + 2]}"
            for i in range(0, len(fields) - 3, 4)}


@pytest.mark.parametrize("case", list(CASES))
def test_generated_trees_agree_with_git(tmp_path: Path, case: str) -> None:
    ignores, files = CASES[case]
    root = tmp_path / "repo"
    _make(root, ignores, files)
    assert _reentr_watched(root, Sources(builtin=False)) == _git_watched(root)
    rules = Rules.load(root, Sources(builtin=False))
    expected = _git_explain(root, files)
    assert len(expected) == len(files)
    for path in files:
        verdict = rules.explain(path, False)
        ours = verdict.rule.describe() if verdict.rule else "::"
        assert ours == expected[path], path


def test_info_exclude_and_the_global_excludes_file(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    _make(root, {".gitignore": "!from-global.txt\n"},
          ["from-exclude.txt", "from-global.txt", "global-only.txt", "kept.txt"])
    (root / ".git" / "info").mkdir(exist_ok=True)
    (root / ".git" / "info" / "exclude").write_text("from-exclude.txt\n")
    global_file = tmp_path / "global-ignore"
    global_file.write_text("from-global.txt\nglobal-only.txt\n")
    _git(root, "config", "core.excludesFile", str(global_file))
    watched = _reentr_watched(root, Sources(builtin=False))
    assert watched == _git_watched(root) == {".gitignore", "from-global.txt", "kept.txt"}
    rules = Rules.load(root, Sources(builtin=False))
    assert rules.explain("global-only.txt", False).rule.describe() == (  # type: ignore[union-attr]
        f"{global_file}:2:global-only.txt")
    # Each source has its off switch.
    assert "from-exclude.txt" in _reentr_watched(root, Sources(builtin=False, git_exclude=False))
    assert "global-only.txt" in _reentr_watched(root, Sources(builtin=False, global_file=False))
    assert "kept.txt" not in _reentr_watched(root, Sources(builtin=False, extra=("kept.*",)))


def test_dot_ignore_files_and_the_built_ins(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    _make(root, {".ignore": "generated/\n", ".gitignore": "!x.swp\n"},
          ["generated/a.py", "src/.main.py.swp", "x.swp", "src/__pycache__/m.pyc", "a~",
           "4913", "src/f.py___jb_tmp___", "src/main.py"])
    watched = _reentr_watched(root, Sources())
    assert watched == {".gitignore", ".ignore", "x.swp", "src/main.py"}
    everything = _reentr_watched(root, Sources(builtin=False, dot_ignore=False))
    assert everything == _git_watched(root)
    assert "generated/a.py" in everything


def test_a_subdirectory_uses_the_rules_of_the_whole_repository(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    _make(root, {".gitignore": "/src/gen/\n*.log\n"}, ["src/a.py", "src/gen/b.py", "src/c.log"])
    rules = Rules.load(root / "src", Sources(builtin=False))
    assert rules.root == root
    watched = {str(rules.relative(p)) for p, d in walk(Filter(rules), root / "src") if not d}
    assert watched == {"src/a.py"}


def _real_trees() -> list[str]:
    return sorted(p.stem for p in REAL_TREES.glob("*.json")) if REAL_TREES.is_dir() else []


@pytest.mark.timeout(180)
@pytest.mark.skipif(not _real_trees(), reason=f"no real trees at {REAL_TREES} (CI has them)")
@pytest.mark.parametrize("name", _real_trees())
def test_real_project_trees_agree_with_git(tmp_path: Path, name: str) -> None:
    data = json.loads((REAL_TREES / f"{name}.json").read_text())
    root = tmp_path / "repo"
    # Every tracked path, plus files in a sample of directories that rules often ignore.
    directories = sorted({str(Path(p).parent) for p in data["paths"]})[::7]
    extra = [f"{d}/{n}".removeprefix("./") for d in directories for n in (
        "node_modules/x.js", "x.log", "build/out.o", ".DS_Store", "dist/a.js", ".env", "a.pyc")]
    _make(root, data["gitignores"], [*data["paths"], *extra])
    git = _git_watched(root)
    assert len(git) > 100
    assert _reentr_watched(root, Sources(builtin=False)) == git
