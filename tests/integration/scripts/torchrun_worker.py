"""One rank of a two-node torchrun job that logs into one shared MLflow run.

Rank 0 creates the run and shares its id through torch.distributed; every rank opens it
with sysmetrics_run(run_id=...). Each rank writes what it saw to RESULTS_DIR/rank<N>.json.
"""

from __future__ import annotations

import json
import os
import sys

import mlflow
import torch.distributed as dist

from mlflow_sysmetrics import _shared_run, collect, sysmetrics_run
from mlflow_sysmetrics.collectors import distributed


def main() -> None:
    results = sys.argv[1]
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    shared: list[object] = [None]
    if rank == 0:
        client = mlflow.MlflowClient()
        experiment = mlflow.set_experiment("torchrun").experiment_id
        shared = [client.create_run(experiment, run_name="two-nodes").info.run_id]
    dist.broadcast_object_list(shared, src=0)
    run_id = str(shared[0])
    dist.barrier()
    with sysmetrics_run(run_id=run_id):
        dist.barrier()
    info = distributed.current()
    mine = _shared_run.shared_run_tags(collect(), info)
    writes = mine is not None
    tags = mine if mine is not None else _shared_run.node_view(collect(), info)
    with open(os.path.join(results, f"rank{rank}.json"), "w") as handle:
        json.dump(
            {
                "rank": rank,
                "group_rank": os.environ.get("GROUP_RANK"),
                "local_rank": os.environ.get("LOCAL_RANK"),
                "root": os.environ.get("MLFLOW_SYSMETRICS_ROOT"),
                "run_id": run_id,
                "writes": writes,
                "tags": tags,
            },
            handle,
        )
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
