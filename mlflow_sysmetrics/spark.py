"""Spark: a run carries the machines that did its work, not the driver that made it.

- **TorchDistributor.** Each Spark task runs torchrun as a "node" of its own
  (``RANK`` = ``NODE_RANK`` = its partition id), so two tasks on one machine would be two
  nodes with the same hardware. Nothing to call here: the training function attaches to
  the run the driver made (``sysmetrics_run(run_id=...)`` or ``log_sysmetrics(run_id)``,
  on every process, as in any multi-node job); the tasks agree through the store their
  torchrun agents already share on which of them share a machine, and one process per
  machine writes its facts (machine ``k`` as ``sys.node<k>.*``), with ``sys.dist.nodes``
  counting machines and whatever the driver's implicit tagging wrote replaced.
- **Work the driver hands to executors** (Spark ML, pandas UDFs, ``mapInPandas``):
  :func:`log_executor_sysmetrics` tags the driver's run with the facts of every executor
  machine, read there by one small Spark job, in one write, with
  ``sysmetrics.collected_on = spark executors``; :func:`executor_sysmetrics` returns them.

Nothing here imports PySpark until it is called, and nothing starts a session: the helpers
use the active ``SparkSession`` your program made (or the one passed as ``spark=``). The
executors' Python needs ``mlflow_sysmetrics`` installed, as any function they run needs its
modules.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

# What writes to a run (._writing, which loads the collection and the ledger) is imported
# where a run is written.
from . import _remote

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

__all__ = ["executor_sysmetrics", "log_executor_sysmetrics"]

#: The description the Spark UI shows for the job that reads the executors' facts.
JOB_DESCRIPTION = "mlflow-sysmetrics: the facts of each executor machine"
#: Rounds of tasks (n, 2n, 4n for n executors) run until every executor has answered.
ROUNDS = 3


def _session(spark: Any, door: str) -> Any:
    """The session to use: ``spark``, else the active one the program made; never a new one."""
    if spark is None:
        if "pyspark" not in sys.modules:
            raise ValueError(
                f"{door} reads the executors of the SparkSession your program started: call it after "
                "SparkSession.builder...getOrCreate(), or pass spark=your_session"
            )
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession()
        if spark is None:
            raise ValueError(f"{door} found no active SparkSession in this thread: pass spark=your_session")
    if type(spark).__module__.startswith("pyspark.sql.connect"):
        raise ValueError(
            f"{door} needs a classic SparkSession with a SparkContext; a Spark Connect session has none"
        )
    if not hasattr(type(spark), "sparkContext") or not hasattr(spark, "stop"):
        raise TypeError(f"{door}: spark= takes a pyspark.sql.SparkSession, got {type(spark).__name__}")
    try:
        return spark.sparkContext
    except Exception as exc:  # Spark Connect: no SparkContext on the client
        raise ValueError(
            f"{door} needs a classic SparkSession with a SparkContext; a Spark Connect session has "
            f"none ({type(exc).__name__})"
        ) from exc


def _executor_count(context: Any) -> int:
    """Executors registered now (the driver, listed too, left out); at least one."""
    tracker = context.statusTracker()
    infos = getattr(tracker, "getExecutorInfos", None)
    if infos is not None:  # PySpark 4
        return max(len(infos()) - 1, 1)
    listed = context._jsc.sc().getExecutorMemoryStatus().size()  # PySpark 3: Spark's own count
    return max(int(listed) - 1, 1)


def _probe(_: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """Runs in an executor's Python worker: which machine and executor it is, and the facts."""
    import os
    import socket

    from mlflow_sysmetrics import _machines, _remote

    host = socket.gethostname()
    # A Python worker is a child of its executor's daemon (or of the executor itself).
    yield {
        "machine": _machines.machine_key(),
        "host": host,
        "executor": f"{host}:{os.getppid()}",
        "facts": _remote.worker_facts(),
    }


def executor_sysmetrics(spark: Any = None) -> list[dict[str, str]]:
    """The facts of each executor machine of the session, one dict per machine.

    One Spark job of one task per executor (more rounds, with twice the tasks, while an
    executor has not answered yet: Spark places tasks where it likes). Executors on one
    machine answer once. Machines in the order of their host names (a tie: of their machine
    keys). What the answering process imported is left out (``sys.frameworks``): it is not
    the process that worked.
    """
    context = _session(spark, "executor_sysmetrics()")
    executors = _executor_count(context)
    answers: list[dict[str, Any]] = []
    previous = context.getLocalProperty("spark.job.description")
    context.setJobDescription(JOB_DESCRIPTION)
    try:
        for round_ in range(ROUNDS):
            tasks = executors * 2**round_
            answers += context.parallelize(range(tasks), tasks).mapPartitions(_probe).collect()
            if len({answer["executor"] for answer in answers}) >= executors:
                break
    finally:
        context.setLocalProperty("spark.job.description", previous)
    machines: dict[str, dict[str, Any]] = {}
    for answer in answers:
        machines.setdefault(answer["machine"], answer)
    ordered = sorted(machines.values(), key=lambda answer: (answer["host"], answer["machine"]))
    return [dict(answer["facts"]) for answer in ordered]


def log_executor_sysmetrics(
    run_id: str | None = None,
    *,
    spark: Any = None,
    tracking_uri: str | None = None,
    client: MlflowClient | None = None,
) -> dict[str, str]:
    """Tag a run the Spark driver made with the facts of every executor machine, in one write.

    For work the driver hands to executors (Spark ML, pandas UDFs): machine 0's facts under
    the plain keys, machine ``k``'s as ``sys.node<k>.*``, ``sys.dist.nodes`` the number of
    machines and ``sysmetrics.collected_on = spark executors``. What the run said of the
    driver (implicit tagging at its start) is replaced: the driver did not do the work.
    Without ``run_id`` the active run is tagged. ``spark=`` names the session (default: the
    active one), ``tracking_uri=`` or ``client=`` the store. Returns what was written.
    """
    from . import _writing

    run_id, client = _writing.run_and_client(run_id, tracking_uri, client, "log_executor_sysmetrics()")
    machines = executor_sysmetrics(spark)
    return _writing.replace_facts(client, run_id, _remote.machine_tags(machines, _remote.SPARK_EXECUTORS))
