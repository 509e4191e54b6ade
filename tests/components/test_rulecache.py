"""The ignore rules' translations kept between runs: a start whose lines are all known
imports no pathspec, and what it reads is what pathspec would make; a cache that is
damaged or cannot be written changes nothing but the time."""

from __future__ import annotations

import marshal
import os
import subprocess
import sys
import textwrap
from pathlib import Path

DEADLINE = 60

_RULES = textwrap.dedent(r"""
    import json, sys
    from reentr import ignore
    text = "*.o\nbuild/\n!keep.o\ndocs/**\n[z-a]x\ntrailing\\\n# comment\n"
    found = ignore.parse(text, ".gitignore")
    print(json.dumps({"pathspec": "pathspec" in sys.modules,
                      "rules": [[r.line, r.pattern, r.negated, r.expression]
                                for r in found.rules]}))
""")


def _start(cache: Path) -> dict[str, object]:
    import json

    done = subprocess.run([sys.executable, "-c", _RULES], capture_output=True, text=True,
                          timeout=DEADLINE, check=False,
                          env={**os.environ, "XDG_CACHE_HOME": str(cache)})
    assert done.returncode == 0 and done.stderr == "", done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_a_second_start_reads_the_same_rules_without_pathspec(tmp_path: Path) -> None:
    first = _start(tmp_path)
    assert first["pathspec"] is True
    assert next((tmp_path / "reentr").iterdir()).name.startswith("rules-")
    second = _start(tmp_path)
    assert second["pathspec"] is False
    assert second["rules"] == first["rules"]
    # The line pathspec refuses (a trailing backslash) is refused again, from the cache.
    assert [rule[1] for rule in first["rules"]] == [  # type: ignore[attr-defined]
        "*.o", "build/", "!keep.o", "docs/**", "[z-a]x"]


def test_a_damaged_cache_is_written_anew(tmp_path: Path) -> None:
    first = _start(tmp_path)
    (cached,) = (tmp_path / "reentr").iterdir()
    cached.write_bytes(b"\x00not marshal")
    assert _start(tmp_path) == first  # translated again, by pathspec
    assert _start(tmp_path) == {**first, "pathspec": False}  # and kept again


def test_a_cache_that_cannot_be_written_changes_nothing(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")  # the cache's folder would have to be inside a file
    assert _start(blocked) == _start(tmp_path)


def test_reentr_watch_stopped_by_ctrl_c_leaves_its_rules_for_the_next_start(
    tmp_path: Path,
) -> None:
    """reentr ends by a signal most often, which runs no exit function: the cache is written
    once the watch is in place."""
    import signal

    from helpers import Reentr

    cache, project = tmp_path / "cache", tmp_path / "p"
    project.mkdir()
    (project / ".gitignore").write_text("*.o\nbuild/\n")
    (project / "src").mkdir()  # the walk decides it: the .gitignore is read
    proc = Reentr(["watch", "-n", "--", "true"], cwd=project,
                  env={"XDG_CACHE_HOME": str(cache)})
    try:
        proc.err.expect(r"watching \d+ director")
        proc.signal(signal.SIGINT)
        assert proc.wait() != 0
    finally:
        proc.close()
    (kept,) = (cache / "reentr").iterdir()
    assert {"*.o", "build/", "node_modules/", "*.swp"} <= set(marshal.loads(kept.read_bytes()))
    again = subprocess.run(
        [sys.executable, "-c", "import sys; from reentr import ignore; "
         "ignore.parse('*.o\\nbuild/\\n', '.gitignore'); print('pathspec' in sys.modules)"],
        capture_output=True, text=True, timeout=DEADLINE, check=False,
        env={**os.environ, "XDG_CACHE_HOME": str(cache)})
    assert again.stdout == "False\n", again.stderr
