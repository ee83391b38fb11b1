"""Citations of documents: every `<name>.md` a docstring or comment names exists in the repository.

A citation is a path from the repository's root (`docs/api.md`, `node_lib/README.md`,
`README.md`), optionally followed by a section: `§4` or `§2-3` (a heading `## 4. ...` in that
file) or a quoted title, `"The chain"` (a heading that starts with those words). Links in the
documents themselves must lead to files that exist.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: where code and its comments live (the documents themselves are checked by their links)
SCANNED = ("hps_api", "node_lib", "scripts", "ipxe", "tests", "cluster-config")
SKIPPED_DIRS = frozenset({"__pycache__", "golden"})
CITATION = re.compile(
    r"(?<![\w/.-])(?P<path>(?:[\w.-]+/)*[\w-]+\.md)\b"
    r"(?:'s)?(?:(?:,\s*|\s+)(?:\"(?P<title>[^\"\n]+)\"|§(?P<first>\d+)(?:-(?P<last>\d+))?))?")
HEADING = re.compile(r"^#{1,6}\s+(?P<text>.+?)\s*$", re.MULTILINE)
LINK = re.compile(r"\]\((?P<target>[^)\s#]+)(?:#[^)]*)?\)")


def _code_files() -> list[Path]:
    found = []
    for top in SCANNED:
        for path in sorted((REPO / top).rglob("*")):
            if (path.is_file() and path.suffix != ".md" and path != Path(__file__).resolve()
                    and not SKIPPED_DIRS.intersection(path.relative_to(REPO).parts)):
                found.append(path)
    return found


def _citations() -> list[tuple[str, int, re.Match[str]]]:
    cited = []
    for path in _code_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary files cite nothing
        for number, line in enumerate(text.splitlines(), 1):
            for match in CITATION.finditer(line):
                cited.append((str(path.relative_to(REPO)), number, match))
    return cited


CITATIONS = _citations()


def _headings(document: Path) -> list[str]:
    return [m.group("text") for m in HEADING.finditer(document.read_text(encoding="utf-8"))]


def test_the_scan_finds_the_citations_it_is_meant_to_check() -> None:
    paths = {match.group("path") for _, _, match in CITATIONS}
    assert {"docs/api.md", "docs/boot.md", "docs/node.md", "docs/storage.md"} <= paths


@pytest.mark.parametrize(("where", "line", "match"), CITATIONS,
                         ids=[f"{w}:{n}:{m.group(0)}" for w, n, m in CITATIONS])
def test_every_cited_document_exists_with_the_cited_section(where: str, line: int,
                                                            match: re.Match[str]) -> None:
    document = REPO / match.group("path")
    assert document.is_file(), (f"{where}:{line} cites {match.group('path')}, which is not a "
                                "file of the repository (cite it by its path from the root)")
    headings = _headings(document)
    if match.group("first"):
        first = int(match.group("first"))
        for number in range(first, int(match.group("last") or first) + 1):
            assert any(re.match(rf"{number}\.\s", text) for text in headings), (
                f"{where}:{line} cites {match.group(0)}: {document.name} has no section {number}")
    if match.group("title"):
        title = match.group("title")
        assert any(text.startswith(title) for text in headings), (
            f"{where}:{line} cites {match.group(0)}: {document.name} has no heading {title!r}")


DOCUMENTS = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md"),
                    REPO / "node_lib" / "README.md"])


@pytest.mark.parametrize("document", DOCUMENTS, ids=[str(d.relative_to(REPO)) for d in DOCUMENTS])
def test_every_relative_link_in_a_document_leads_to_a_file(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    broken = [m.group("target") for m in LINK.finditer(text)
              if "://" not in m.group("target") and not m.group("target").startswith("mailto:")
              and not (document.parent / m.group("target")).exists()]
    assert not broken, f"{document.relative_to(REPO)} links to missing files: {broken}"
