"""`reentr explain` and `reentr watch --list`: what reentr watch would react to, and for each
path the rule that decided, worded as `git check-ignore -v` words it."""

from __future__ import annotations

import os
from pathlib import Path

from reentr.config import Sources, WatchTree
from reentr.filters import Filter, roots, tagged_parent, walk
from reentr.ignore import Rules, root_of


def listed(tree: WatchTree) -> list[str]:
    """Every file under the trees that reentr would react to, relative to the working
    directory when inside it, in git's order (byte order)."""
    found: set[str] = set()
    for root, only in roots(tree.paths):
        filter_ = Filter(Rules.load(root, tree.sources), tree.exts, tree.globs, only)
        found.update(path for path, is_dir in walk(filter_, root) if not is_dir)
    here = os.getcwd()
    relative = [os.path.relpath(p) if p.startswith(here + os.sep) else p for p in found]
    return sorted(relative, key=os.fsencode)


class Explainer:
    """Says what decides for each path, as `reentr watch` run from `here` would see it; the
    rules of each repository are loaded once, however many paths lie in it."""

    def __init__(self, sources: Sources, exts: tuple[str, ...], globs: tuple[str, ...],
                 here: Path):
        self._sources = sources
        self._exts = exts
        self._globs = globs
        self._here = here
        self._filters: dict[Path, Filter] = {}

    def explain(self, path: str) -> tuple[str, bool]:
        """What decides for `path`, and whether it exists."""
        target = Path(path).resolve()
        missing = not os.path.lexists(target)
        is_dir = target.is_dir()
        said = self._verdict(target, is_dir)
        if missing:
            said = f"no such file or directory; if it were a file: {said}"
        return said, not missing

    def _filter(self, target: Path, is_dir: bool) -> Filter:
        start = target if is_dir else target.parent
        if start.is_relative_to(self._here):
            # As `reentr watch` from here sees it: outside a repository its tree, and so its
            # rules, start here (node_modules/ applies to node_modules/x/index.js).
            start = self._here
        root = root_of(start)
        if root not in self._filters:
            self._filters[root] = Filter(Rules.load(start, self._sources), self._exts,
                                         self._globs)
        return self._filters[root]

    def _verdict(self, target: Path, is_dir: bool) -> str:
        filter_ = self._filter(target, is_dir)
        rules = filter_.rules
        rel = rules.relative(target)
        verdict = rules.explain(rel or "", is_dir) if rel else None
        if verdict is None:
            return "watched (the root of the tree)"
        if verdict.ignored and verdict.rule is not None:
            said = f"ignored by {verdict.rule.describe()}"
            if verdict.directory and verdict.directory != f"{rel}/":
                said += f" (its directory {verdict.directory} is ignored)"
            return said
        if cache := tagged_parent(rules, str(rel)):
            return f"ignored: its directory {cache} is tagged as a cache (CACHEDIR.TAG)"
        if not is_dir and not filter_.wants(str(rel)):
            return "not watched: it matches no --ext or --glob"
        if verdict.rule is not None:
            return f"watched: re-included by {verdict.rule.describe()}"
        return "watched: no rule matches"
