"""What each changed file's content and the tree's history say of who wrote it
(`events.Traits`), looked at as a batch is taken, for `outputs.py` to judge."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from reentr.events import Traits
from reentr.filters import cache_tagged
from reentr.records import evolve

SNIFF = 8000
"""How much of a file is read: git's test for a binary file looks at its first 8,000 bytes
(xdiff's buffer_is_binary)."""
MOST = 256
"""The most files looked into per batch: a checkout of 30,000 files is not read through; the
rest are judged by their directories alone."""
_MARKS = (b"@generated", b"DO NOT EDIT")
"""What a generated file says near its top: Cargo.lock and Facebook's tools `@generated`, Go's
`// Code generated ... DO NOT EDIT.` (go help generate), protoc and many others the second."""
OUTPUT_NAMES = frozenset(("dist", "build", "out", "_build", ".next", ".nuxt", ".svelte-kit",
                          ".output", ".parcel-cache", "coverage"))
"""Names build tools give the directories they write (tsc's and bundlers' dist/ and out/,
CMake's and many others' build/, mix's _build/, Next's .next/...): written while a build runs,
what lies there is its output, even from a session before this one."""
_TOP = 1024
"""Where the marks are looked for: the first lines."""


def traits(
    paths: Iterable[str], created: set[str], born: Mapping[str, tuple[int, int]],
    roots: Iterable[str],
    contents: Mapping[str, bytes] | None = None,
) -> tuple[Traits, ...]:
    """The traits of each path: `created` are those the batch saw made, `born` the directories
    that appeared while reentr watched (with when), `roots` the watched trees (a cache tag is
    looked for up to them; none in entr mode); `contents`, what was already read of some
    files (`contents.py`), which are not opened again."""
    contents = contents or {}
    tops = tuple(roots)
    tagged: dict[str, str | None] = {}
    by_dir: dict[str, Traits] = {}
    """What a file's directory says, worked out once per directory (a checkout of 30,000
    files in one directory costs one look)."""
    found = []
    for count, path in enumerate(paths):
        directory = os.path.dirname(path)
        here = by_dir.get(directory)
        if here is None:
            here = by_dir[directory] = Traits(
                born=_born(path, born), named=_named(path, tops),
                cache=_cache(directory, tops, tagged) if tops else None)
        trait = here if path not in created else Traits(
            created=True, born=here.born, named=here.named, cache=here.cache)
        if path in contents:
            trait = _judged(trait, contents[path][:SNIFF])
        elif count < MOST:
            trait = _read(path, trait)
        found.append(trait)
    return tuple(found)


def _read(path: str, trait: Traits) -> Traits:
    try:
        with open(path, "rb") as file:
            head = file.read(SNIFF)
    except FileNotFoundError:
        return evolve(trait, gone=True)
    except OSError:
        return trait  # a directory, a FIFO, a file that may not be read: nothing known
    return _judged(trait, head)


def _judged(trait: Traits, head: bytes) -> Traits:
    """What the first `SNIFF` bytes of a file say."""
    return evolve(trait, read=True, empty=not head, binary=b"\0" in head,
                  generated=any(mark in head[:_TOP] for mark in _MARKS))


def _born(
    path: str, born: Mapping[str, tuple[int, int]]
) -> tuple[tuple[str, int, int], ...]:
    """The directories above `path` that appeared while reentr watched, the outermost first."""
    if not born:
        return ()
    found = []
    directory = os.path.dirname(path)
    while True:
        if directory in born:
            found.append((directory, *born[directory]))
        parent = os.path.dirname(directory)
        if parent == directory:
            return tuple(reversed(found))
        directory = parent


def _named(path: str, roots: tuple[str, ...]) -> str | None:
    """The outermost directory above `path`, below the root it lies in, whose name is one of
    OUTPUT_NAMES."""
    for root in roots:
        if path.startswith(root + os.sep):
            parts = path[len(root) + 1:].split(os.sep)[:-1]
            for depth, part in enumerate(parts):
                if part in OUTPUT_NAMES:
                    return os.path.join(root, *parts[:depth + 1])
            return None
    return None


def _cache(directory: str, roots: tuple[str, ...], tagged: dict[str, str | None]) -> str | None:
    """The tagged cache directory that `directory` is, or lies in, below a root."""
    if directory in tagged:
        return tagged[directory]
    if directory in roots or not any(directory.startswith(r + os.sep) for r in roots):
        tagged[directory] = None
        return None
    found = directory if cache_tagged(directory) else _cache(
        os.path.dirname(directory), roots, tagged)
    tagged[directory] = found
    return found
