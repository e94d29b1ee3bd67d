"""Facts read on the machines that did a run's work, for a run an engine made elsewhere.

Ray's ``MLflowLoggerCallback`` makes each trial's run on the driver; a Spark job's run is
made on the driver while executors do the work. The facts are then read in a process the
engine starts on each worker machine (:func:`worker_facts`, run there by the engine's own
scheduling), made into the run's tags (:func:`machine_tags`), and written on the run by
:func:`mlflow_sysmetrics._writing.replace_facts`, replacing whatever the run said of the
machine that made it, with ``sysmetrics.collected_on`` saying where they were read.
"""

from __future__ import annotations

from . import _shared_run
from . import tags as T
from .collectors.distributed import DistInfo

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

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
