"""What a collector is given, and what it is."""

from __future__ import annotations

import threading
import time

from . import _env, _log, _state
from . import tags as _tags
from ._files import Root

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any, TypeVar

    T = TypeVar("T")
    CollectFunction = Callable[["Context"], Mapping[str, str]]

_guard_lock = _state.lock()
_stuck: set[str] = set()


def _after_fork_in_child() -> None:
    # The helper threads stuck in the parent do not exist here: nothing is stuck.
    _stuck.clear()


_state.register(after_fork=_after_fork_in_child)


class Context:
    """One collector's view of one collection: where to read, how long it may take.

    ``details`` takes what is too long for a tag (the per-device list) for the snapshot;
    ``errors`` takes partial failures (one source of several failed) without losing tags.
    """

    __slots__ = ("deadline", "deferred", "details", "errors", "root")

    def __init__(self, root: Root, deadline: float) -> None:
        self.root = root
        self.deadline = deadline
        self.details: dict[str, Any] = {}
        self.errors: list[str] = []
        self.deferred: list[Callable[[], object]] = []

    def defer(self, cleanup: Callable[[], object]) -> None:
        """Run ``cleanup`` after the collector's answer is handed over (nobody waits for it)."""
        self.deferred.append(cleanup)

    def run_deferred(self) -> None:
        """The deferred cleanups, in order; a failing one is logged at debug level."""
        for cleanup in self.deferred:
            try:
                cleanup()
            except Exception:
                _log.logger().debug("cleanup failed", exc_info=True)
        self.deferred.clear()

    def remaining(self) -> float:
        """Seconds left before the collection's deadline (never negative)."""
        return max(self.deadline - time.monotonic(), 0.0)

    def run(self, args: Sequence[str]) -> str:
        """Run a command (see :func:`mlflow_sysmetrics._proc.run`) within the deadline.

        The command is killed a little before the deadline, so that its own error (which
        names the tool) is what ``sysmetrics.error`` says, not just "no answer".
        """
        from . import _proc  # only a machine that runs a tool pays for subprocess

        remaining = self.remaining()
        limit = remaining - min(0.05, remaining / 10)
        return _proc.run(args, limit)

    def within_deadline(self, function: Callable[[], T], what: str) -> T:
        """``function()`` run in a helper thread, abandoned (:class:`TimeoutError`) at the deadline.

        One call per ``what`` at a time: while an earlier one is still stuck, later calls
        fail at once instead of piling up threads.
        """
        with _guard_lock:
            if what in _stuck:
                raise TimeoutError(f"{what} is still stuck from an earlier call")
            _stuck.add(what)
        result: list[T] = []
        failure: list[BaseException] = []
        done = threading.Event()

        def work() -> None:
            try:
                result.append(function())
            except BaseException as exc:  # handed to the caller below
                failure.append(exc)
            finally:
                with _guard_lock:
                    _stuck.discard(what)
                done.set()

        if _state.start_thread(work, what) is None:  # run here, it could block past the deadline
            with _guard_lock:
                _stuck.discard(what)
            raise RuntimeError(f"no thread could be started to run {what} within the deadline")
        if not done.wait(self.remaining()):
            raise TimeoutError(f"{what} gave no answer before the deadline")
        if failure:
            raise failure[0]
        return result[0]

    def note_error(self, exc: BaseException) -> None:
        """Record a failed source while the collector goes on with the others.

        The exception's message names the source (``nvidia-smi gave no answer in 1.0 s``).
        """
        self.errors.append(f"{type(exc).__name__}: {exc}")


class Collector:
    """One concern's facts.

    ``keys`` are the tags it may write (so an excluded concern is not even run): by default
    the table's keys whose ``source`` is its ``name`` (:func:`.tags.keys_of`). Facts are
    read once per process for each root and value of the ``env`` variables named, under
    the deadline. A collector that reads files runs in the caller's thread where those
    reads cannot block (the live machine's ``/proc`` and ``/sys``, a root file system on a
    local disk), else in the one worker that reads files. A ``blocking`` collector (one
    that runs a tool or calls a library that can hang) gets a thread of its own; ``blocking``
    may instead be a function of the root saying whether this machine has such a source
    (the GPU collector: only where a vendor's driver or device is present; it is asked only
    where reads cannot block). ``inline`` collectors run in the caller's thread on every
    call, so they must be cheap and must not block (or guard themselves with
    :meth:`Context.within_deadline`).
    """

    __slots__ = ("blocking", "env", "function", "inline", "keys", "name", "read_env")

    def __init__(
        self,
        name: str,
        function: CollectFunction,
        keys: tuple[str, ...] | None = None,
        *,
        env: tuple[str, ...] = (),
        inline: bool = False,
        blocking: bool | Callable[[Root], bool] = False,
    ) -> None:
        self.name = name
        self.function = function
        self.keys = _tags.keys_of(name) if keys is None else keys
        self.env = env
        self.inline = inline
        self.blocking = blocking
        self.read_env = _env.reader(env)

    def needs_own_thread(self, root: Root, reads_cannot_block: bool) -> bool:
        """Whether to run in a thread of its own for ``root`` (see the class docstring)."""
        if isinstance(self.blocking, bool):
            return self.blocking
        return not reads_cannot_block or self.blocking(root)

    def __repr__(self) -> str:
        return f"Collector({self.name!r})"
