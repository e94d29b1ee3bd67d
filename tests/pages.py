"""The documentation as the tests read it: the README and the pages under ``docs/``.

One reading for every test that holds a page to the code: a section under a heading, the keys
a table names, the fenced snippets a page shows, and a sample of a command's output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
#: Every page a user reads: the README (the package index's page) first, then the site's.
PAGES = [REPO / "README.md", *sorted(DOCS.glob("*.md"))]
#: A tag or metric key in backquotes.
KEY = re.compile(r"`((?:sys|sysmetrics)\.[a-z0-9_.]+)`")
_FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", flags=re.S | re.M)


def read(page: Path) -> str:
    """The page's text (a leading newline, so that a heading on the first line is found too)."""
    return "\n" + page.read_text()


def section(page: Path, heading: str) -> str:
    """The text under ``heading`` (a whole line, such as ``## Keys``) up to the next heading of its level."""
    level = heading.split(" ", 1)[0]
    text = read(page)
    assert f"\n{heading}\n" in text, f"{page.name} has no heading {heading!r}"
    return text.split(f"\n{heading}\n", 1)[1].split(f"\n{level} ", 1)[0]


def table_keys(page: Path, heading: str) -> list[str]:
    """The keys named in the first cell of each table row under ``heading``, in order."""
    keys: list[str] = []
    for line in section(page, heading).splitlines():
        if line.startswith("| `sys"):
            keys.extend(KEY.findall(line.split("|")[1]))
    return keys


@dataclass(frozen=True)
class Snippet:
    """One fenced block of a page: its language and its text."""

    page: str
    language: str
    code: str


def snippets(*languages: str) -> list[Snippet]:
    """Every fenced block in ``languages`` on every page, in page order."""
    found: list[Snippet] = []
    for page in PAGES:
        for language, code in _FENCE.findall(page.read_text()):
            if language in languages:
                found.append(Snippet(str(page.relative_to(REPO)), language, code))
    return found


def output_sample(page: Path, command: str) -> list[str]:
    """The lines of the ``text`` block on ``page`` that starts with ``$ command``, the command first."""
    for language, code in _FENCE.findall(page.read_text()):
        if language == "text" and code.startswith(f"$ {command}"):
            return code.splitlines()
    raise AssertionError(f"{page.name} shows no output of {command!r}")


def columns(header: str) -> list[str]:
    """The column titles of a table the command line prints (two or more spaces apart)."""
    return re.split(r"\s{2,}", header.strip())
