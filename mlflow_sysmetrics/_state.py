"""Process state in one registry: what :func:`clear` forgets, and what a forked child redoes.

A module that keeps something across calls (a cache, a memo, a lock) registers it here when
it is imported: ``reset`` forgets what it knows (``clear_cache()`` and the tests call it),
``after_fork`` makes it safe in a child of ``fork()``, where only the forking thread lives on:
locks other threads held stay held, and work they were doing never finishes. One fork hook
walks the registry, so no module can be forgotten by it.

Every thread of ours starts through :func:`start_thread`, so a child knows which threads it
lost. One of them may have been importing a module when the parent forked (the background
gathering runs while the user's script goes on, and a ``fork`` start method or a DataLoader
worker may come at any moment): the child would then find that module half-imported and its
import lock held forever, and the first import of it would hang. The child forgets such a
module and its lock, so that it imports it afresh.
"""

from __future__ import annotations

import os
import sys
import threading

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_resets: list[Callable[[], None]] = []
_fork_hooks: list[Callable[[], None]] = []
#: Thread identifiers of our threads still running.
_running: set[int] = set()


def register(
    *, reset: Callable[[], None] | None = None, after_fork: Callable[[], None] | None = None
) -> None:
    """Have :func:`clear` call ``reset``, and a forked child call ``after_fork``."""
    if reset is not None:
        _resets.append(reset)
    if after_fork is not None:
        _fork_hooks.append(after_fork)


class Lock:
    """A lock that a forked child gets anew: a thread that held it in the parent is not there.

    What :func:`lock` returns; used as ``with lock:`` or ``acquire(timeout=...)``.
    """

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """:meth:`threading.Lock.acquire`."""
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        """:meth:`threading.Lock.release`."""
        self._lock.release()

    def __enter__(self) -> bool:
        return self._lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()


_locks: list[Lock] = []


def lock() -> Lock:
    """A module's lock, re-armed in a child of ``fork()`` (so no module writes its own hook)."""
    made = Lock()
    _locks.append(made)
    return made


def memo() -> dict[Any, Any]:
    """A module's memo: a dict that :func:`clear` (``clear_cache()``) empties."""
    remembered: dict[Any, Any] = {}
    register(reset=remembered.clear)
    return remembered


def clear() -> None:
    """Forget every cached fact and memo, so the next call reads the machine and settings again."""
    for reset in list(_resets):
        reset()


def start_thread(job: Callable[[], object], name: str) -> threading.Thread | None:
    """Run ``job`` in a daemon thread named ``mlflow-sysmetrics-<name>``: the thread, started.

    Returns ``None``, having started nothing, when the process can have no more threads.
    """

    def run() -> None:
        ident = threading.get_ident()
        _running.add(ident)
        try:
            job()
        finally:
            _running.discard(ident)

    thread = threading.Thread(target=run, name=f"mlflow-sysmetrics-{name}", daemon=True)
    try:
        thread.start()
    except RuntimeError:  # "can't start new thread"
        return None
    return thread


def _import_locks() -> dict[str, Any] | None:
    """CPython's per-module import locks, or ``None`` on a Python that keeps them otherwise.

    ``importlib._bootstrap._module_locks`` is not a public name.
    """
    locks = getattr(sys.modules.get("importlib._bootstrap"), "_module_locks", None)
    return locks if isinstance(locks, dict) else None


def imports_repairable_after_fork() -> bool:
    """Whether a forked child can free an import lock one of our lost threads held (see the module)."""
    return _import_locks() is not None


def _forget_imports_of_lost_threads() -> None:
    """Let the child import afresh what one of our lost threads was importing at the fork."""
    here = threading.get_ident()  # the forking thread lives on, even one of ours
    lost = _running - {here}
    _running.intersection_update({here})
    if not lost:
        return
    locks = _import_locks()
    if locks is None:  # nothing to repair with: the gathering ahead is never started there
        return
    for name, reference in list(locks.items()):
        lock = reference() if callable(reference) else None
        if getattr(lock, "owner", None) not in lost:
            continue
        module = sys.modules.get(name)
        if module is not None and getattr(getattr(module, "__spec__", None), "_initializing", False):
            del sys.modules[name]
        locks.pop(name, None)


def _after_fork_in_child() -> None:
    for made in _locks:
        made._lock = threading.Lock()
    _forget_imports_of_lost_threads()
    for hook in list(_fork_hooks):
        hook()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
