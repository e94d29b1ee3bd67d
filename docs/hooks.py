"""MkDocs hook: the docstrings' Sphinx roles read as plain code in the API reference.

The package's docstrings name other objects as Sphinx does (``:func:`collect```); the
mkdocstrings renderer keeps the role's name in front of the code span (":func:collect"), which
is noise to a reader. The role is dropped; the name stays in code.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|data|attr|mod|exc|obj):(?=<code>)")


def on_page_content(html: str, **kwargs: Any) -> str:
    """The page's HTML without the roles' names before code spans."""
    return _ROLE.sub("", html)
