"""``mlflow-sysmetrics run -- CMD ...``: a program you do not edit, run inside a counted run.

The command starts a run carrying this machine's tags (or joins the one ``MLFLOW_RUN_ID``
names), hands ``MLFLOW_RUN_ID`` to the program so that its own ``mlflow.start_run()`` logs
into that run, passes the signals it receives on to the program, counts the program and its
children (the run's ledger), writes the ledger when the program exits, ends a run it started
and exits as a shell would: the program's code, ``128 + n`` for a program ended by signal
``n``, 127 for a command not found and 126 for one that cannot be executed.

**The program is resolved first** (``PATH`` as the program gets it): a command not found or
not executable makes no run at all. One that still fails to start ends its run FAILED.

**Its memory peak is its own.** An exec hands the program the high-water mark of the address
space it replaces, which for a program spawned by this command (MLflow imported) is the
command's peak. The program is spawned instead by :mod:`._launcher`, a bare ``python -I -S``
started before the run is made (its start-up overlaps the run's creation), which reports its
own mark as the floor below which the program's peak cannot be told (see :mod:`.ledger.memory`).

**Signals reach the program once.** The launcher and the program have a process group of
their own, so that a signal sent to the command's group (a scheduler's, ``kill -- -PGID``)
reaches the command alone, which passes it on through the launcher, once. When the command is
the terminal's foreground, the terminal is handed to the program's group for its life (and
taken back after): the terminal's Ctrl-C, Ctrl-\\ and Ctrl-Z reach the program directly, and
it may read the terminal. Where the command has a terminal, a program stopped (Ctrl-Z, or a
read from the terminal in the background) stops the command too, so that the shell's job
control sees it; continued (``fg``, ``bg``), the command hands the terminal back to it if it
is the foreground again, and continues it. The handlers are installed before anything else:
a stop signal (:data:`STOPPING`) that arrives before the program is started ends the run
KILLED without starting it; another is passed on once it has started. The command killed
(SIGKILL, which it cannot pass on), the launcher kills the program and its group, so that it
never runs on uncounted. A sender that signals each process by itself rather than a group
reaches the program both directly and through the command: nothing can tell the two apart.

**FINISHED, FAILED or KILLED.** KILLED is for a program ended by a signal someone sends
(:data:`SENT`: SIGKILL included, which is also the kernel's out-of-memory killer's), or one
that exited non-zero after a stop signal was passed on to it; a crash (SIGSEGV, SIGABRT,
SIGBUS, ...) or any other non-zero exit is FAILED.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

from . import _log, ledger
from ._collection import collect
from ._value import Record

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from types import FrameType

    from mlflow.tracking import MlflowClient


def _signals(*names: str) -> tuple[int, ...]:
    return tuple(getattr(signal, name) for name in names if hasattr(signal, name))


#: Signals that ask the program to stop: passed on, and one before the start starts nothing.
STOPPING = _signals("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT")
#: Signals passed on to the program (SIGCONT continues its whole process group).
PASSED_ON = (*STOPPING, *_signals("SIGUSR1", "SIGUSR2", "SIGTSTP", "SIGCONT"))
#: A program ended by one of these was KILLED; by another (a crash: SIGSEGV, SIGABRT) FAILED.
SENT = frozenset((*STOPPING, *_signals("SIGKILL", "SIGUSR1", "SIGUSR2")))
#: The launcher, run by path (``-I -S`` puts no package folder on its path).
LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_launcher.py")


class NotStarted(Exception):
    """The program did not run: the message a shell would give, and the code to exit with.

    ``run_id``: the run made for it, ended FAILED or KILLED; ``None`` when none was made.
    """

    def __init__(self, message: str, code: int, run_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.run_id = run_id


class Ended(Record):
    """How the program ended: the run's status, the code to exit with, and its end as seen."""

    status: str
    code: int
    exit: ledger.ProgramExit | None = None
    #: the program was never started: the shell's message for it, if any
    not_started: NotStarted | None = None


def resolve(name: str, search_path: str | None) -> str:
    """The file ``name`` runs, found as a shell finds it, or :class:`NotStarted` (127 or 126)."""
    import shutil

    if "/" in name:
        if not os.path.exists(name):
            raise NotStarted(f"{name}: No such file or directory", 127)
        if os.path.isdir(name):
            raise NotStarted(f"{name}: Is a directory", 126)
        if not os.access(name, os.X_OK):
            raise NotStarted(f"{name}: Permission denied", 126)
        return name
    folders = search_path if search_path is not None else os.defpath
    found = shutil.which(name, path=folders) if name else None
    if found:
        return found
    # A file of that name without the execute bit: a shell tries it and is refused.
    if name and any(
        os.path.isfile(os.path.join(folder or ".", name)) for folder in folders.split(os.pathsep)
    ):
        raise NotStarted(f"{name}: Permission denied", 126)
    raise NotStarted(f"{name}: command not found", 127)


class _Terminal:
    """The controlling terminal, whose foreground the program's group holds while it runs."""

    def __init__(self) -> None:
        try:
            self.fd: int | None = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError:  # no controlling terminal (a batch job, a service)
            self.fd = None
        self.handed = False

    def hand(self, group: int) -> None:
        """Give the foreground to ``group`` if it is this process's group's now."""
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            if os.tcgetpgrp(self.fd) == os.getpgrp():
                self._set(group)
                self.handed = True

    def take_back(self) -> None:
        """The foreground back to this process's group, if it was handed."""
        if self.fd is not None and self.handed:
            self.handed = False
            with contextlib.suppress(OSError):
                self._set(os.getpgrp())

    def _set(self, group: int) -> None:
        # From a background group tcsetpgrp raises SIGTTOU, which would stop us: block it.
        before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTTOU})
        try:
            os.tcsetpgrp(self.fd, group)  # type: ignore[arg-type]  # checked by the callers
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, before)

    def close(self) -> None:
        self.take_back()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class _Launch:
    """The launcher and its program, and the signals passed to it (see the module).

    Built, it has installed the handlers and started the launcher, which waits to be told
    to start the program (:meth:`run`). :meth:`close` always follows: closing the control
    pipe makes a launcher whose program still runs kill it.
    """

    def __init__(self, path: str, command: Sequence[str], environment: Mapping[str, str]) -> None:
        self.pending: list[int] = []
        self.started = False
        self.ended = False
        self.stop_passed = False
        self.terminal = _Terminal()
        self.handlers: dict[int, signal.Handlers | int | object] = {}
        self.launcher: int | None = None
        self.control = self.reports = -1
        try:
            for number in PASSED_ON:
                if signal.getsignal(number) == signal.SIG_IGN:
                    continue  # ignored by whoever started us (a background job's SIGINT): so be it
                self.handlers[number] = signal.signal(number, self._received)
            self._spawn(path, command, environment)
        except BaseException:
            self.close()
            raise

    def _spawn(self, path: str, command: Sequence[str], environment: Mapping[str, str]) -> None:
        control_read, self.control = os.pipe()
        self.reports, report_write = os.pipe()
        try:
            # The launcher's ends at numbers above both, so that neither dup2 overwrites the other.
            first = max(control_read, report_write) + 1
            argv = [sys.executable, "-I", "-S", LAUNCHER, str(first), str(first + 1), path, *command]
            self.launcher = os.posix_spawn(
                sys.executable,
                argv,
                dict(environment),
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, control_read, first),
                    (os.POSIX_SPAWN_DUP2, report_write, first + 1),
                ],
                setpgroup=0,
            )
        finally:
            os.close(control_read)
            os.close(report_write)

    def _received(self, number: int, frame: FrameType | None) -> None:
        if self.ended:
            return
        if number == getattr(signal, "SIGCONT", None):
            self._continue()
        elif self.started:
            self.stop_passed |= number in STOPPING
            self._pass(number)
        else:
            self.pending.append(number)

    def _pass(self, number: int) -> None:
        with contextlib.suppress(OSError):  # the launcher is gone: its end is being read
            os.write(self.control, b"S" + bytes([number]))

    def _continue(self) -> None:
        """SIGCONT: the program's group continues, holding the terminal if we are its foreground."""
        if not self.started or self.launcher is None:
            return
        self.terminal.hand(self.launcher)
        with contextlib.suppress(OSError):
            os.killpg(self.launcher, signal.SIGCONT)

    def _stopped(self) -> None:
        """The program stopped: with a terminal, so does this process, for the shell to see."""
        if self.terminal.fd is None:
            return
        self.terminal.take_back()
        os.kill(os.getpid(), signal.SIGSTOP)  # continued, SIGCONT's handler continues the program

    def run(self, environment: Mapping[str, str], span: ledger.Span | None) -> Ended:
        """Start the program with ``environment`` added to ours, and follow it to its end."""
        asked = next((number for number in self.pending if number in STOPPING), None)
        if asked is not None:
            name = signal.Signals(asked).name
            return Ended(
                "KILLED", 128 + asked, not_started=NotStarted(f"not started: {name} came first", 128 + asked)
            )
        payload = b"\0".join(os.fsencode(f"{name}={value}") for name, value in environment.items())
        assert self.launcher is not None
        self.terminal.hand(self.launcher)
        _write_all(self.control, b"G" + len(payload).to_bytes(4, "big") + payload)
        self.started = True
        for number in self.pending:
            self._pass(number)
        self.pending.clear()

        program: int | None = None
        floor: int | None = None
        for line in self._reports():
            kind, *fields = line.split()
            if kind == "pid":
                program, floor = int(fields[0]), (int(fields[1]) if int(fields[1]) >= 0 else None)
                if span is not None:
                    span.follow_program(program)
            elif kind == "stop":
                self._stopped()
            elif kind == "exit" and program is not None:
                self.ended = True
                self.terminal.take_back()
                status, peak = int(fields[0]), int(fields[1])
                return self._end(os.waitstatus_to_exitcode(status), ledger.ProgramExit(program, peak, floor))
            elif kind == "error":
                self.ended = True
                self.terminal.take_back()
                number = int(fields[0])
                code = 127 if number == 2 else 126  # ENOENT: as a shell
                return Ended("FAILED", code, not_started=NotStarted(os.strerror(number), code))
        # The launcher ended without saying how the program did (SIGKILL, which nothing
        # can ignore, sent to its group): nothing of the group may outlive it.
        self.ended = True
        self.terminal.take_back()
        with contextlib.suppress(OSError):
            os.killpg(self.launcher, signal.SIGKILL)  # its pid is not free before it is reaped
        _, status = os.waitpid(self.launcher, 0)
        self.launcher = None
        return self._end(os.waitstatus_to_exitcode(status), None)

    def _end(self, code: int, seen: ledger.ProgramExit | None) -> Ended:
        if code < 0:
            return Ended("KILLED" if -code in SENT else "FAILED", 128 - code, seen)
        if code == 0:
            return Ended("FINISHED", 0, seen)
        return Ended("KILLED" if self.stop_passed else "FAILED", code, seen)

    def _reports(self) -> Iterator[str]:
        """The launcher's report lines until it closes its end."""
        buffer = b""
        while True:
            data = os.read(self.reports, 4096)
            if not data:
                return
            buffer += data
            *lines, rest = buffer.split(b"\n")
            buffer = rest
            for line in lines:
                yield line.decode("ascii", "replace")

    def release(self) -> None:
        """End the launcher (and a program it still runs) and give the terminal back.

        The handlers stay, ignoring what comes (:attr:`ended`), until :meth:`close`: the
        run's end is written in between, and a second Ctrl-C must not cut it short.
        """
        self.ended = True
        for descriptor in (self.control, self.reports):
            if descriptor >= 0:
                os.close(descriptor)
        self.control = self.reports = -1
        if self.launcher is not None:
            os.waitpid(self.launcher, 0)
            self.launcher = None
        self.terminal.close()

    def close(self) -> None:
        """:meth:`release`, and the signal handlers put back as they were."""
        self.release()
        for number, handler in self.handlers.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)  # type: ignore[arg-type]
        self.handlers.clear()


def _write_all(descriptor: int, data: bytes) -> None:
    while data:
        data = data[os.write(descriptor, data) :]


def run_program(
    command: Sequence[str],
    client: MlflowClient,
    *,
    experiment_id: str | None = None,
    run_name: str | None = None,
    program: str | None = None,
    environment: Mapping[str, str] | None = None,
) -> tuple[str, int]:
    """Run ``command`` in a run (see the module); the run's id and the exit code to exit with.

    The run it starts is in experiment ``experiment_id`` (MLflow's Default, ``"0"``, when
    ``None``); one it joins is where it is. ``program``: the file ``command[0]`` names, where
    the caller resolved it (:func:`resolve`); ``environment``: the program's (this process's
    by default). Raises :class:`NotStarted` when the program did not run (its code is the one
    to exit with). Once the program has run, what happens to the run (its ledger, its end)
    never changes the code: a store that refuses is a warning.
    """
    from ._writing import close_ledger, tag_run, this_process_node

    if not hasattr(os, "posix_spawn"):
        raise NotStarted("mlflow-sysmetrics run needs a POSIX system (Linux, macOS)", 126)
    path = program or resolve(command[0], os.environ.get("PATH"))
    launch = _Launch(path, command, os.environ if environment is None else environment)
    joined = os.environ.get("MLFLOW_RUN_ID")
    run_id: str | None = None
    span: ledger.Span | None = None
    try:
        if joined:
            run_id = joined
            tag_run(run_id, client)
            node = this_process_node()
        else:
            run = client.create_run(experiment_id or "0", run_name=run_name, tags=collect())
            run_id, node = run.info.run_id, 0
        span = ledger.start() if node is not None else None
        end = launch.run({"MLFLOW_RUN_ID": run_id, "MLFLOW_TRACKING_URI": client.tracking_uri}, span)
    except BaseException:
        launch.close()
        if span is not None:
            with contextlib.suppress(Exception):
                span.finish()  # its guard thread stops
        if run_id is not None and not joined:
            with contextlib.suppress(Exception):
                client.set_terminated(run_id, "FAILED")
        raise
    try:
        launch.release()
        if span is not None and node is not None and end.not_started is None:
            if end.exit is not None:
                span.program_exited(end.exit)
            close_ledger(span, run_id, node, client)
        elif span is not None:
            with contextlib.suppress(Exception):
                span.finish()  # the program never ran: nothing of it to write
        if not joined:
            _end_run(client, run_id, end.status)
    finally:
        launch.close()
    if end.not_started is not None:
        missed = end.not_started
        raise NotStarted(f"{command[0]}: {missed}", end.code, run_id)
    return run_id, end.code


#: Tries at ending a run before the command gives up on it (a second apart).
END_TRIES = 3


def _end_run(client: MlflowClient, run_id: str, status: str) -> None:
    """End the run with ``status``, trying :data:`END_TRIES` times; a store that refuses is one warning."""
    import time

    for attempt in range(END_TRIES):
        try:
            client.set_terminated(run_id, status)
            return
        except Exception as exc:
            if attempt == END_TRIES - 1:
                _log.logger().warning("could not end run %s as %s: %s", run_id, status, exc)
                return
            time.sleep(1.0)
