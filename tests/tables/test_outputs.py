"""What the runs made is never a change: the judgement as tables (`outputs.py`), then the traits
the watcher reads from real files (`watch/traits.py`), then the cache tag in the walk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reentr import loops
from reentr.config import Sources
from reentr.events import Traits
from reentr.filters import SIGNATURE, Filter, walk
from reentr.ignore import Rules
from reentr.loops import Guard, Span
from reentr.outputs import START_NS, Outputs, Window, sift, window
from reentr.watch.traits import MOST, traits

MS = 1_000_000
BUILD = loops.started(Guard(), 1, Span.LIFE, 100 * MS)
"""A build that started at 100 ms and still runs."""
BUILT = loops.ended(BUILD, 1, 200 * MS, by_itself=True)
"""The same build, ended at 200 ms."""
SERVING = loops.started(Guard(), 2, Span.SELF_EXIT, 100 * MS)
"""A program without a readiness probe, started at 100 ms, still running."""

TEXT = Traits(read=True)
EMPTY = Traits(read=True, empty=True)
BINARY = Traits(read=True, binary=True)
GENERATED = Traits(read=True, generated=True)


@pytest.mark.parametrize(("guard", "written_ms", "expected"), [
    (BUILD, 150, Window.BUILD),
    (BUILD, 50, None),
    (BUILT, 199, Window.BUILD),
    (BUILT, 201, None),
    # Without a probe, a program is starting for its first START_NS only.
    (SERVING, 150, Window.START),
    (SERVING, 100 + START_NS // MS + 1, None),
    (loops.started(Guard(), 2, Span.STARTUP, 100 * MS), 5000, Window.START),
    (loops.ready(loops.started(Guard(), 2, Span.STARTUP, 100 * MS), 2, 120 * MS), 121, None),
])
def test_which_run_could_have_written(guard: Guard, written_ms: int,
                                      expected: Window | None) -> None:
    assert window(guard, written_ms * MS) is expected


@pytest.mark.parametrize(("guard", "trait", "counts", "found"), [
    # What an editor writes is a change, whenever it is written: a save during a build too.
    (BUILD, TEXT, True, ()),
    (BUILD, Traits(read=True, created=True), True, ()),
    (Guard(), BINARY, True, ()),
    (Guard(), Traits(read=True, created=True, empty=True), True, ()),
    (Guard(), Traits(read=True, created=True), True, ()),
    # What a build writes: objects, executables, Cargo.lock.
    (BUILD, BINARY, False, ("/p/x",)),
    (BUILD, GENERATED, False, ("/p/x",)),
    # Created empty: no change, and not said (what is next written decides).
    (BUILD, Traits(read=True, created=True, empty=True), False, ()),
    # An empty file the build did not create: maybe the user emptied it.
    (BUILD, EMPTY, True, ()),
    # A temporary, made and gone again (sed -i's): no change, whoever made it.
    (BUILD, Traits(created=True, gone=True), False, ()),
    (Guard(), Traits(created=True, gone=True), False, ()),
    # A directory named as build tools name their outputs, while a build runs: tsc's dist/
    # from yesterday. Not while a program starts, nor while nothing runs.
    (BUILD, Traits(read=True, named="/p/dist"), False, ("/p/dist/",)),
    (SERVING, Traits(read=True, named="/p/dist"), True, ()),
    (Guard(), Traits(read=True, named="/p/dist"), True, ()),
    # Only gone: a deletion the user made.
    (BUILD, Traits(gone=True), True, ()),
    # In a cache directory, or in a directory the build made.
    (BUILD, Traits(read=True, cache="/p/target"), False, ("/p/target/",)),
    (BUILD, Traits(read=True, born=(("/p/dist", 150 * MS, 152 * MS),)), False, ("/p/dist/",)),
    (BUILD, Traits(read=True, born=(("/p/new", 50 * MS, 52 * MS),
                                    ("/p/new/out", 150 * MS, 152 * MS))), False,
     ("/p/new/out/",)),
    # Made as the build began: the coarse clock may stamp it a moment before; reentr saw it
    # after. And one made just before the build ended, seen just after.
    (BUILD, Traits(read=True, born=(("/p/bin", 97 * MS, 102 * MS),)), False, ("/p/bin/",)),
    (BUILT, Traits(read=True, born=(("/p/bin", 199 * MS, 203 * MS),)), False, ("/p/bin/",)),
    # A directory made before the build: the user's.
    (BUILD, Traits(read=True, born=(("/p/pkg", 50 * MS, 52 * MS),)), True, ()),
    # Seen before the build started, however close: a generator still adding entries to it
    # moved its modification time to just before the start (its files were taken for the
    # build's, for the rest of the session).
    (BUILD, Traits(read=True, born=(("/p/assets", 99 * MS, 99 * MS),)), True, ()),
    # A program starting: its content must say so; a directory it makes does not.
    (SERVING, Traits(read=True, created=True, empty=True), False, ()),
    (SERVING, BINARY, False, ("/p/x",)),
    (SERVING, Traits(read=True, born=(("/p/dist", 150 * MS, 152 * MS),)), True, ()),
    (SERVING, TEXT, True, ()),
])
def test_a_write_is_an_output_only_on_evidence(
    guard: Guard, trait: Traits, counts: bool, found: tuple[str, ...]
) -> None:
    _, kept, new = sift(Outputs(), guard, ("/p/x",), (150 * MS,), (trait,))
    assert (kept == (0,)) is counts
    assert new == found


def test_an_output_stays_one_until_text_is_written_into_it_while_nothing_runs() -> None:
    made, kept, _ = sift(Outputs(), BUILD, ("/p/app", "/p/dist/a.js"), (150 * MS, 150 * MS),
                         (BINARY, Traits(read=True, born=(("/p/dist", 120 * MS, 122 * MS),))))
    assert kept == ()
    assert made == Outputs(frozenset({"/p/app"}), frozenset({"/p/dist"}))
    # Written again outside any run: binary, it is still an output; under dist/ too.
    made, kept, new = sift(made, BUILT, ("/p/app", "/p/dist/b.js"), (500 * MS, 500 * MS),
                           (BINARY, TEXT))
    assert kept == () and new == ()
    # Text with content, even while a build runs: it was a source after all.
    made, kept, _ = sift(made, BUILD, ("/p/app",), (150 * MS,), (TEXT,))
    assert kept == (0,)
    assert made.files == frozenset()


def test_a_file_made_empty_is_judged_by_what_is_written_into_it_next() -> None:
    created = Traits(read=True, created=True, empty=True)
    # Django's db.sqlite3: empty at its first start, binary at its first write.
    made, kept, new = sift(Outputs(), SERVING, ("/p/db.sqlite3",), (150 * MS,), (created,))
    assert kept == () and new == () and made.pending == frozenset({"/p/db.sqlite3"})
    made, kept, new = sift(made, Guard(), ("/p/db.sqlite3",), (9000 * MS,), (BINARY,))
    assert kept == () and new == ("/p/db.sqlite3",) and made.pending == frozenset()
    # `touch helper.py` just after a restart, then the user's text: a change.
    made, _, _ = sift(Outputs(), SERVING, ("/p/helper.py",), (150 * MS,), (created,))
    made, kept, new = sift(made, SERVING, ("/p/helper.py",), (200 * MS,), (TEXT,))
    assert kept == (0,) and new == () and made == Outputs()


def test_without_traits_only_what_is_known_of_directories_decides() -> None:
    made = Outputs(dirs=frozenset({"/p/dist"}))
    _, kept, _ = sift(made, BUILD, ("/p/dist/a.js", "/p/src/a.ts"), (150 * MS, 150 * MS), ())
    assert kept == (1,)


# The traits of real files ----------------------------------------------------------------------


def test_the_traits_of_real_files(tmp_path: Path) -> None:
    (tmp_path / "main.c").write_text("int main(void) { return 0; }\n")
    (tmp_path / "main.o").write_bytes(b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 64)
    (tmp_path / "Cargo.lock").write_text("# This file is automatically @generated by Cargo.\n")
    (tmp_path / "gen.go").write_text("// Code generated by stringer. DO NOT EDIT.\n")
    (tmp_path / "db.sqlite3").write_bytes(b"")
    target = tmp_path / "target" / "debug"
    target.mkdir(parents=True)
    (tmp_path / "target" / "CACHEDIR.TAG").write_bytes(SIGNATURE + b"\n# cargo\n")
    (target / "app").write_bytes(b"\x00")
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "a.js").write_text("console.log(1);\n")
    names = ["main.c", "main.o", "Cargo.lock", "gen.go", "db.sqlite3", "target/debug/app",
             "dist/a.js", "gone.tmp"]
    paths = [str(tmp_path / n) for n in names]
    born = {str(tmp_path / "dist"): (7, 9)}
    found = dict(zip(names, traits(paths, {str(tmp_path / "db.sqlite3"),
                                           str(tmp_path / "gone.tmp")}, born,
                                   [str(tmp_path)]), strict=True))
    assert found["main.c"] == Traits(read=True)
    assert found["main.c"].text()
    assert found["main.o"].binary and not found["main.o"].text()
    assert found["Cargo.lock"].generated and found["gen.go"].generated
    assert found["db.sqlite3"] == Traits(read=True, created=True, empty=True)
    assert found["target/debug/app"].cache == str(tmp_path / "target")
    assert found["dist/a.js"].born == ((str(tmp_path / "dist"), 7, 9),)
    assert found["dist/a.js"].named == str(tmp_path / "dist")
    assert found["main.c"].named is None
    assert found["gone.tmp"] == Traits(created=True, gone=True)


def test_a_large_batch_is_not_read_through(tmp_path: Path) -> None:
    paths = []
    for i in range(MOST + 10):
        path = tmp_path / f"f{i}.o"
        path.write_bytes(b"\x00")
        paths.append(str(path))
    found = traits(paths, set(), {}, [str(tmp_path)])
    assert all(t.binary for t in found[:MOST])
    assert not any(t.read for t in found[MOST:])


def test_a_cache_directory_is_not_walked_unless_the_built_ins_are_off(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.rs").write_text("fn main() {}\n")
    (tmp_path / "target" / "debug").mkdir(parents=True)
    (tmp_path / "target" / "debug" / "app").write_bytes(b"\x00")
    (tmp_path / "target" / "CACHEDIR.TAG").write_bytes(SIGNATURE + b"\n")
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "CACHEDIR.TAG").write_text("not the signature\n")
    (tmp_path / "fake" / "x.txt").write_text("x\n")

    def files(sources: Sources) -> list[str]:
        walked = walk(Filter(Rules.load(tmp_path, sources)), tmp_path)
        return sorted(os.path.relpath(p, tmp_path) for p, is_dir in walked if not is_dir)

    assert files(Sources()) == ["fake/CACHEDIR.TAG", "fake/x.txt", "src/main.rs"]
    assert "target/debug/app" in files(Sources(builtin=False))


def test_the_walk_for_directories_alone_finds_what_the_whole_walk_finds(tmp_path: Path) -> None:
    # Directories without a subdirectory are not listed when their link count says so
    # (`kernel.counts_subdirectories`): leaves, a leaf that is a cache, an ignored one, a
    # leaf reached through a symbolic link (not followed), one emptied of its last subdir.
    for rel in ("src/a/b/c", "src/a/d", "src/e", "docs", "target/debug", "cache", "gone/x",
                "build/out"):
        (tmp_path / rel).mkdir(parents=True)
    (tmp_path / "cache" / "CACHEDIR.TAG").write_bytes(SIGNATURE + b"\n")
    (tmp_path / "target" / "CACHEDIR.TAG").write_bytes(SIGNATURE + b"\n")
    (tmp_path / ".gitignore").write_text("build/\n")
    (tmp_path / "src" / "link").symlink_to(tmp_path / "docs")
    (tmp_path / "gone" / "x").rmdir()

    def dirs(*, dirs_only: bool) -> list[str]:
        walked = walk(Filter(Rules.load(tmp_path, Sources())), tmp_path, dirs_only=dirs_only)
        return sorted(os.path.relpath(p, tmp_path) for p, is_dir in walked if is_dir)

    assert dirs(dirs_only=True) == dirs(dirs_only=False) == [
        ".", "docs", "gone", "src", "src/a", "src/a/b", "src/a/b/c", "src/a/d", "src/e"]
