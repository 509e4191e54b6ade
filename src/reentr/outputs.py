"""Which changed paths are the outputs of reentr's own runs (a build, or a program starting up)
and so never a change: cargo's `target/` and `Cargo.lock`, make's `*.o` beside the sources,
tsc's `dist/`, the `db.sqlite3` Django makes at its first start. Pure: the watcher gives each
changed path its `Traits` (what its content and the tree's history say), the loop guard's spans
say when the runs could write.

A build's writes reach reentr while the build runs; taken for edits, they stop the build
(`--on-busy restart`) and start another, which writes them again. No file event names its
writer, so a write is taken for an output only on evidence that no editor leaves:
- it lies in a directory tagged as a cache (CACHEDIR.TAG, bford.info/cachedir: cargo's target/,
  and what tar --exclude-caches leaves out), or, written by a build, in a directory that the
  build made, or whose name build tools give their outputs (dist/, build/, out/: tsc's dist/
  left from yesterday's session);
- it is binary (a NUL byte in its first 8,000 bytes, git's own test: objects, executables,
  databases) or says it is generated (`@generated`, `DO NOT EDIT`: Cargo.lock, go generate).
A file the run created empty (a database before its first write) is no change, and what is
written into it next decides; a file created and gone again within a batch (a temporary, as
`sed -i` makes) is no change whoever made it. A text file that an editor saves is none of
these, whenever it is saved: a save made while a build runs is a change, and leads to a build of
its final content. An output file stays one for the rest of the run, unless text with content
is written into it: then it was a source after all. The loop guard (`loops.py`) remains for
what this does not catch.
"""

from __future__ import annotations

import enum

from reentr.events import Traits
from reentr.loops import SLACK_NS, Guard, Span
from reentr.records import record

START_NS = 5_000_000_000
"""How long a program without a readiness probe counts as starting: its first 5 s (Django's
`runserver` makes `db.sqlite3` before it serves)."""


class Window(enum.Enum):
    """Which of reentr's runs could have made a write."""

    BUILD = "build"
    """A build, or a utility that runs to its end: it may make directories of outputs."""
    START = "start"
    """A program starting: from its start until it is ready (its first `START_NS` without a
    readiness probe). Only a write that its content marks as an output counts: the user may
    make a directory then."""


@record
class Outputs:
    files: frozenset[str] = frozenset()
    dirs: frozenset[str] = frozenset()
    """Directories whose every path is an output (absolute, no trailing separator)."""
    pending: frozenset[str] = frozenset()
    """Files a run created empty (SQLite's database before its first write): not changes;
    what is written into them next decides (binary or generated: an output; text: a
    source)."""


def window(guard: Guard, written_ns: int) -> Window | None:
    """The kind of run that was under way when a write happened at `written_ns`, if any: a
    build first, since it may do more."""
    found = None
    for run in guard.runs:
        if written_ns < run.start_ns - SLACK_NS:
            continue
        ended = run.end_ns is not None and written_ns > run.end_ns
        if run.kind is Span.LIFE and not ended:
            return Window.BUILD
        if run.kind is Span.STARTUP and not ended:
            found = Window.START
        if run.kind is Span.SELF_EXIT and written_ns <= run.start_ns + START_NS:
            found = Window.START
    return found


class Verdict(enum.Enum):
    """What a write made while a run could make it shows itself to be."""

    CHANGE = "change"
    """Maybe the user's: it counts."""
    FILE = "file"
    """An output file."""
    DIRECTORY = "directory"
    """In a directory of outputs: the directory is one."""
    PENDING = "pending"
    """Created empty: what is written into it next decides."""


def sift(
    outputs: Outputs, guard: Guard, paths: tuple[str, ...], written_ns: tuple[int, ...],
    traits: tuple[Traits, ...],
) -> tuple[Outputs, tuple[int, ...], tuple[str, ...]]:
    """The outputs after this batch, the indexes of the paths that are still changes, and the
    outputs found now (files, and directories with a trailing "/"), to be said once. A path
    without traits (the watcher looks at a bounded number per batch) is judged by its
    directories alone."""
    files, dirs, pending = set(outputs.files), set(outputs.dirs), set(outputs.pending)
    kept: list[int] = []
    found: list[str] = []
    traits = traits or (Traits(),) * len(paths)
    for index, (path, written, trait) in enumerate(zip(paths, written_ns, traits, strict=True)):
        if _within(path, dirs) or (trait.created and trait.gone):
            continue  # an output's, or a temporary, gone again (sed -i's): nothing to build
        if path in files or path in pending:
            if trait.text():  # text with content, whenever: a source after all
                files.discard(path)
                pending.discard(path)
                kept.append(index)
            elif path in pending and (trait.binary or trait.generated):
                pending.discard(path)
                files.add(path)
                found.append(path)
            continue
        when = window(guard, written)
        verdict, directory = (Verdict.CHANGE, "") if when is None else judge(trait, when, guard)
        if verdict is Verdict.CHANGE:
            kept.append(index)
        elif verdict is Verdict.DIRECTORY:
            dirs.add(directory)
            found.append(directory + "/")
        elif verdict is Verdict.FILE:
            files.add(path)
            found.append(path)
        elif verdict is Verdict.PENDING:
            pending.add(path)
    made = Outputs(frozenset(files), frozenset(dirs), frozenset(pending))
    return made, tuple(kept), tuple(found)


def judge(trait: Traits, when: Window, guard: Guard) -> tuple[Verdict, str]:
    """What a write made during a run of kind `when` is, with the directory of outputs it
    lies in for `Verdict.DIRECTORY`."""
    if trait.cache is not None:
        return Verdict.DIRECTORY, trait.cache
    if when is Window.BUILD:
        for directory, born_ns, seen_ns in trait.born:  # the outermost that a build made
            if _made_by_build(guard, born_ns, seen_ns):
                return Verdict.DIRECTORY, directory
        if trait.named is not None:
            return Verdict.DIRECTORY, trait.named
    if trait.binary or trait.generated:
        return Verdict.FILE, ""
    if trait.created and trait.empty:
        return Verdict.PENDING, ""
    return Verdict.CHANGE, ""


def _made_by_build(guard: Guard, born_ns: int, seen_ns: int) -> bool:
    """Whether a build could have made a directory that appeared at `born_ns` (its
    modification time, which a generator still adding entries keeps moving) and that reentr
    first saw at `seen_ns`: a build that had started by then, and had not ended before the
    directory appeared. One seen before any build started was there when the change that
    starts a build was taken, however close the two (a generator's `assets/`, a checkout's
    new directory): it is not the build's, and its files stay changes."""
    return any(run.kind is Span.LIFE and run.start_ns <= seen_ns
               and (run.end_ns is None or born_ns <= run.end_ns) for run in guard.runs)


def _within(path: str, dirs: set[str]) -> bool:
    return any(path.startswith(directory + "/") for directory in dirs)
