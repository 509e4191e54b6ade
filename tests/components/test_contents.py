"""Which events leave a file as it was (`watch/contents.py`), against real files: each change
of what the kernel keeps of a file is tried on its own, and only those that touch nothing
entr would act on count as unchanged."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reentr.watch import contents
from reentr.watch.contents import Contents

pytestmark = [pytest.mark.timeout(30)]


def _changed(seen: Contents, *paths: Path) -> list[str]:
    return seen.sift([str(p) for p in paths])[0]


def _seen(tmp_path: Path, text: str) -> tuple[Path, os.stat_result, Contents]:
    """A file with `text`, as a first batch found it."""
    path = tmp_path / "a.py"
    path.write_text(text)
    seen = Contents()
    assert _changed(seen, path) == [str(path)]
    return path, path.stat(), seen


def _files(tmp_path: Path, count: int) -> list[Path]:
    paths = [tmp_path / f"{n}.py" for n in range(count)]
    for path in paths:
        path.write_text("x\n")
    return paths


def _same_time(path: Path, before: os.stat_result) -> None:
    """Give `path` back the modification time it had: a write within one tick of the kernel's
    coarse clock leaves it so."""
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_a_file_first_seen_counts_and_the_same_file_again_does_not(tmp_path: Path) -> None:
    path = tmp_path / "a.py"
    path.write_text("print(1)\n")
    seen = Contents()
    assert _changed(seen, path) == [str(path)]
    assert _changed(seen, path) == []
    assert seen.sift([str(path)])[1] == {str(path): b"print(1)\n"}  # read once, for traits


def test_a_mode_set_again_is_no_change_and_a_new_mode_is(tmp_path: Path) -> None:
    path, _, seen = _seen(tmp_path, "x\n")
    os.chmod(path, path.stat().st_mode & 0o7777)  # as vim does after its fsync
    assert _changed(seen, path) == []
    os.chmod(path, 0o755)  # entr runs for a new mode
    assert _changed(seen, path) == [str(path)]


def test_a_touch_counts(tmp_path: Path) -> None:
    path, before, seen = _seen(tmp_path, "x\n")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    assert _changed(seen, path) == [str(path)]


def test_new_content_in_the_same_tick_and_size_counts_by_its_digest(tmp_path: Path) -> None:
    path, before, seen = _seen(tmp_path, "version 1\n")
    path.write_text("version 2\n")
    _same_time(path, before)
    assert path.stat().st_size == before.st_size
    assert _changed(seen, path) == [str(path)]
    path.write_text("version 2\n")  # the same bytes written again, in the same tick
    _same_time(path, before)
    assert _changed(seen, path) == []


def test_the_same_content_under_a_new_inode_counts(tmp_path: Path) -> None:
    path, before, seen = _seen(tmp_path, "x\n")
    aside = tmp_path / "a.py.new"
    aside.write_text("x\n")
    os.replace(aside, path)
    _same_time(path, before)
    assert path.stat().st_ino != before.st_ino
    assert _changed(seen, path) == [str(path)]


def test_what_is_not_compared_always_counts(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (contents.WHOLE + 1))
    gone = tmp_path / "gone.py"
    directory = tmp_path / "dir"
    directory.mkdir()
    link = tmp_path / "link.py"
    link.symlink_to(big)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opened without blocking, and not read
    seen = Contents()
    for _ in range(2):
        assert _changed(seen, big, gone, directory, link, fifo) == [
            str(big), str(gone), str(directory), str(link), str(fifo)]


def test_a_file_deleted_and_written_again_as_it_was_counts(tmp_path: Path) -> None:
    path, _, seen = _seen(tmp_path, "x\n")
    path.unlink()
    assert _changed(seen, path) == [str(path)]
    path.write_text("x\n")
    assert _changed(seen, path) == [str(path)]


def test_past_the_first_files_of_a_batch_each_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(contents, "MOST", 2)
    paths = _files(tmp_path, 4)
    seen = Contents()
    _changed(seen, *paths)
    assert _changed(seen, *paths) == [str(p) for p in paths[2:]]


def test_the_oldest_files_are_forgotten_past_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(contents, "KEPT", 2)
    paths = _files(tmp_path, 3)
    seen = Contents()
    for path in paths:
        _changed(seen, path)
    assert _changed(seen, paths[0]) == [str(paths[0])]  # forgotten: counts again
    assert _changed(seen, paths[2]) == []
