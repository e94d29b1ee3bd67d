"""Running an outside command the safe way.

No shell; the program is resolved on ``PATH`` first (so a missing tool is a cheap miss, not
a fork); the command has a timeout and is killed, with its process group, when it passes;
output is read up to a size bound and decoded leniently. ``selectors`` is imported by the
reader alone: on Windows it is not needed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence

from . import _platform

#: Most bytes of output kept from one command.
MAX_OUTPUT_BYTES = 1024 * 1024


class CommandError(RuntimeError):
    """A command ran but gave no usable answer (non-zero exit, too much output)."""


def run(
    args: Sequence[str],
    timeout: float,
    *,
    max_bytes: int = MAX_OUTPUT_BYTES,
) -> str:
    """Run ``args`` (program name first) and return its standard output as text.

    Raises :class:`FileNotFoundError` when the program is not on ``PATH``,
    :class:`TimeoutError` when it gives no answer within ``timeout`` seconds (it is killed),
    and :class:`CommandError` when it exits non-zero or prints more than ``max_bytes``.
    """
    program = args[0]
    path = shutil.which(program)
    if path is None:
        raise FileNotFoundError(f"{program} is not on PATH")
    name = os.path.basename(program)
    if timeout <= 0:
        raise TimeoutError(f"{name} was not started: no time left")
    env = dict(os.environ, LC_ALL="C", LANG="C")
    if _platform.WINDOWS:  # pragma: no cover - exercised on Windows only
        return _run_windows([path, *args[1:]], timeout, max_bytes, name, env)
    proc = subprocess.Popen(
        [path, *args[1:]],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        close_fds=True,
        start_new_session=True,  # so a timeout kills the tool's own children too
    )
    try:
        out, err, too_big = _read_bounded(proc, time.monotonic() + timeout, max_bytes)
    except TimeoutError:
        _kill(proc)
        raise TimeoutError(f"{name} gave no answer in {timeout:.2g} s") from None
    except BaseException:
        _kill(proc)
        raise
    if too_big:
        _kill(proc)
    return _answer(name, None if too_big else proc.wait(), out, err, max_bytes)


def _answer(name: str, status: int | None, out: bytes, err: bytes, max_bytes: int) -> str:
    """The output as text, or the error that says why there is none (``status`` None: too big)."""
    if status is None or len(out) > max_bytes:
        raise CommandError(f"{name} printed more than {max_bytes} bytes")
    if status != 0:
        detail = _first_line(err) or _first_line(out)
        suffix = f": {detail}" if detail else ""
        raise CommandError(f"{name} exited with status {status}{suffix}")
    return out.decode("utf-8", errors="replace")


def _read_bounded(
    proc: subprocess.Popen[bytes], deadline: float, max_bytes: int
) -> tuple[bytes, bytes, bool]:
    import selectors

    stdout, stderr = proc.stdout, proc.stderr
    if stdout is None or stderr is None:  # pragma: no cover - both are pipes above
        raise RuntimeError("command output was not captured")
    buffers: dict[int, bytearray] = {stdout.fileno(): bytearray(), stderr.fileno(): bytearray()}
    with selectors.DefaultSelector() as selector:
        for fd in buffers:
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            for key, _ in selector.select(remaining):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                buffer = buffers[key.fd]
                buffer.extend(chunk)
                if len(buffer) > max_bytes:
                    return bytes(buffers[stdout.fileno()]), b"", True
    remaining = deadline - time.monotonic()
    try:
        proc.wait(timeout=max(remaining, 0.001))
    except subprocess.TimeoutExpired:
        raise TimeoutError from None
    return bytes(buffers[stdout.fileno()]), bytes(buffers[stderr.fileno()]), False


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (OSError, AttributeError):
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=1.0)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def _first_line(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace").strip()
    return text.splitlines()[0][:200] if text else ""


def _run_windows(  # pragma: no cover - exercised on Windows only
    argv: list[str],
    timeout: float,
    max_bytes: int,
    name: str,
    env: dict[str, str],
) -> str:
    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        creationflags=flags,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise TimeoutError(f"{name} gave no answer in {timeout:.2g} s") from None
    return _answer(name, proc.returncode, out, err, max_bytes)
