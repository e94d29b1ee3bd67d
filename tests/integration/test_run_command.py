"""``mlflow-sysmetrics run -- CMD`` at its edges, with real processes and the real server.

The program's memory peak is its own (not the command's, which has imported MLflow); a signal
reaches it once, whether sent to the command alone, to the command's process group or typed
at a terminal (a pseudo-terminal here, the command its foreground); a crash is FAILED, a signal
someone sent KILLED; a program that cannot be started makes no run, or ends the one it had
FAILED, and the command exits as a shell would (127, 126).
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import mlflow
import psutil
import pytest

from tests.integration.conftest import Proxy, script_path

pytestmark = pytest.mark.skipif(not hasattr(os, "posix_spawn"), reason="run needs a POSIX system")

#: Counts the signal it is given in argv[2] (a name), for a while after the first, then dies of it.
COUNTER = """
import os, pathlib, signal, sys, time
out, number = pathlib.Path(sys.argv[1]), getattr(signal, sys.argv[2])
got = []
signal.signal(number, lambda n, f: got.append(n))
out.with_suffix(".started").write_text(str(os.getpid()))
while not got:
    time.sleep(0.02)
time.sleep(1.5)  # a second copy, sent by the group and forwarded again, would land in here
out.write_text(str(len(got)))
signal.signal(number, signal.SIG_DFL)
os.kill(os.getpid(), number)
"""

#: Waits until a file exists (the test's go-ahead), and tells the test it has started.
WAITER = """
import os, pathlib, sys, time
marker = pathlib.Path(sys.argv[1])
marker.with_suffix(".started").write_text(str(os.getpid()))
while not marker.exists():
    time.sleep(0.05)
"""


def _environment(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_SYSMETRICS")}
    env["MLFLOW_TRACKING_URI"] = url
    return env


def _start(url: str, folder: Path, *command: str, **options: object) -> subprocess.Popen[str]:
    """The command in a session of its own (its process group is its pid), stderr captured."""
    options.setdefault("stdin", subprocess.DEVNULL)
    options.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [script_path("mlflow-sysmetrics"), "run", "--", *command],
        env=_environment(url),
        cwd=folder,
        text=True,
        start_new_session=True,
        **options,
    )


def _wait_for(path: Path, command: subprocess.Popen[str] | None = None) -> str:
    deadline = time.monotonic() + 180
    while not path.exists():
        assert command is None or command.poll() is None, "the command ended before its program started"
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)
    time.sleep(0.05)  # written in one call, but let the writer close it
    return path.read_text()


def _run_of(stderr: str) -> mlflow.entities.Run:
    """The run the command names on its last words (``run ID (URI); ...`` or ``... (run ID)``)."""
    found = re.search(r"mlflow-sysmetrics: run ([0-9a-f]{32}) |\(run ([0-9a-f]{32})\)", stderr)
    assert found, stderr
    return mlflow.MlflowClient().get_run(found.group(1) or found.group(2))


def _running_runs() -> set[str]:
    client = mlflow.MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments()]
    return {
        r.info.run_id
        for r in client.search_runs(experiments, "attributes.status = 'RUNNING'", max_results=1000)
    }


def test_the_program_s_memory_peak_is_its_own(tracking: Proxy, tmp_path: Path) -> None:
    """A program that touches 50 MB has a peak of 0.05 to 0.1 GB, not the command's 0.25 GB.

    The command has imported MLflow; an exec would hand a program it spawned its own peak.
    """
    program = "b = bytearray(50_000_000); b[::4096] = b'x' * len(b[::4096])"
    command = _start(tracking.url, tmp_path, sys.executable, "-c", program)
    _, stderr = command.communicate(timeout=300)
    assert command.returncode == 0, stderr
    run = _run_of(stderr)
    assert "memory peak" not in run.data.tags["sys.ledger"]
    assert 0.05 <= run.data.metrics["sys.memory_peak_gb"] < 0.1
    own = psutil.Process().memory_info().rss / 1e9  # this test process has imported MLflow too
    assert run.data.metrics["sys.memory_peak_gb"] < own


def test_a_program_below_the_launcher_s_mark_has_no_peak_and_the_reason(
    tracking: Proxy, tmp_path: Path
) -> None:
    """`true` (about 1 MB) stays below the launcher's mark: no peak, and sys.ledger says why."""
    command = _start(tracking.url, tmp_path, "true")
    _, stderr = command.communicate(timeout=300)
    assert command.returncode == 0, stderr
    run = _run_of(stderr)
    assert "sys.memory_peak_gb" not in run.data.metrics
    assert "memory peak: the program's peak is not above the" in run.data.tags["sys.ledger"]


@pytest.mark.parametrize("to_the_group", [False, True], ids=["to-the-command", "to-its-process-group"])
def test_sigterm_reaches_the_program_once(tracking: Proxy, tmp_path: Path, to_the_group: bool) -> None:
    """SIGTERM to the command, or to its whole process group (as schedulers send), arrives once.

    The program dies of it: the command exits 143 and the run is KILLED.
    """
    out = tmp_path / "count"
    command = _start(tracking.url, tmp_path, sys.executable, "-c", COUNTER, str(out), "SIGTERM")
    _wait_for(out.with_suffix(".started"), command)
    if to_the_group:
        os.killpg(command.pid, signal.SIGTERM)
    else:
        os.kill(command.pid, signal.SIGTERM)
    _, stderr = command.communicate(timeout=300)
    assert out.read_text() == "1"
    assert command.returncode == 128 + signal.SIGTERM, stderr
    assert _run_of(stderr).info.status == "KILLED"


def test_a_program_that_exits_non_zero_when_told_to_stop_is_killed(tracking: Proxy, tmp_path: Path) -> None:
    """A program that ends on SIGTERM by exiting 1 (as a training loop that saves first) is KILLED."""
    program = (
        "import pathlib, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda n, f: sys.exit(1))\n"
        "pathlib.Path(sys.argv[1]).write_text('up')\n"
        "time.sleep(300)\n"
    )
    started = tmp_path / "started"
    command = _start(tracking.url, tmp_path, sys.executable, "-c", program, str(started))
    _wait_for(started, command)
    command.send_signal(signal.SIGTERM)
    _, stderr = command.communicate(timeout=300)
    assert command.returncode == 1, stderr
    assert _run_of(stderr).info.status == "KILLED"


@pytest.mark.parametrize(
    ("crash", "number"),
    [("os.abort()", signal.SIGABRT), ("ctypes.string_at(0)", signal.SIGSEGV)],
    ids=["abort", "segfault"],
)
def test_a_crash_is_failed(tracking: Proxy, tmp_path: Path, crash: str, number: int) -> None:
    """A program killed by its own fault (SIGABRT, SIGSEGV) ends the run FAILED, exit 128 + n."""
    program = f"import ctypes, os, resource\nresource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n{crash}\n"
    command = _start(tracking.url, tmp_path, sys.executable, "-c", program)
    _, stderr = command.communicate(timeout=300)
    assert 128 + number == command.returncode, stderr
    assert _run_of(stderr).info.status == "FAILED"


def test_sigterm_before_the_program_starts_starts_nothing(tracking: Proxy, tmp_path: Path) -> None:
    """SIGTERM while the run is being made: the program never starts, the run ends KILLED, exit 143.

    The server's answer to the run's creation is held until the signal has been sent.
    """
    with tracking.holding("/runs/create") as (arrived, release):
        marker = tmp_path / "go"
        command = _start(tracking.url, tmp_path, sys.executable, "-c", WAITER, str(marker))
        assert arrived.wait(180), "the command never asked for its run"
        command.send_signal(signal.SIGTERM)  # pending on the command when this returns
        release.set()
        _, stderr = command.communicate(timeout=300)
    assert command.returncode == 128 + signal.SIGTERM, stderr
    assert "not started: SIGTERM came first" in stderr
    assert not marker.with_suffix(".started").exists()
    assert _run_of(stderr).info.status == "KILLED"


def test_the_program_does_not_outlive_the_command(tracking: Proxy, tmp_path: Path) -> None:
    """The command killed (SIGKILL, which it cannot pass on): its program is killed with it."""
    marker = tmp_path / "never"
    command = _start(tracking.url, tmp_path, sys.executable, "-c", WAITER, str(marker))
    program = psutil.Process(int(_wait_for(marker.with_suffix(".started"), command)))
    command.kill()
    command.communicate(timeout=60)
    deadline = time.monotonic() + 60
    while _alive(program):
        assert time.monotonic() < deadline, "the program outlived the command"
        time.sleep(0.1)


def _alive(process: psutil.Process) -> bool:
    """Running, and not a zombie left for whoever inherited it to reap."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class Terminal:
    """The command as the foreground of a pseudo-terminal it controls, as typed at a shell."""

    HELPER = "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); os.execv(sys.argv[1], sys.argv[1:])"

    def __init__(self, url: str, folder: Path, *command: str) -> None:
        self.master, slave = os.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-c", self.HELPER, script_path("mlflow-sysmetrics"), "run", "--", *command],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=_environment(url),
            cwd=folder,
            start_new_session=True,
        )
        os.close(slave)
        self.output = b""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                ready = select.select([self.master], [], [], 1.0)[0]
                data = os.read(self.master, 4096) if ready else b""
            except OSError:
                return
            if ready and not data:
                return
            self.output += data

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=60)
        self.reader.join(timeout=10)
        os.close(self.master)


#: Reads a line from the terminal (only its foreground may), then counts the SIGINTs it gets.
TERMINAL_PROGRAM = (
    "import os, pathlib, sys\n"
    "out = pathlib.Path(sys.argv[1])\n"
    "tty = os.open('/dev/tty', os.O_RDWR)\n"
    "out.with_suffix('.foreground').write_text(str(os.tcgetpgrp(tty) == os.getpgrp()))\n"
    "out.with_suffix('.line').write_text(sys.stdin.readline())\n"
    "sys.argv[2:] = ['SIGINT']\n" + COUNTER.replace("out, number = pathlib.Path(sys.argv[1]), ", "number = ")
)


def _type_a_line_then_ctrl_c(terminal: Terminal, out: Path, line: bytes) -> None:
    """Type ``line`` for :data:`TERMINAL_PROGRAM` to read, then Ctrl-C: it counts one SIGINT and dies of it."""
    terminal.type(line)
    assert _wait_for(out.with_suffix(".line")) == line.decode()
    _wait_for(out.with_suffix(".started"))
    terminal.type(b"\x03")
    assert _wait_for(out) == "1"
    assert terminal.process.wait(timeout=300) == 128 + signal.SIGINT


def test_the_terminal_s_ctrl_c_reaches_the_program_once(tracking: Proxy, tmp_path: Path) -> None:
    """At a terminal the program is the foreground: it reads what is typed, and Ctrl-C reaches it once."""
    out = tmp_path / "count"
    terminal = Terminal(tracking.url, tmp_path, sys.executable, "-c", TERMINAL_PROGRAM, str(out))
    try:
        assert _wait_for(out.with_suffix(".foreground")) == "True"
        _type_a_line_then_ctrl_c(terminal, out, b"hello\n")
    finally:
        terminal.close()
    stderr = terminal.output.decode(errors="replace")
    assert _run_of(stderr).info.status == "KILLED"


def test_ctrl_z_stops_the_command_and_sigcont_continues_the_program(tracking: Proxy, tmp_path: Path) -> None:
    """Ctrl-Z stops the program, and the command with it, for a shell's job control to see.

    SIGCONT to the command (a shell's `fg`) gives the terminal back to the program, which goes
    on reading it.
    """
    out = tmp_path / "count"
    terminal = Terminal(tracking.url, tmp_path, sys.executable, "-c", TERMINAL_PROGRAM, str(out))
    try:
        _wait_for(out.with_suffix(".foreground"))
        terminal.type(b"\x1a")
        _, status = os.waitpid(terminal.process.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status)
        os.kill(terminal.process.pid, signal.SIGCONT)
        _type_a_line_then_ctrl_c(terminal, out, b"again\n")
    finally:
        terminal.close()


def _run_to_the_end(url: str, folder: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """``mlflow-sysmetrics run *arguments`` in ``folder``, waited for, its output captured."""
    return subprocess.run(
        [script_path("mlflow-sysmetrics"), "run", *arguments],
        env=_environment(url),
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("program", "experiment", "code", "last_words"),
    [
        ("no-such-program-x1", "not-found", 127, "no-such-program-x1: command not found"),
        ("./train.sh", "no-exec", 126, "./train.sh: Permission denied"),
    ],
    ids=["not-found", "no-execute-bit"],
)
def test_a_program_that_cannot_be_started_makes_no_run(
    tracking: Proxy, tmp_path: Path, program: str, experiment: str, code: int, last_words: str
) -> None:
    """`run -- no-such-program` (127), or `run -- ./train.sh` without its execute bit (126).

    A shell's message and code, and no run, nor its experiment.
    """
    script = tmp_path / "train.sh"
    script.write_text("#!/bin/sh\necho trained\n")
    script.chmod(0o644)
    before = _running_runs()
    done = _run_to_the_end(tracking.url, tmp_path, "--experiment", experiment, "--", program)
    assert done.returncode == code
    assert done.stderr.strip().splitlines()[-1] == f"mlflow-sysmetrics: {last_words}"
    assert mlflow.MlflowClient().get_experiment_by_name(experiment) is None
    assert before == _running_runs()


def test_a_program_the_kernel_will_not_execute_ends_its_run_failed(tracking: Proxy, tmp_path: Path) -> None:
    """An executable file that is no program (no #! line, not a binary): 126, its run FAILED."""
    program = tmp_path / "data.bin"
    program.write_bytes(b"\x00\x01 not a program")
    program.chmod(0o755)
    before = _running_runs()
    done = _run_to_the_end(tracking.url, tmp_path, "--", "./data.bin")
    assert done.returncode == 126
    assert "mlflow-sysmetrics: ./data.bin: Exec format error (run " in done.stderr
    assert _run_of(done.stderr).info.status == "FAILED"
    assert before == _running_runs()


def test_the_program_gets_the_users_http_settings_not_the_commands(tracking: Proxy, tmp_path: Path) -> None:
    """The command fails fast on a dead store (no retries) for its own requests; the program keeps MLflow's retries.

    Where the user set a value, the program gets the user's value.
    """
    show = "import os; print(os.environ.get('MLFLOW_HTTP_REQUEST_MAX_RETRIES'), os.environ.get('MLFLOW_HTTP_REQUEST_TIMEOUT'))"
    done = _run_to_the_end(tracking.url, tmp_path, "--", sys.executable, "-c", show)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["None", "None"]
    env = {**_environment(tracking.url), "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "7"}
    mine = subprocess.run(
        [script_path("mlflow-sysmetrics"), "run", "--", sys.executable, "-c", show],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert mine.stdout.split() == ["7", "None"]


def test_a_store_that_refuses_the_runs_end_keeps_the_programs_code(tracking: Proxy, tmp_path: Path) -> None:
    """The program ran and exited 3; the store refuses to end the run: one warning, and the command exits 3."""
    tracking.refuse = b'"status": "FAILED"'
    done = _run_to_the_end(tracking.url, tmp_path, "--", sys.executable, "-c", "raise SystemExit(3)")
    assert done.returncode == 3, done.stderr
    assert "could not end run" in done.stderr
    refused = [
        body for _, path, body in tracking.bodies if path.endswith("/runs/update") and b"FAILED" in body
    ]
    assert len(refused) == 3  # tried three times
