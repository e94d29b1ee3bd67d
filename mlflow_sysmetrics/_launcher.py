"""The launcher of ``mlflow-sysmetrics run``: a bare interpreter that starts the program.

``execve`` keeps the larger of the new program's peak resident set and the high-water mark of
the address space it replaces (``fs/exec.c``, ``setmax_mm_hiwater_rss``), and a spawn
(``vfork``, as ``posix_spawn`` and Python's ``subprocess`` do) replaces its parent's: a
program spawned by the ``run`` command itself, which has imported MLflow (about 0.25 GB),
would start at that mark. Spawned from this launcher instead (``python -I -S``, importing
nothing but the interpreter's own modules: about 9 MB), the program's peak is its own above
the launcher's mark, which the launcher reports as the floor below which it cannot be told.

Run by :mod:`._run_command` as ``python -I -S _launcher.py CONTROL REPORT PATH ARGV0 ARGS...``,
in a process group of its own, which the program shares. Nothing of the package is imported.

- ``CONTROL`` (a pipe from the command): ``G`` with a 4-byte length and the variables to add to
  the environment (``NAME=value``, NUL-separated) starts the program; ``S`` with one byte
  passes that signal on to it. End of file (the command is gone) before the start ends the
  launcher without starting anything; after it, kills the program and its process group, so
  that it is never left running without the command that counts it.
- ``REPORT`` (a pipe to the command), one line each: ``pid PID FLOOR_KIB`` at once when the
  program is started; ``stop SIGNAL`` when it stops (job control); ``exit WAIT_STATUS
  MAX_RSS_KIB`` when it ends (``wait4``'s status and peak resident set, its reaped children's
  included); ``error ERRNO`` when it could not be started.

Signals the launcher receives itself are ignored: they were sent to the program's process
group or to every process (the terminal's Ctrl-C, ``kill -- -PGID``), so the program has its
own; it passes on only what the command asks, once. The program starts with every signal the
launcher changed at its default, as ``subprocess`` does; one ignored when the launcher
started stays ignored, as an exec keeps it. The launcher exits as the program did: its code,
or the same signal (a core-dumping one as ``128 + n``, so that a crash leaves one core).
"""

from __future__ import annotations

import os
import select
import sys

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    import signal as _signal
    from types import FrameType
else:
    import _signal  # the C module under signal, whose enum import costs 30 ms and 1 MB

#: Signals whose default action dumps core: the launcher exits ``128 + n`` rather than dump one.
CORE_DUMPING = ("SIGABRT", "SIGBUS", "SIGFPE", "SIGILL", "SIGQUIT", "SIGSEGV", "SIGSYS", "SIGTRAP", "SIGXCPU")
#: Signals the launcher leaves as they are: uncatchable, its own child's, or a fault of its own.
KEPT = (
    "SIGKILL",
    "SIGSTOP",
    "SIGCHLD",
    "SIGCONT",
    "SIGSEGV",
    "SIGBUS",
    "SIGILL",
    "SIGFPE",
    "SIGABRT",
    "SIGTRAP",
    "SIGSYS",
)


def _numbers(names: tuple[str, ...]) -> set[int]:
    return {getattr(_signal, name) for name in names if hasattr(_signal, name)}


def _high_water_kib() -> int | None:
    """The launcher's own peak resident set (``VmHWM``: its address space's, not inherited)."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak // 1024 if sys.platform == "darwin" else peak)  # macOS says bytes


def _messages(buffer: bytearray) -> list[tuple[str, bytes]]:
    """The complete control messages at the head of ``buffer``, removed from it."""
    found: list[tuple[str, bytes]] = []
    while buffer:
        kind = chr(buffer[0])
        if kind == "S" and len(buffer) >= 2:
            found.append((kind, bytes(buffer[1:2])))
            del buffer[:2]
        elif kind == "G" and len(buffer) >= 5 and len(buffer) >= 5 + int.from_bytes(buffer[1:5], "big"):
            end = 5 + int.from_bytes(buffer[1:5], "big")
            found.append((kind, bytes(buffer[5:end])))
            del buffer[:end]
        elif kind in "SG":
            break  # the rest of it has not arrived yet
        else:
            raise ValueError(f"unknown control message {kind!r}")
    return found


def _say(report: int, line: str) -> bool:
    """Write one line to the command; ``False`` when it is gone."""
    try:
        os.write(report, line.encode("ascii") + b"\n")
    except OSError:
        return False
    return True


def _end_everything(pid: int) -> None:
    """The command is gone: the program, and its process group with this launcher, end now."""
    try:  # noqa: SIM105  (contextlib's imports cost the launcher milliseconds)
        os.kill(pid, _signal.SIGKILL)
    except OSError:
        pass
    os.killpg(os.getpgrp(), _signal.SIGKILL)


def _exit_as(status: int) -> None:
    """End this process as the program ended (``status`` from ``wait4``)."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        if number not in _numbers(CORE_DUMPING):
            try:  # noqa: SIM105
                _signal.signal(number, _signal.SIG_DFL)
            except OSError:
                pass  # SIGKILL: its action is always the default
            os.kill(os.getpid(), number)
        os._exit(128 + number)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def main(argv: list[str]) -> None:
    """Start ``argv[4:]`` (the file ``argv[3]``) when told, pass signals on, report its end."""
    control, report = int(argv[1]), int(argv[2])
    path, arguments = argv[3], argv[4:]
    os.set_inheritable(control, False)
    os.set_inheritable(report, False)

    reset = _numbers(("SIGPIPE", "SIGXFSZ"))  # the interpreter's own, reset as subprocess does
    for number in sorted(_signal.valid_signals() - _numbers(KEPT)):
        try:
            if _signal.getsignal(number) == _signal.SIG_IGN:
                continue  # ignored when we started: the program inherits that
            _signal.signal(number, _signal.SIG_IGN)
        except (OSError, ValueError, RuntimeError):
            continue  # a number the C library keeps for itself
        reset.add(number)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)

    def child_event(number: int, frame: FrameType | None) -> None:
        pass  # the wake-up pipe carries it to the loop

    _signal.signal(_signal.SIGCHLD, child_event)
    _signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)

    buffer = bytearray()
    queued: list[tuple[str, bytes]] = []
    environment: dict[str, str] | None = None
    while environment is None:
        data = os.read(control, 65536)
        if not data:
            os._exit(0)  # the command is gone, or decided not to start the program
        buffer += data
        for kind, payload in _messages(buffer):
            if kind == "G" and environment is None:
                environment = dict(os.environ)
                for entry in payload.split(b"\0") if payload else ():
                    name, _, value = os.fsdecode(entry).partition("=")
                    environment[name] = value
            else:
                queued.append((kind, payload))
    try:
        pid = os.posix_spawn(path, arguments, environment, setsigdef=sorted(reset))
    except OSError as exc:
        _say(report, f"error {exc.errno or 0}")
        os._exit(127 if exc.errno == 2 else 126)
    # After the spawn, which returns once the program has replaced this address space's copy:
    # whatever mark the exec handed on is at most this one.
    floor = _high_water_kib()
    alive = _say(report, f"pid {pid} {-1 if floor is None else floor}")

    watched = [wake_read, control]
    while True:
        for kind, payload in queued:
            if kind == "S":
                try:  # noqa: SIM105
                    os.kill(pid, payload[0])
                except OSError:
                    pass  # already ended: its end is read next
        queued = []
        if not alive:
            _end_everything(pid)
        ready = select.select(watched, [], [])[0]
        if wake_read in ready:
            try:
                while os.read(wake_read, 4096):
                    pass
            except BlockingIOError:
                pass
            ended = None
            while True:
                got, status, usage = os.wait4(pid, os.WNOHANG | os.WUNTRACED)
                if got == 0:
                    break
                if os.WIFSTOPPED(status):
                    alive = _say(report, f"stop {os.WSTOPSIG(status)}")
                    continue
                ended = status, usage
                break
            if ended is not None:
                status, usage = ended
                peak = usage.ru_maxrss // 1024 if sys.platform == "darwin" else usage.ru_maxrss
                _say(report, f"exit {status} {peak}")
                _exit_as(status)
        if control in ready:
            data = os.read(control, 65536)
            if not data:
                alive = False
                continue
            buffer += data
            queued = _messages(buffer)


if __name__ == "__main__":
    main(sys.argv)
