"""Ray: each Tune trial's run, and a Ray Train job's one run, carries the hardware that did the work.

Drop-in replacements for Ray's MLflow integrations (``ray.air.integrations.mlflow``), and the
primitive behind them:

- :data:`MLflowLoggerCallback`: Ray's callback "will open an MLflow session on the driver and
  not on the trainable": each trial's run is made on the driver (``MlflowClient.create_run``,
  which asks no run context provider), often a CPU-only head node, while the trial ran on a
  worker. Ours reads the facts on the trial's node: at its first result (Tune fills in
  ``node_ip``), one Ray task that asks for no CPU, pinned to that node
  (``NodeAffinitySchedulingStrategy(node_id, soft=False)``, the node id found by
  ``ray.nodes()``), runs :func:`mlflow_sysmetrics.collect` there, and its answer is written
  to the trial's run in one request, with ``sysmetrics.collected_on = ray node``. The answer
  is looked for without waiting at each result, and waited for (bounded) at the trial's end.
- :func:`setup_mlflow`: Ray's, then the run tagged. A Tune trial's run is made in the
  trial's own process and gets that process's facts. A Ray Train job's one run
  (``rank_zero_only=True``, the default: world rank 0 makes it, the others get a no-op)
  gets every node's facts: rank 0 shares the run's id with
  ``ray.train.collective.broadcast_from_rank_zero``, and local rank 0 of each node writes
  its node's keys, node ``k`` as ``sys.node<k>.*`` (Ray Train's node rank). Every worker
  calls it, as Ray's own ``setup_mlflow`` is called.
- :func:`log_node_sysmetrics` / :func:`node_sysmetrics`: the facts of one Ray node, for a run
  made on the driver for work done there (a callback of your own, a task's run).

Nothing here imports Ray until it is used, and nothing initialises it: the helpers act only
in a program that already runs Ray (``ray.init()``); Ray's callback class is imported when
:data:`MLflowLoggerCallback` is first looked up. Tagging never stops a trial or a training
job: what fails is a warning.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from typing import TYPE_CHECKING, Any

# What writes to a run (._writing, which loads the collection and the ledger) is imported
# where a run is written.
from . import _remote, _state
from . import tags as T
from .collectors import distributed

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

__all__ = ["MLflowLoggerCallback", "log_node_sysmetrics", "node_sysmetrics", "setup_mlflow"]

_LOG = logging.getLogger("mlflow_sysmetrics")

#: Seconds to wait for a node's answer (scheduling a task there, starting a worker, collecting).
DEFAULT_TIMEOUT = 30.0


def _running_ray() -> Any:
    """The ``ray`` module when the program already runs Ray, else ``None`` (never imports it)."""
    ray = sys.modules.get("ray")
    if ray is None:
        return None
    try:
        return ray if ray.is_initialized() else None
    except Exception:  # a half-imported or foreign module named ray
        return None


def _require_ray(door: str) -> Any:
    ray = _running_ray()
    if ray is None:
        raise ValueError(
            f"{door} reads the facts of a node of the Ray cluster your program runs: call it after "
            "ray.init() (or inside a Ray task, actor, Tune trial or Train worker)"
        )
    return ray


def _check_timeout(timeout: float, door: str) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"{door}: timeout= takes seconds as a number, got {timeout!r}")
    if not (math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"{door}: timeout= takes a positive number of seconds, got {timeout!r}")
    return float(timeout)


def _nodes_at(ray: Any, node_ip: str) -> list[str]:
    """The ids of the live Ray nodes with this address (several raylets may share one host)."""
    return [
        str(n["NodeID"]) for n in ray.nodes() if n.get("Alive") and n.get("NodeManagerAddress") == node_ip
    ]


def _node_task() -> dict[str, str]:
    """Runs on the node, in a Ray worker process: the node's facts."""
    return _remote.worker_facts()


#: Ray's remote function around :func:`_node_task`, made once.
_made = _state.memo()


def _submit(node_id: str) -> Any:
    """Start reading the facts on node ``node_id``; the ``ObjectRef`` of the answer."""
    ray = _require_ray("node_sysmetrics()")
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    task = _made.get("task")
    if task is None:
        # No CPU asked: a node whose every CPU a trial holds still answers; never retried.
        task = _made["task"] = ray.remote(num_cpus=0, max_retries=0)(_node_task)
    return task.options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
        name="mlflow_sysmetrics.collect",
    ).remote()


def _check_node(node_ip: str | None, node_id: str | None, door: str) -> None:
    if (node_ip is None) == (node_id is None):
        raise TypeError(f"{door} takes one of node_ip= (as Tune's results say it) or node_id=, not both")
    for name, value in (("node_ip", node_ip), ("node_id", node_id)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise TypeError(f"{door}: {name}= takes a string, got {value!r}")


def _resolve_node(ray: Any, node_ip: str | None, node_id: str | None, door: str) -> str:
    if node_id is not None:
        return node_id
    found = _nodes_at(ray, str(node_ip))
    if len(found) != 1:
        raise ValueError(
            f"{door}: {len(found)} live Ray nodes have the address {node_ip!r}; pass node_id= "
            "(ray.get_runtime_context().get_node_id() on that node)"
        )
    return found[0]


def node_sysmetrics(
    *, node_ip: str | None = None, node_id: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> dict[str, str]:
    """The facts of one node of the running Ray cluster, read there by a Ray task.

    Name the node by ``node_ip=`` (as Tune's results give it, ``result["node_ip"]``) or
    ``node_id=``. The task asks for no CPU and is pinned to the node. What a process
    imported (``sys.frameworks`` and the libraries a framework loads) is left out: the
    task's process is not the one that worked. A node that gives no answer in
    ``timeout`` seconds: :class:`TimeoutError`.
    """
    door = "node_sysmetrics()"
    _check_node(node_ip, node_id, door)
    timeout = _check_timeout(timeout, door)
    ray = _require_ray(door)
    ref = _submit(_resolve_node(ray, node_ip, node_id, door))
    ready, _ = ray.wait([ref], timeout=timeout)
    if not ready:
        ray.cancel(ref, force=True)
        raise TimeoutError(f"the Ray node gave no answer in {timeout:g} s")
    facts: dict[str, str] = ray.get(ref)
    return facts


def log_node_sysmetrics(
    run_id: str,
    *,
    node_ip: str | None = None,
    node_id: str | None = None,
    tracking_uri: str | None = None,
    client: MlflowClient | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, str]:
    """Tag a run made away from its work (on the Ray driver) with the facts of the node that did it.

    The facts (:func:`node_sysmetrics`) replace whatever system tags the run carried (the
    driver's, where implicit tagging wrote them), in one write, with
    ``sysmetrics.collected_on = ray node``. ``tracking_uri=`` or ``client=`` name the store.
    Returns what was written.
    """
    door = "log_node_sysmetrics()"
    if not isinstance(run_id, str):
        raise TypeError(f"{door} takes a run id string such as run.info.run_id, got {run_id!r}")
    _check_node(node_ip, node_id, door)
    from . import _writing

    run_id, client = _writing.run_and_client(run_id, tracking_uri, client, door)
    facts = node_sysmetrics(node_ip=node_ip, node_id=node_id, timeout=timeout)
    return _writing.replace_facts(client, run_id, {**facts, T.COLLECTED_ON: _remote.RAY_NODE})


# -- setup_mlflow ----------------------------------------------------------------------------


def setup_mlflow(
    config: dict[str, Any] | None = None, *args: Any, every_node: bool = False, **kwargs: Any
) -> Any:
    """Ray's ``setup_mlflow`` (same arguments, same return), then the run tagged with its hardware.

    In a Tune trainable: the trial's run, with the facts of the trial's process. In a Ray
    Train worker with ``rank_zero_only=True`` (Ray's default): the job's one run, made by
    world rank 0, with rank 0's node's facts; with ``every_node=True``, every node's facts
    (node 0 plain, node ``k`` as ``sys.node<k>.*``, Ray Train's node rank). ``every_node=True``
    is a promise that **every** worker calls ``setup_mlflow``, as Ray's examples do: the run's
    id travels from rank 0 by a collective every worker joins (Ray Train has no other way to
    share it), so a worker that skipped the call would leave the others' next collective
    (``ray.train.report``) paired with the wrong one. Without it nothing waits on another
    worker. With ``rank_zero_only=False`` each worker tags its own run.
    """
    from ray.air.integrations.mlflow import setup_mlflow as ray_setup_mlflow

    module = ray_setup_mlflow(config, *args, **kwargs)
    try:
        import inspect

        given = inspect.signature(ray_setup_mlflow).bind(config, *args, **kwargs).arguments
        _tag_after_setup(
            rank_zero_only=bool(given.get("rank_zero_only", True)),
            every_node=every_node,
            tracking_token=given.get("tracking_token"),
        )
    except Exception as exc:  # tagging never stops a trial or a training job
        _LOG.warning("could not tag the MLflow run with system tags: %s", exc)
    return module


def _train_context() -> Any:
    """Ray Train's context in a Train worker; ``None`` in a Tune trial or elsewhere."""
    try:  # what Ray's setup_mlflow asks first (not a public name: a Ray without it is no Tune trial)
        from ray.tune.trainable.trainable_fn_utils import _in_tune_session

        if _in_tune_session():
            return None
    except ImportError:
        pass
    try:
        import ray.train

        context = ray.train.get_context()
        context.get_world_size()
    except Exception:  # RuntimeError outside a Train worker
        return None
    return context


def _tag_after_setup(rank_zero_only: bool, every_node: bool, tracking_token: str | None) -> None:
    if _running_ray() is None:
        return
    train = _train_context()
    if train is not None and rank_zero_only and train.get_world_size() > 1:
        _tag_shared_train_run(train, every_node, tracking_token)
        return
    import mlflow

    active = mlflow.active_run()
    if active is not None:  # a trial's or a worker's own run: this process did its work
        _tag_own_run(mlflow.MlflowClient(), active.info.run_id)


def _tag_own_run(client: MlflowClient, run_id: str) -> None:
    from . import _writing
    from ._collection import collect

    _warn_if_kept(run_id, _writing.write_tags(client, run_id, collect(), 0, overwrite=False).kept)


def _tag_shared_train_run(context: Any, every_node: bool, tracking_token: str | None) -> None:
    """A Ray Train worker: its node's keys on rank 0's run, by the node's local rank 0.

    Only rank 0 writes unless ``every_node``; then rank 0 shares the run's id with the
    others by a collective every worker joins.
    """
    import mlflow

    rank = context.get_world_rank()
    made = None
    if rank == 0:
        active = mlflow.active_run()
        made = (mlflow.get_tracking_uri(), active.info.run_id) if active is not None else None
    if every_node:
        from ray.train.collective import broadcast_from_rank_zero

        made = broadcast_from_rank_zero(made)  # a barrier: every worker reaches this line
    if made is None:
        return
    tracking_uri, run_id = made
    if rank != 0 and tracking_token and not os.environ.get("MLFLOW_TRACKING_TOKEN"):
        os.environ["MLFLOW_TRACKING_TOKEN"] = tracking_token  # as Ray sets it on rank 0 only
    info = distributed.DistInfo(
        rank=rank,
        local_rank=context.get_local_rank(),
        world_size=context.get_world_size(),
        node_rank=context.get_node_rank(),
        slurm_job_id=distributed.current().slurm_job_id,
        launcher="ray_train",
    )
    from . import _writing
    from ._collection import collect

    mine, node = _writing.node_tags(collect(), info)
    if node is None:
        return
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    # Rank 0 made the run in this very process: what implicit tagging wrote there (its rank
    # included) is replaced by what its node writes on a shared run.
    _warn_if_kept(run_id, _writing.write_tags(client, run_id, mine, node, overwrite=rank == 0).kept)


def _warn_if_kept(run_id: str, kept: dict[str, tuple[str | None, str | None]]) -> None:
    if kept:
        from ._writing import kept_summary

        _LOG.warning("run %s already carries other system tags (%s); kept them", run_id, kept_summary(kept))


# -- MLflowLoggerCallback --------------------------------------------------------------------


def _callback_class() -> type[Any]:
    from ray.air.integrations.mlflow import MLflowLoggerCallback as RayCallback

    class MLflowLoggerCallback(RayCallback):  # type: ignore[misc]
        """Ray's ``MLflowLoggerCallback``, each trial's run tagged with the hardware of its node.

        Same arguments as Ray's, and ``sysmetrics_timeout``: seconds to wait at a trial's
        end for its node's answer (default 30).
        """

        def __init__(self, *args: Any, sysmetrics_timeout: float = DEFAULT_TIMEOUT, **kwargs: Any) -> None:
            self.sysmetrics_timeout = _check_timeout(sysmetrics_timeout, "MLflowLoggerCallback()")
            super().__init__(*args, **kwargs)
            self._sysmetrics_pending: dict[Any, Any] = {}
            self._sysmetrics_done: set[Any] = set()

        def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
            super().log_trial_result(iteration, trial, result)
            self._sysmetrics_start(trial, result.get("node_ip"))
            self._sysmetrics_write(wait_for=None)

        def log_trial_end(self, trial: Any, failed: bool = False) -> None:
            last = getattr(trial, "last_result", None) or {}
            self._sysmetrics_start(trial, last.get("node_ip"))
            self._sysmetrics_write(wait_for=trial)
            super().log_trial_end(trial, failed=failed)

        def _sysmetrics_start(self, trial: Any, node_ip: Any) -> None:
            if trial in self._sysmetrics_pending or trial in self._sysmetrics_done or not node_ip:
                return
            self._sysmetrics_done.add(trial)  # one try per trial
            try:
                found = _nodes_at(_require_ray("MLflowLoggerCallback"), str(node_ip))
                if len(found) != 1:
                    _LOG.warning(
                        "no system tags for %s: %d live Ray nodes have its address %s",
                        trial,
                        len(found),
                        node_ip,
                    )
                    return
                self._sysmetrics_pending[trial] = _submit(found[0])
            except Exception as exc:
                _LOG.warning("no system tags for %s: %s", trial, exc)

        def _sysmetrics_write(self, wait_for: Any) -> None:
            ray = _running_ray()
            if ray is None:
                return
            for trial, ref in list(self._sysmetrics_pending.items()):
                waited = self.sysmetrics_timeout if trial is wait_for else 0
                try:
                    ready, _ = ray.wait([ref], timeout=waited)
                    if not ready:
                        if trial is wait_for:
                            del self._sysmetrics_pending[trial]
                            ray.cancel(ref, force=True)
                            _LOG.warning(
                                "no system tags for %s: its node gave no answer in %g s", trial, waited
                            )
                        continue
                    del self._sysmetrics_pending[trial]
                    facts = {**ray.get(ref), T.COLLECTED_ON: _remote.RAY_NODE}
                    from mlflow.tracking import MlflowClient

                    from . import _writing

                    client = MlflowClient(tracking_uri=self.tracking_uri)
                    # The run is Ray's: made by this callback on the driver for this trial.
                    _writing.replace_facts(client, self._trial_runs[trial], facts)
                except Exception as exc:
                    self._sysmetrics_pending.pop(trial, None)
                    _LOG.warning("could not tag the run of %s with system tags: %s", trial, exc)

    MLflowLoggerCallback.__module__ = __name__
    MLflowLoggerCallback.__qualname__ = "MLflowLoggerCallback"
    return MLflowLoggerCallback


if TYPE_CHECKING:
    #: Ray's ``MLflowLoggerCallback`` whose trial runs carry their node's hardware (imports Ray).
    MLflowLoggerCallback: type[Any]


def __getattr__(name: str) -> Any:
    if name == "MLflowLoggerCallback":
        made = _callback_class()
        globals()[name] = made
        return made
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
