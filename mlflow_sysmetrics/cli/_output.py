"""What the commands print: JSON or text, and an error in one line.

The text itself (tables, summaries) is made by :mod:`mlflow_sysmetrics._format`, pure
functions of tags and runs; this module only decides JSON or text and writes it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

#: Errors are cut (at a word) beyond this many characters: one line on a terminal or two.
MAX_ERROR = 300


def json_option(command: F) -> F:
    """The ``--json`` flag every command that prints a result takes."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(command)


def emit(as_json: bool, data: Any, text: str) -> None:
    """Print ``data`` as JSON (indented, keys in their order) or ``text``, as ``--json`` asks."""
    click.echo(json.dumps(data, indent=2) if as_json else text)


def fail(message: str) -> click.ClickException:
    """An error in one line, cut (if at all) at a word, never mid-word; click prints it and exits 1."""
    text = " ".join(message.split()) or "failed"
    if len(text) > MAX_ERROR:
        text = text[:MAX_ERROR].rsplit(" ", 1)[0] + " ..."
    return click.ClickException(text)


def quote(name: str) -> str:
    """A run or experiment name in double quotes, the one style of every message."""
    return json.dumps(name, ensure_ascii=False)


def note(message: str) -> None:
    """A line on standard error beside the result (which goes to standard output)."""
    click.echo(message, err=True)
