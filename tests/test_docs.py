"""The README's promises point at real tests: every test its guarantees table names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_test_the_guarantees_table_names_exists() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## What reentr guarantees", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"`(test_\w+)`", table)
    assert len(named) >= 15
    defined = {match for path in (ROOT / "tests").glob("test_*.py")
               for match in re.findall(r"^def (test_\w+)\(", path.read_text(), re.MULTILINE)}
    assert [name for name in named if name not in defined] == []
