"""Git's ignore rules, exactly as git applies them: every `.gitignore` from the repository's
root down, `.git/info/exclude`, `core.excludesFile`, `.ignore` files, reentr's built-in ignores
and `--ignore` patterns, with a verdict and the rule (file, line, pattern) that decided it.

pathspec parses each line (escapes, trailing spaces, `!`, `**`, character classes). How a
pattern applies is done here, because pathspec answers a different question ("is this file
matched, counting its directories?") and folds `dir/**` into `dir/`. git's own order is:
- a path inside an excluded directory is excluded, whatever later rules say (gitignore(5));
- otherwise the last matching line of the most specific source decides: `--ignore` patterns,
  then the ignore files of the path's own directory up to the root (`.ignore` before
  `.gitignore` in one directory, as ripgrep and watchexec do), then `.git/info/exclude`, then
  `core.excludesFile`, then the built-ins.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from reentr import process
from reentr.config import Sources
from reentr.records import evolve, record
from reentr.rulecache import TRANSLATIONS

BUILTIN = (
    # Version control.
    ".git/", ".hg/", ".svn/", ".bzr/", "_darcs/", ".fossil-settings/", ".jj/",
    # Python's caches.
    "__pycache__/", "*.py[co]",
    # Installed dependencies and tools' caches, which a project's .gitignore usually names
    # (what nodemon and uvicorn's --reload leave out by default): an `npm install` or a
    # `pip install` into the project's virtual environment is no edit of the program.
    "node_modules/", ".venv/", "venv/", ".tox/", ".nox/", ".mypy_cache/", ".pytest_cache/",
    ".ruff_cache/", ".hypothesis/",
    # Editors' swap, backup and temporary files: vim, emacs, JetBrains, and the probe file
    # vim writes to test a directory (4913).
    "*.swp", "*.swo", "*.swx", "*~", ".#*", "#*#", "4913", "*___jb_tmp___", "*___jb_old___",
    ".DS_Store",
    # SQLite databases and their journals: a server writes them as it serves (Django's
    # db.sqlite3, Rails', Flask's, Prisma's dev.db), and the projects' .gitignore files name
    # them; a write into one is data, not an edit of the program.
    "*.sqlite3", "*.sqlite3-*", "*.sqlite", "*.sqlite-*", "*.db", "*.db-*",
    # Build tools' temporary files, written beside their output on every build: Go's umask
    # probe (`go build -o app` writes app-go-tmp-umask), LLVM's linker (lld writes OUT.tmp and
    # seven random characters, then renames it), Vite's bundled config.
    "*-go-tmp-umask", "*.tmp[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]"
    "[0-9a-f][0-9a-f]", "*.timestamp-*.mjs",
)
"""Ignored unless `--no-default-ignore`; a negation in a user's file can re-include one."""
_NAMED_GROUP = re.compile(r"\(\?P<[a-z_]+>")


@record
class Rule:
    source: str
    """Where the rule was written: a path relative to the root (`.gitignore`, `src/.ignore`,
    `.git/info/exclude`), the global file's path, `--ignore` or `built-in`."""
    line: int
    pattern: str
    """The line as written, without its line ending."""
    negated: bool
    expression: str
    """The regex that matches exactly the paths the line matches (see `_expression`); compiled
    only when a path matches its file's joined regex (`RuleFile.any`)."""

    @property
    def regex(self) -> re.Pattern[str]:
        return _compiled(self.expression)

    def describe(self) -> str:
        """`source:line:pattern`, as `git check-ignore -v` prints it."""
        return f"{self.source}:{self.line}:{self.pattern}"


@record
class RuleFile:
    """The rules of one source, which apply to paths under `base` ("" or "dir/")."""

    base: str
    rules: tuple[Rule, ...]
    any: re.Pattern[str] | None = None
    """All the rules in one regex: most paths match none, and this says so in one search."""

    def decide(self, rel: str, is_dir: bool) -> Rule | None:
        """The last rule that matches `rel` itself (a path relative to the root)."""
        if not self.rules or not rel.startswith(self.base):
            return None
        sub = rel[len(self.base):] + ("/" if is_dir else "")
        if self.any is not None and not self.any.search(sub):
            return None
        for rule in reversed(self.rules):
            if rule.regex.search(sub):
                return rule
        return None


def parse(text: str, source: str, base: str = "") -> RuleFile:
    """The rules in an ignore file's text; lines that are blank, comments, or that git
    would not accept either, are skipped. One regex is compiled here, all the rules joined:
    each rule's own is compiled when a path first matches it (a start compiled sixty)."""
    rules = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = _trim(raw[:-1] if raw.endswith("\r") else raw)  # a CR only before the end
        expression = _expression(line)
        if expression is not None:
            rules.append(Rule(source, number, line, line.startswith("!"), expression))
    try:
        joined = re.compile(_joined(rules)) if rules else None
    except re.error:  # one of them is refused: find which
        rules = [evolve(rule, expression=valid) for rule in rules
                 if (valid := _valid(rule.pattern, rule.expression)) is not None]
        joined = re.compile(_joined(rules)) if rules else None
    return RuleFile(base, tuple(rules), joined)


_ANY_DEPTH = "(?:^(?:.+/)?"
"""How the expression of a line without a slash begins (`*.log`, `node_modules/`): it
matches at any depth."""


def _joined(rules: list[Rule]) -> str:
    """One regex that matches where any of `rules` does. The lines that match at any depth
    share that beginning: written once, the search tries each depth once for all of them,
    not once for each (three times quicker for the built-ins, asked of every directory)."""
    expressions = [_NAMED_GROUP.sub("(?:", rule.expression) for rule in rules]
    end = ")\\Z"
    deep = [e for e in expressions if e.startswith(_ANY_DEPTH) and e.endswith(end)]
    ends = "|".join("(?:" + e[len(_ANY_DEPTH):-len(end)] + ")\\Z" for e in deep)
    shared = ["^(?:.+/)?(?:" + ends + ")"] if deep else []
    taken = set(deep)
    return "|".join(f"(?:{e})" for e in [*shared, *[e for e in expressions if e not in taken]])


def _trim(line: str) -> str:
    """Drop trailing spaces, except one escaped with a backslash (gitignore(5))."""
    end = len(line)
    while end and line[end - 1] == " " and not (end > 1 and line[end - 2] == "\\"):
        end -= 1
    return line[:end]


@functools.lru_cache(maxsize=4096)
def _expression(line: str) -> str | None:
    """A regex that matches exactly the paths the line matches (directories with a trailing
    slash), searched from the start of a path relative to the rule's directory."""
    if not line.strip(" ") or line.startswith("#"):
        return None
    try:
        source, include = TRANSLATIONS.regex(line)  # pathspec's, kept between runs
    except ValueError:
        return None  # e.g. a trailing backslash: git matches nothing with it either
    if include is None or source is None:
        return None
    body = line.lstrip("!").rstrip(" ")
    if body.endswith("/**") and not body.endswith("\\/**"):
        # pathspec folds `dir/**` into `dir/`; git's `dir/**` is everything *inside* dir.
        source += ".+"
    return f"(?:{source})\\Z"


def _valid(line: str, expression: str) -> str | None:
    """`expression` if Python's re takes it; for a reversed range (`[z-a]`), which it refuses,
    the expression of what git reads there, the range's first character alone."""
    try:
        _compiled(expression)
    except re.error:
        fixed = _unreverse(line)
        again = _expression(fixed) if fixed != line else None
        return None if again is None else _valid(fixed, again)
    return expression


@functools.lru_cache(maxsize=4096)
def _compiled(expression: str) -> re.Pattern[str]:
    return re.compile(expression)


def _unreverse(line: str) -> str:
    """The line with each reversed range of a bracket expression (`z-a`) replaced by its first
    character, which is what git's wildmatch matches with it: it takes the first character as
    a member before it sees the `-`, and no character lies in the range."""
    out, i = [], 0
    while i < len(line):
        char = line[i]
        if char == "\\":
            out.append(line[i:i + 2])
            i += 2
        elif char == "[":
            end, members = _bracket(line, i)
            if end is None:
                return line  # no closing bracket: git matches nothing with it, nor does pathspec
            out.append(members)
            i = end
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _bracket(line: str, start: int) -> tuple[int | None, str]:
    """The bracket expression at `start`: where it ends, and its text with reversed ranges
    replaced by their first character (as git's wildmatch reads it)."""
    i = start + 1
    out = ["["]
    if i < len(line) and line[i] in "!^":
        out.append(line[i])
        i += 1
    first = True
    while i < len(line):
        if line[i] == "]" and not first:
            return i + 1, "".join(out) + "]"
        first = False
        if line.startswith("[:", i) and (close := line.find(":]", i + 2)) != -1:
            out.append(line[i:close + 2])
            i = close + 2
            continue
        low, i = _member(line, i)
        if line.startswith("-", i) and i + 1 < len(line) and line[i + 1] != "]":
            high, after = _member(line, i + 1)
            if high[-1] >= low[-1]:
                out.append(f"{low}-{high}")
            else:
                out.append(low)
            i = after
        else:
            out.append(low)
    return None, line[start:]


def _member(line: str, i: int) -> tuple[str, int]:
    """One character of a bracket expression, with its escape if it has one."""
    if line[i] == "\\" and i + 1 < len(line):
        return line[i:i + 2], i + 2
    return line[i], i + 1


@record
class Verdict:
    ignored: bool
    rule: Rule | None
    """The rule that decided; None when no rule matches (the path is watched)."""
    directory: str | None = None
    """When an excluded parent directory decided, that directory (relative, with a slash)."""


_GIT_ITSELF = parse(".git/", "git")
"""Never watched, whatever the switches: git never lists what is inside `.git` either."""


@dataclass
class Rules:
    """Every rule that applies under `root`, read from disk as directories are visited."""

    root: Path
    sources: Sources = field(default_factory=Sources)
    git_dir: Path | None = None
    global_path: Path | None = None
    _fixed_before: tuple[RuleFile, ...] = ()
    _fixed_after: tuple[RuleFile, ...] = ()
    _per_dir: dict[str, tuple[RuleFile, ...]] = field(default_factory=dict)
    _dirs: dict[str, Verdict] = field(default_factory=dict)
    _chains: dict[str, tuple[RuleFile, ...]] = field(default_factory=dict)

    @classmethod
    def load(cls, start: Path, sources: Sources) -> Rules:
        """The rules for watching `start`: the root is its repository's top (so parents'
        `.gitignore` files apply), or `start` itself outside a repository."""
        start = start.resolve()
        top, git_dir = _find_repository(start)
        rules = cls(top or start, sources, git_dir)
        before = [_GIT_ITSELF]
        if sources.extra:
            before.append(parse("\n".join(sources.extra), "--ignore"))
        after = []
        if sources.git_exclude and git_dir is not None:
            after.append(_read(git_dir / "info" / "exclude", rules.root))
        if sources.global_file:
            rules.global_path = _global_excludes(rules.root if git_dir is not None else None)
            if rules.global_path is not None:
                after.append(_read(rules.global_path, rules.root))
        if sources.builtin:
            after.append(parse("\n".join(BUILTIN), "built-in"))
        rules._fixed_before, rules._fixed_after = tuple(before), tuple(after)
        return rules

    def relative(self, path: Path | str) -> str | None:
        """`path` relative to the root, with `/` separators; None when it is outside."""
        rel = os.path.relpath(os.path.abspath(path), self.root)
        if rel == ".":
            return ""
        if rel.startswith(".." + os.sep) or rel == "..":
            return None
        return rel.replace(os.sep, "/")

    def is_rule_file(self, path: str) -> bool:
        """Whether an edit of `path` (absolute) changes the rules."""
        if os.path.basename(path) in (".gitignore", ".ignore"):
            return True
        fixed = [self.global_path]
        if self.git_dir is not None:
            fixed.append(self.git_dir / "info" / "exclude")
        return any(f is not None and str(f) == path for f in fixed)

    def explain(self, rel: str, is_dir: bool) -> Verdict:
        """Whether `rel` (relative to the root) is ignored, and by which rule."""
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            parent = self.directory("/".join(parts[:depth]))
            if parent.ignored:
                return parent
        return self._decide(rel, is_dir)

    def ignored(self, rel: str, is_dir: bool) -> bool:
        return self.explain(rel, is_dir).ignored

    def met_as_directory(self, rel: str) -> bool:
        """Whether `rel` was met as a directory: a walk decides on every directory it meets,
        ignored ones included. A path that is gone gives no other sign of what it was, and a
        rule for directories alone (`out/`) does not match it as a file."""
        return rel in self._dirs

    def directory(self, rel: str) -> Verdict:
        """The verdict on a directory, its parents first, remembered."""
        verdict = self._dirs.get(rel)
        if verdict is None:
            parent, _, _ = rel.rpartition("/")
            above = self.directory(parent) if parent else None
            if above is not None and above.ignored:
                verdict = above
            else:
                verdict = self._decide(rel, True)
                if verdict.ignored:
                    verdict = Verdict(True, verdict.rule, rel + "/")
            self._dirs[rel] = verdict
        return verdict

    def _decide(self, rel: str, is_dir: bool) -> Verdict:
        for source in self._sources_for(rel):
            rule = source.decide(rel, is_dir)
            if rule is not None:
                return Verdict(not rule.negated, rule)
        return Verdict(False, None)

    def _sources_for(self, rel: str) -> tuple[RuleFile, ...]:
        """The rule files that decide for `rel`, the first to match winning: the fixed ones
        before, its directory's and each parent's, deepest first, the fixed ones after. The
        same for everything in one directory, so kept per directory."""
        parent = rel.rpartition("/")[0]
        chain = self._chains.get(parent)
        if chain is None:
            parts = rel.split("/")[:-1]
            chain = (*self._fixed_before,
                     *(f for depth in range(len(parts), -1, -1)
                       for f in self._files_in("/".join(parts[:depth]))),
                     *self._fixed_after)
            self._chains[parent] = chain
        return chain

    def _files_in(self, directory: str) -> tuple[RuleFile, ...]:
        files = self._per_dir.get(directory)
        if files is None:
            base = directory + "/" if directory else ""
            names = [n for n, on in ((".ignore", self.sources.dot_ignore),
                                     (".gitignore", self.sources.gitignore)) if on]
            found = []
            for name in names:
                path = self.root / base / name
                if path.is_file():
                    found.append(_read(path, self.root, base))
            files = self._per_dir[directory] = tuple(found)
        return files


def _read(path: Path, root: Path, base: str = "") -> RuleFile:
    try:
        text = path.read_bytes().decode("utf-8", errors="surrogateescape")
    except OSError:
        text = ""
    try:
        source = path.relative_to(root).as_posix()
    except ValueError:
        source = str(path)
    return parse(text, source, base)


def root_of(start: Path) -> Path:
    """The root whose rules apply to `start` (a resolved directory): its repository's top,
    or `start` itself outside a repository."""
    return _find_repository(start)[0] or start


def _find_repository(start: Path) -> tuple[Path | None, Path | None]:
    """The top of the git work tree containing `start`, and its git directory."""
    for directory in (start, *start.parents):
        dot_git = directory / ".git"
        if dot_git.is_dir():
            return directory, dot_git
        if dot_git.is_file():  # a worktree or submodule: "gitdir: PATH"
            text = dot_git.read_text(errors="replace").strip()
            if text.startswith("gitdir:"):
                git_dir = Path(text.split(":", 1)[1].strip())
                git_dir = git_dir if git_dir.is_absolute() else directory / git_dir
                common = git_dir / "commondir"
                if common.is_file():
                    git_dir = (git_dir / common.read_text().strip()).resolve()
                return directory, git_dir
    return None, None


def _global_excludes(top: Path | None) -> Path | None:
    """git's `core.excludesFile` for the repository whose top is `top` (None: outside any),
    or its default `$XDG_CONFIG_HOME/git/ignore`."""
    configured = _excludes_setting(top)
    if configured:
        return Path(configured).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    default = Path(config) / "git" / "ignore"
    return default if default.is_file() else None


@functools.cache
def _excludes_setting(top: Path | None) -> str | None:
    """`git config core.excludesFile` in the repository whose top is `top`, or outside any
    (where only the user's and the system's settings count; asked from /): once per
    repository, not once per watched tree, as `reentr up`'s services would (a git process
    each, about 10 ms before the first start)."""
    return process.output_of(["git", "config", "--path", "--get", "core.excludesFile"],
                      cwd=top if top is not None else "/")
