"""The user code of the Ray tests: a Tune trainable and a Ray Train loop, as a user writes them.

They live in a module of their own so that Ray's workers import them by name (the tests
put the repository on the workers' path).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import ray.train
from ray import tune

from mlflow_sysmetrics.ray import setup_mlflow


def trainable(config: dict[str, Any]) -> None:
    """A Tune trial that makes its own run with setup_mlflow and reports twice."""
    setup_mlflow(
        config,
        tracking_uri=config["uri"],
        experiment_name=config["experiment"],
        run_name=f"x{config['x']}",
        create_experiment_if_not_exists=True,
    )
    for step in range(2):
        tune.report({"score": config["x"] * step, "root": os.environ.get("MLFLOW_SYSMETRICS_ROOT", "")})


def train_loop(config: dict[str, Any]) -> None:
    """One Ray Train worker: implicit tagging on (as a cluster-wide export would set it)."""
    os.environ["MLFLOW_RUN_CONTEXT_PROVIDER"] = "sysmetrics"
    import mlflow
    import torch.distributed as dist

    setup_mlflow(
        config,
        config["uri"],  # Ray's own order: the tracking URI second
        experiment_name=config["experiment"],
        run_name="torch-trainer",
        create_experiment_if_not_exists=True,
        every_node=True,  # every worker calls it
    )
    context = ray.train.get_context()
    tensor = __import__("torch").ones(1)
    dist.all_reduce(tensor)  # the gloo group Ray Train set up: the job really runs
    active = mlflow.active_run()
    seen = {
        "rank": context.get_world_rank(),
        "node_rank": context.get_node_rank(),
        "root": os.environ.get("MLFLOW_SYSMETRICS_ROOT"),
        "env": {
            k: os.environ.get(k) for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "NODE_RANK", "GROUP_RANK")
        },
        "run_id": active.info.run_id if active is not None else None,
        "sum": tensor.item(),
    }
    Path(config["results"], f"rank{seen['rank']}.json").write_text(json.dumps(seen))
    ray.train.report({"rank": seen["rank"]})
