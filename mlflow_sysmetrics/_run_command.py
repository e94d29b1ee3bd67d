"""``mlflow-sysmetrics run -- CMD ...``: a program you do not edit, run inside a counted run.

The command starts a run carrying this machine's tags (or joins the one ``MLFLOW_RUN_ID``
names), hands ``MLFLOW_RUN_ID`` to the program so that its own ``mlflow.start_run()`` logs
into that run, passes the signals it receives on to the program, counts the program and its
children (the run's ledger), writes the ledger when the program exits, ends a run it started
(FINISHED, or FAILED or KILLED as the program ended) and exits with the program's code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from . import ledger
from ._engine import collect

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType

    from mlflow.tracking import MlflowClient

#: Signals passed on to the program (SIGINT only when it did not reach the program already).
FORWARDED = tuple(
    getattr(signal, name)
    for name in ("SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
    if hasattr(signal, name)
)


def _terminal_sends_sigint_to_the_program() -> bool:
    """Whether a Ctrl-C at the terminal reaches the program itself (it shares our process group)."""
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (OSError, AttributeError, ValueError):
        return False


def run_program(
    command: Sequence[str],
    client: MlflowClient,
    *,
    experiment_id: str | None = None,
    run_name: str | None = None,
) -> tuple[str, int]:
    """Run ``command`` in a run (see the module); the run's id and the exit code to exit with.

    The run it starts is in experiment ``experiment_id`` (MLflow's Default, ``"0"``, when
    ``None``); one it joins is where it is.
    """
    from .runs import _this_process_node, close_ledger, tag_run

    joined = os.environ.get("MLFLOW_RUN_ID")
    if joined:
        run_id = joined
        tag_run(run_id, client)
        node = _this_process_node()
    else:
        run = client.create_run(experiment_id or "0", run_name=run_name, tags=collect())
        run_id, node = run.info.run_id, 0
    span = ledger.start() if node is not None else None
    environment = dict(os.environ, MLFLOW_RUN_ID=run_id, MLFLOW_TRACKING_URI=client.tracking_uri)
    program = subprocess.Popen(list(command), env=environment)
    if span is not None:
        span.follow_program(program.pid)

    def forward(number: int, frame: FrameType | None) -> None:
        if program.poll() is None:
            program.send_signal(number)

    passed_on = [*FORWARDED]
    if hasattr(signal, "SIGINT") and not _terminal_sends_sigint_to_the_program():
        passed_on.append(signal.SIGINT)
    elif hasattr(signal, "SIGINT"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the program got it too: it decides
    before = {number: signal.signal(number, forward) for number in passed_on}
    try:
        # wait4 rather than wait: the program's peak resident set comes with its end
        _, wait_status, usage = os.wait4(program.pid, 0)
        code = program.returncode = os.waitstatus_to_exitcode(wait_status)
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)
        if hasattr(signal, "SIGINT") and signal.SIGINT not in before:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    if span is not None and node is not None:
        import resource

        # The program started from this process, whose mark an exec hands on: its own peak
        # is known only above this process's.
        floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        span.program_exited(ledger.ProgramExit(program.pid, usage.ru_maxrss, floor))
        close_ledger(span, run_id, node, client)
    if not joined:
        status = "FINISHED" if code == 0 else "KILLED" if code < 0 else "FAILED"
        client.set_terminated(run_id, status)
    return run_id, 128 - code if code < 0 else code
