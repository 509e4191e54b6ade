"""Ignore-aware tree tracking for `reentr watch`: which directories to watch, kept up to date as
directories come and go."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

from reentr.config import WatchTree
from reentr.filters import Filter, roots, walk
from reentr.ignore import Rules
from reentr.watch.poller import ADDED, DELETED


class Tree:
    """`reentr watch`'s view of its trees: the directories to watch (none that is ignored) and
    which changes matter; it follows new directories and edits of ignore files."""

    def __init__(self, spec: WatchTree):
        self.spec = spec
        self.filters: list[tuple[str, Filter]] = []
        self.dirs: set[str] = set()
        self.fresh: set[str] = set()
        """New directories whose watch is not in place yet: `rescan` looks into them again."""
        # An always-file outside the paths is watched through its directory, as a named one.
        self.walked = roots((*spec.paths, *(f for f in spec.always
                                           if not any(f.is_relative_to(p) for p in spec.paths))))
        """The directories walked, each with the file names it is narrowed to."""
        self.roots = {str(path): str(path.parent) for path, _ in self.walked}
        self.unreadable: list[Path] = []
        """Directories that may not be read, not said yet (`said_unreadable`)."""
        self._told: set[Path] = set()
        self.born: dict[str, tuple[int, int]] = {}
        """The directories that appeared while reentr watched, each with when it appeared
        (from its modification time) and when reentr first saw it (monotonic ns): what a
        build made (`outputs.py`)."""
        self._load()

    def said_unreadable(self) -> list[Path]:
        """The directories found unreadable since the last call, each once."""
        new = [d for d in dict.fromkeys(self.unreadable) if d not in self._told]
        self._told.update(new)
        self.unreadable = []
        return new

    def watch_set(self) -> list[str]:
        """Every directory that needs a kernel watch: the tree's, and the parent of a root
        that was deleted, to see it when it comes back (`rm -rf out && regenerate`, a
        branch switch)."""
        gone = {parent for root, parent in self.roots.items() if root not in self.dirs}
        return sorted(self.dirs | gone)

    def _load(self) -> None:
        self.filters = []
        self.dirs = set()
        for path, only in self.walked:
            rules = Rules.load(path, self.spec.sources)
            always = frozenset(rel for f in self.spec.always if f.is_relative_to(path)
                               and (rel := rules.relative(f)) is not None)
            filter_ = Filter(rules, self.spec.exts, self.spec.globs, only, always)
            self.filters.append((str(path), filter_))
            self.dirs.update(d for d, _ in self._walk(filter_, path, dirs_only=True))
        # The deepest path first, so a path inside another one uses its own filter.
        self.filters.sort(key=lambda item: -len(item[0]))

    def _filter_for(self, path: str) -> Filter | None:
        for root, filter_ in self.filters:
            if path == root or path.startswith(root + os.sep):
                return filter_
        return None

    def take(self, batch: set[tuple[int, str]]) -> tuple[list[str], bool]:
        """The changed paths that matter, and whether the watches must change: a directory
        went, or came (a new one, or a new one by the name of one that went: the old watch
        follows the deleted directory)."""
        changed: list[str] = []
        before = set(self.dirs)
        reload = False
        # A path's deletion before its creation, whatever their order: the directory exists
        # or not, and the checks below look.
        for change, path in sorted(batch, key=lambda item: (item[1], item[0] != DELETED)):
            filter_ = self._filter_for(path)
            if filter_ is None:
                continue
            rules = filter_.rules
            rel = rules.relative(path)
            if rel is None:
                continue
            if rules.is_rule_file(path):
                reload = True
            if change == DELETED:
                if self._deleted(filter_, path, rel):
                    changed.append(path)
            elif os.path.isdir(path) and not os.path.islink(path):
                if change == ADDED and path not in self.dirs and filter_.watches_dir(rel):
                    self._add(filter_, path)
            elif filter_.wants(rel):
                changed.append(path)
        if self._remade() or reload:
            self._load()
            self.fresh &= self.dirs
        self.born = {d: ns for d, ns in self.born.items() if d in self.dirs}
        return list(dict.fromkeys(changed)), self.dirs != before or bool(self.fresh)

    def _deleted(self, filter_: Filter, path: str, rel: str) -> bool:
        """A path is gone: whether that is a change. A watched directory's is, but for a
        root's (its files went with it: moved out of the tree, a directory says nothing of
        them; deleted, they each say so too); an ignored directory's is not (`rm -rf build`),
        though the rule for directories alone (`build/`) would not match it as a file."""
        if path in self.dirs:
            self.dirs = {d for d in self.dirs if d != path and not d.startswith(path + os.sep)}
            if os.path.isdir(path) and not os.path.islink(path):
                # Made again already (a poller can see only that its inode changed, or its
                # deletion without its return): a new directory, all of it new.
                self._add(filter_, path)
            return path not in self.roots
        return not filter_.rules.met_as_directory(rel) and filter_.wants(rel)

    def _add(self, filter_: Filter, path: str) -> None:
        """A new directory: watch it and those inside it; once the watch is in place,
        `rescan` counts the files already there as changed."""
        self.fresh.add(path)
        self.born.setdefault(path, (_birth(path), time.monotonic_ns()))
        self.dirs.update(d for d, _ in self._walk(filter_, Path(path), dirs_only=True))

    def _walk(self, filter_: Filter, start: Path, *, dirs_only: bool = False
              ) -> Iterator[tuple[str, bool]]:
        return walk(filter_, start, dirs_only=dirs_only, unreadable=self.unreadable,
                    root=str(start) in self.roots)

    def _remade(self) -> bool:
        """Whether a deleted root is back: a new directory by its name, all of it new."""
        remade = {root for root in self.roots if root not in self.dirs and os.path.isdir(root)}
        self.fresh |= remade
        return bool(remade)

    def rescan(self) -> tuple[list[str], bool]:
        """Once the new directories are watched: the files in them (written before the watch
        was in place, they raised no event), and whether more directories appeared meanwhile,
        which need a watch of their own."""
        added = self._remade()  # it came back before its parent's watch was in place
        if added:
            self._load()
        fresh, self.fresh = self.fresh, set()
        files: list[str] = []
        for root in sorted(fresh):
            filter_ = self._filter_for(root)
            if filter_ is None:
                continue
            for found, is_dir in self._walk(filter_, Path(root)):
                if not is_dir:
                    files.append(found)
                elif found not in self.dirs:
                    self.dirs.add(found)
                    self.fresh.add(found)
                    added = True
        return files, added


def _birth(path: str) -> int:
    """When a new directory appeared, on the monotonic clock: its modification time (its last
    entry added, a moment after it was made) moved there, never later than now."""
    now = time.monotonic_ns()
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError:
        return now
    return min(now, now - (time.time_ns() - mtime))


class Forest:
    """Several named trees under one watch (`reentr up`: a tree per service): the union of
    their directories is watched, and each batch is sorted into the changes each tree wants.
    The name of the tree of `reentr watch`, alone in its forest, is None."""

    def __init__(self, trees: list[tuple[str | None, Tree]]):
        self.trees = trees

    @property
    def dirs(self) -> set[str]:
        return set().union(*(tree.dirs for _, tree in self.trees))

    def watch_set(self) -> list[str]:
        return sorted(set().union(*(tree.watch_set() for _, tree in self.trees)))

    @property
    def born(self) -> dict[str, tuple[int, int]]:
        return {d: ns for _, tree in self.trees for d, ns in tree.born.items()}

    @property
    def roots(self) -> list[str]:
        return [str(root) for _, tree in self.trees for root, _ in tree.walked]

    def said_unreadable(self) -> list[Path]:
        return list(dict.fromkeys(d for _, tree in self.trees for d in tree.said_unreadable()))

    def take(self, batch: set[tuple[int, str]]) -> tuple[dict[str | None, list[str]], bool]:
        """Each tree's changed paths (in the forest's order), and whether the watches must
        change (see `Tree.take`)."""
        found: dict[str | None, list[str]] = {}
        rewatch = False
        for name, tree in self.trees:
            found[name], again = tree.take(batch)
            rewatch = rewatch or again
        return found, rewatch

    def rescan(self) -> tuple[dict[str | None, list[str]], bool]:
        """`Tree.rescan` of each tree."""
        found: dict[str | None, list[str]] = {}
        added = False
        for name, tree in self.trees:
            found[name], again = tree.rescan()
            added = added or again
        return found, added
