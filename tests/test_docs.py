"""Links between the project's Markdown pages point at headings that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]


def anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # no headings in code
    return {anchor(match) for match in re.findall(r"^#+\s+(.*)$", text, flags=re.M)}


def test_anchor_follows_githubs_rule():
    assert anchor("E30: how far one recording's own moments are trusted (`model.x`)") == (
        "e30-how-far-one-recordings-own-moments-are-trusted-modelx"
    )
    assert anchor("One recording alone (k = 1)") == "one-recording-alone-k--1"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_link_to_a_heading_finds_it(page):
    missing = []
    for target, name in re.findall(r"\]\(([^)#\s]*)#([^)\s]+)\)", page.read_text()):
        linked = (page.parent / target).resolve() if target else page
        if linked.suffix == ".md" and name not in anchors(linked):
            missing.append(f"{target}#{name}")
    assert not missing, f"{page.name} links to headings that do not exist: {missing}"
