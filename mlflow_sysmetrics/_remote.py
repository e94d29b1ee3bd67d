"""Facts read on the machines that did a run's work, for a run an engine made elsewhere.

Ray's ``MLflowLoggerCallback`` makes each trial's run on the driver; a Spark job's run is
made on the driver while executors do the work. The facts are then read in a process the
engine starts on each worker machine (:func:`worker_facts`, run there by the engine's own
scheduling), and written on the run in one request (:func:`replace_facts`), replacing
whatever the run said of the machine that made it, with ``sysmetrics.collected_on`` saying
where they were read.
"""

from __future__ import annotations

from . import _shared_run
from . import tags as T
from .collectors.distributed import DistInfo

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from mlflow.tracking import MlflowClient

#: ``sysmetrics.collected_on``: a Ray task on the node a trial ran on.
RAY_NODE = "ray node"
#: ``sysmetrics.collected_on``: a Spark task on each executor machine.
SPARK_EXECUTORS = "spark executors"


def worker_facts() -> dict[str, str]:
    """The facts of the machine this runs on, read in an engine's worker process for a run made elsewhere.

    What this process imported (``sys.frameworks``, and the CUDA, cuDNN and NCCL a
    framework loads) says nothing of the process that did the work: left out.
    """
    from ._collection import collect

    tags = collect()
    for key in T.keys_of("frameworks"):
        tags.pop(key, None)
    return tags


def machine_tags(machines: Sequence[Mapping[str, str]], collected_on: str) -> dict[str, str]:
    """The tags of a run several machines worked for.

    Machine 0's facts under the plain keys, machine ``k``'s as ``sys.node<k>.*`` (the
    shared-run rule), the number of machines, and where the facts were read.
    """
    tags: dict[str, str] = {}
    for index, facts in enumerate(machines):
        job = facts.get(T.SLURM_JOB_ID)  # executors in a SLURM job: the job is the run's too
        info = DistInfo(rank=index, local_rank=0, node_rank=index, nodes=len(machines), slurm_job_id=job)
        tags.update(_shared_run.shared_run_tags(facts, info) or {})
    tags[T.COLLECTED_ON] = collected_on
    return tags


def run_and_client(
    run_id: str | None, tracking_uri: str | None, client: MlflowClient | None, door: str
) -> tuple[str, MlflowClient]:
    """The run a door tags (``run_id``, else the active run) and the client of its store.

    Misuse says how to call the door: a run id that is no string, both ``tracking_uri=`` and
    ``client=``, or no run at all.
    """
    if run_id is not None and (not isinstance(run_id, str) or not run_id.strip()):
        raise TypeError(f"{door} takes a run id string such as run.info.run_id, got {run_id!r}")
    if client is not None and tracking_uri is not None:
        raise TypeError(f"{door} takes tracking_uri= or client=, not both")
    import mlflow

    if run_id is None:
        active = mlflow.active_run()
        if active is None:
            raise ValueError(
                f"{door} has no run to tag: call it inside `with mlflow.start_run():` or pass the run's id"
            )
        run_id = active.info.run_id
    return run_id, client or mlflow.MlflowClient(tracking_uri=tracking_uri)


def replace_facts(client: MlflowClient, run_id: str, tags: Mapping[str, str]) -> dict[str, str]:
    """Write ``tags`` as the run's whole set of system facts: one write, then stale keys deleted.

    A key of the table the run carries and ``tags`` lacks (a fact of the machine that made
    the run, written there by implicit tagging) is deleted, so the run never describes a
    machine that did not do its work. Returns what was written.
    """
    from mlflow.entities import RunTag

    existing = client.get_run(run_id).data.tags
    stale = [
        key
        for key in existing
        if key not in tags
        and T.is_system_key(key)
        and T.plain_key(key) in T.TABLE
        and T.group_of(key) != "Ledger"  # the ledger's tag goes with its metrics: kept
    ]
    client.log_batch(run_id, tags=[RunTag(key, value) for key, value in tags.items()])
    for key in stale:
        client.delete_tag(run_id, key)
    return dict(tags)
