"""The documents keep their promises: every test the guarantees table names exists, every
link between the README, `docs/` and `benchmarks/README.md` leads somewhere, the README stays
a reference (at most 400 lines), and the architecture page names every module."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
             ROOT / "benchmarks" / "README.md"]


def test_every_test_the_guarantees_table_names_exists() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## What reentr guarantees", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"`(test_\w+)`", table)
    assert len(named) >= 15
    defined = {match for path in (ROOT / "tests").rglob("test_*.py")
               for match in re.findall(r"^def (test_\w+)\(", path.read_text(), re.MULTILINE)}
    assert [name for name in named if name not in defined] == []


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {_anchor(line.lstrip("#")) for line in path.read_text().splitlines()
            if line.startswith("#")}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_between_the_documents_leads_somewhere(document: Path) -> None:
    text = re.sub(r"```.*?```", "", document.read_text(), flags=re.DOTALL)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        path, _, anchor = target.partition("#")
        found = (document.parent / path).resolve() if path else document
        if not found.exists():
            broken.append(f"{target}: no such file")
        elif anchor and found.suffix == ".md" and anchor not in _anchors(found):
            broken.append(f"{target}: no such heading")
    assert broken == []


@pytest.mark.parametrize("document", [*DOCUMENTS, ROOT / ".ci" / "run"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_of_the_project_a_document_names_is_there(document: Path) -> None:
    """Paths written as text (`tests/end_to_end/test_up.py`), which the link check above does
    not see: a file moved must take its mentions along."""
    named = set(re.findall(
        r"(?<![\w/.])((?:tests|src/reentr|benchmarks|docs|completions)/[\w/.-]+\.\w+)",
        document.read_text()))
    placeholders = {"benchmarks/NAME.py"}
    assert sorted(path for path in named - placeholders if not (ROOT / path).exists()) == []


def test_the_readme_is_a_reference_of_at_most_400_lines() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 400


def test_the_architecture_page_names_every_module() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text()
    source = ROOT / "src" / "reentr"
    modules = sorted(str(path.relative_to(source)) for path in source.rglob("*.py"))
    assert [module for module in modules if f"`{module}`" not in page] == []
