"""The user code of the Spark tests: a TorchDistributor training function, as a user writes it.

It lives in a module of its own so that TorchDistributor's training processes import it by
name (the tests put the repository on the executors' path).
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def train(run_id: str, tracking_uri: str, results: str, root: str | None = None) -> int:
    """One training process: attach to the driver's run, tag it, and really train (gloo all-reduce).

    ``root``: a machine every process replays (so the tasks' executors are one machine).
    """
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    if root is not None:
        os.environ["MLFLOW_SYSMETRICS_ROOT"] = root
    import torch
    import torch.distributed as dist

    from mlflow_sysmetrics import _shared_run, log_sysmetrics
    from mlflow_sysmetrics.collectors import distributed

    written = log_sysmetrics(run_id)
    dist.init_process_group("gloo")
    tensor = torch.ones(1)
    dist.all_reduce(tensor)
    dist.destroy_process_group()
    placed = _shared_run.placed(distributed.current())
    seen = {
        "rank": int(os.environ["RANK"]),
        "task": os.environ.get("GROUP_RANK"),
        "tasks": os.environ.get("GROUP_WORLD_SIZE"),
        "root": os.environ.get("MLFLOW_SYSMETRICS_ROOT"),
        "machine": placed.node_rank,
        "machines": placed.nodes,
        "writes": _shared_run.writing_node(placed) is not None,
        "written": sorted(written),
        "sum": tensor.item(),
    }
    Path(results, f"rank{seen['rank']}.json").write_text(json.dumps(seen))
    return seen["rank"]
