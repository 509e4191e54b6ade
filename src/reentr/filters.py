"""The one predicate that decides whether a path matters to `reentr watch`: ignore rules first,
then the include filters (`--ext`, `--glob`); and the walk of a watched tree that never enters
an ignored directory."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from reentr.config import Config
from reentr.ignore import RuleFile, Rules, parse
from reentr.kernel import counts_subdirectories

TAG = "CACHEDIR.TAG"
SIGNATURE = b"Signature: 8a477f597d28d172789f06886806bc55"
"""The first bytes of a cache directory's tag (bford.info/cachedir): cargo's target/, and what
`tar --exclude-caches` and backup tools leave out, as the built-in ignores do."""


@dataclass
class Filter:
    rules: Rules
    exts: tuple[str, ...] = ()
    """`--ext py,toml`: only files with one of these extensions (no dot)."""
    globs: tuple[str, ...] = ()
    """`--glob PATTERN`: only files matching one of these (gitignore syntax, from the root)."""
    only: frozenset[str] | None = None
    """Files named to watch (`-w Makefile`): only these names in the root, and no directory
    under it; named, each is watched whatever the ignore rules and the other filters say."""
    always: frozenset[str] = frozenset()
    """Files (relative to the root) that matter whatever the rules and filters say
    (`WatchTree.always`)."""
    _globs: RuleFile | None = field(init=False, default=None)
    _suffixes: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        self._globs = parse("\n".join(self.globs), "--glob") if self.globs else None
        self._suffixes = tuple("." + ext for ext in self.exts)

    def watches_dir(self, rel: str) -> bool:
        if self.only is not None:
            return rel == ""
        return rel == "" or not self.rules.directory(rel).ignored

    def wants(self, rel: str) -> bool:
        """Whether a change to the file `rel` (relative to the root) matters."""
        if rel in self.always:
            return True
        if self.only is not None:
            return rel in self.only
        if self.rules.ignored(rel, False):
            return False
        if self._suffixes and not rel.rpartition("/")[2].endswith(self._suffixes):
            return False
        return self._globs is None or self._globs.decide(rel, False) is not None


def roots(paths: tuple[Path, ...]) -> list[tuple[Path, frozenset[str] | None]]:
    """The directories to walk for the watched `paths`, each with the file names it is
    narrowed to (None: the whole tree): files are watched through their directory, those of
    one directory together; a file inside a watched tree adds nothing (the tree's rules
    decide there)."""
    trees = [path for path in paths if not _is_file(path)]
    files: dict[Path, set[str]] = {}
    for path in paths:
        if _is_file(path) and not any(path.parent.is_relative_to(tree) for tree in trees):
            files.setdefault(path.parent, set()).add(path.name)
    return [*((tree, None) for tree in dict.fromkeys(trees)),
            *((parent, frozenset(names)) for parent, names in files.items())]


def _is_file(path: Path) -> bool:
    """A path named as a file: one that exists and is not a directory."""
    return path.exists() and not path.is_dir()


def cache_tagged(directory: str) -> bool:
    """Whether `directory` holds a cache directory tag."""
    path = os.path.join(directory, TAG)
    if not os.access(path, os.F_OK):  # most have none: asked without an exception
        return False
    try:
        with open(path, "rb") as tag:
            return tag.read(len(SIGNATURE)) == SIGNATURE
    except OSError:
        return False


def tagged_parent(rules: Rules, rel: str) -> str | None:
    """The directory above `rel` (relative to the root) that is tagged as a cache and so left
    out by the built-ins, if any (relative, with a slash)."""
    if not rules.sources.builtin:
        return None
    parts = rel.split("/")
    for depth in range(1, len(parts)):
        directory = "/".join(parts[:depth])
        if cache_tagged(str(rules.root / directory)):
            return directory + "/"
    return None


def walk(
    filter_: Filter, start: Path, *, dirs_only: bool = False, unreadable: list[Path] | None = None,
    root: bool = True,
) -> Iterator[tuple[str, bool]]:
    """Every directory (`True`) and wanted file (`False`) under `start`, top-down, never
    entering an ignored directory or following a symbolic link to one (git does not either),
    nor a cache directory (CACHEDIR.TAG) below a watched `root` (`start` itself too, when it is
    not one: a directory that appears while reentr watches). A directory that may not be read
    is added to `unreadable`. Paths are strings, each relative one built from its parent's
    (a 100,000-file tree is walked in a third of the time it took through `Path` objects)."""
    rules = filter_.rules
    first = rules.relative(start)
    if first is None:
        return
    top = str(start)
    stack = [(top, first)]
    tagged = rules.sources.builtin
    # Directories only: a directory with no subdirectory need not be listed, where its link
    # count says so (most directories of a tree: a third of a 100,000-file walk's time).
    device = _leaf_device(top) if dirs_only else None
    subdirs: list[tuple[str, str]]
    files: list[os.DirEntry[str]]
    while stack:
        directory, rel_dir = stack.pop()
        if not filter_.watches_dir(rel_dir):
            continue
        prefix = rel_dir + "/" if rel_dir else ""
        try:
            if device is not None and directory != top and _leaf(directory, device):
                subdirs, files, tag = [], [], True  # a tag is looked for by its name
            else:
                subdirs, files, tag = _listing(directory, prefix, dirs_only)
        except PermissionError:
            if unreadable is not None:
                unreadable.append(Path(directory))
            continue
        except OSError:
            continue  # gone: nothing to watch there
        if tag and tagged and (directory != top or not root) and cache_tagged(directory):
            continue  # a cache directory (cargo's target/): the built-ins leave it out
        yield directory, True
        for entry in files:
            if filter_.wants(prefix + entry.name):
                yield entry.path, False
        stack.extend(sorted(subdirs, reverse=True))


def _leaf_device(top: str) -> int | None:
    """The device of `top`, if its file system counts subdirectories in a directory's links
    (`kernel.counts_subdirectories`); None if not, or if it cannot be read."""
    try:
        device = os.stat(top).st_dev
    except OSError:
        return None
    return device if counts_subdirectories(top) else None


def _leaf(directory: str, device: int) -> bool:
    """Whether `directory` has no subdirectory, as its link count of 2 says on `device`'s file
    system (one mounted on it may count otherwise: it is listed). One that may not be read
    raises PermissionError, as its listing would."""
    st = os.lstat(directory)
    if st.st_nlink != 2 or st.st_dev != device or not stat.S_ISDIR(st.st_mode):
        return False
    if not os.access(directory, os.R_OK | os.X_OK):
        raise PermissionError(directory)
    return True


def _listing(
    directory: str, prefix: str, dirs_only: bool
) -> tuple[list[tuple[str, str]], list[os.DirEntry[str]], bool]:
    """A directory's subdirectories (path, relative path), its other entries (none with
    `dirs_only`), and whether a cache tag is among them, in one pass: reading the listings is
    most of a walk."""
    subdirs, files, tag = [], [], False
    with os.scandir(directory) as listing:
        for entry in listing:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if is_dir:
                subdirs.append((entry.path, prefix + entry.name))
                continue
            tag = tag or entry.name == TAG
            if not dirs_only:
                files.append(entry)
    return subdirs, files, tag


def own_files(config: Config, events: str | None, cwd: str) -> frozenset[str]:
    """The files whose changes reentr never reacts to: those it writes itself (the event
    stream, a Unix socket, the files its stdout and stderr are redirected to: `reentr ... 2>
    err.log` in the tree would otherwise restart on its own lines), and, with `--build`, the
    program the build writes (a loop otherwise: build, write, change, build)."""
    own = {spec.path for spec in config.sockets if spec.path is not None}
    if events not in (None, "-"):
        own.add(events)
    own.update(_redirected_to())
    if config.build is not None and not config.shell:
        program = config.command[0]
        found = os.path.join(cwd, program) if os.sep in program else shutil.which(program)
        if found is not None:
            own.add(found)
    # Both spellings: a watched tree's root is resolved, a listed file is not.
    return frozenset(f(path) for path in own for f in (os.path.abspath, os.path.realpath))


def _redirected_to() -> set[str]:
    """The regular files reentr's stdout and stderr write to, if any (Linux's /proc)."""
    found = set()
    for fd in (1, 2):
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                found.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # closed, or no /proc
            continue
    return found
