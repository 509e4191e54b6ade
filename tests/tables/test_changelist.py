"""Tables: `REENTR_CHANGED` bounded to whole lines within its limit, and the full list in
`REENTR_CHANGED_FILE` (a real file, replaced whole at each start)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reentr.changelist import FILE_VARIABLE, LIMIT, VARIABLE, Lists, bounded


@pytest.mark.parametrize(("paths", "limit", "expected"), [
    ((), 10, ""),
    (("/a", "/b"), 10, "/a\n/b"),
    (("/aaaa", "/bbbb"), 11, "/aaaa\n/bbbb"),  # exactly the limit
    (("/aaaa", "/bbbb"), 10, "/aaaa"),  # the second line does not fit whole
    (("/aaaaaaaaaaaa",), 10, ""),  # not even the first: nothing, never half a path
    (("/\udcff", "/b"), 3, "/\udcff"),  # a name that is not UTF-8 counts its bytes
])
def test_the_variable_holds_the_leading_whole_lines_that_fit(
    paths: tuple[str, ...], limit: int, expected: str
) -> None:
    assert bounded(paths, limit) == expected


def test_the_file_holds_every_path_and_goes_with_close() -> None:
    paths = tuple(f"/project/file-{i:06}.txt" for i in range(5000))
    lists = Lists()
    env = lists.env("0-build", paths)
    listed = Path(env[FILE_VARIABLE])
    assert listed.read_bytes().splitlines() == [os.fsencode(p) for p in paths]
    assert len(os.fsencode(env[VARIABLE])) <= LIMIT
    assert env[VARIABLE].split("\n") == list(paths[:len(env[VARIABLE].split("\n"))])
    assert (listed.parent.stat().st_mode & 0o777) == 0o700
    assert lists.env("0-build", ("/only",))[FILE_VARIABLE] == str(listed)
    assert listed.read_text() == "/only\n"
    lists.close()
    assert not listed.parent.exists()
