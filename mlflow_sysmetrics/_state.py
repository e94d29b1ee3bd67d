"""Process state in one registry: what :func:`clear` forgets, and what a forked child redoes.

A module that keeps something across calls (a cache, a memo, a lock) registers it here when
it is imported: ``reset`` forgets what it knows (``clear_cache()`` and the tests call it),
``after_fork`` makes it safe in a child of ``fork()``, where only the forking thread lives on:
locks other threads held stay held, and work they were doing never finishes. One fork hook
walks the registry, so no module can be forgotten by it.
"""

from __future__ import annotations

import os
from collections.abc import Callable

_resets: list[Callable[[], None]] = []
_fork_hooks: list[Callable[[], None]] = []


def register(
    *, reset: Callable[[], None] | None = None, after_fork: Callable[[], None] | None = None
) -> None:
    """Have :func:`clear` call ``reset``, and a forked child call ``after_fork``."""
    if reset is not None:
        _resets.append(reset)
    if after_fork is not None:
        _fork_hooks.append(after_fork)


def clear() -> None:
    """Forget every cached fact and memo, so the next call reads the machine and settings again."""
    for reset in list(_resets):
        reset()


def _after_fork_in_child() -> None:
    for hook in list(_fork_hooks):
        hook()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
