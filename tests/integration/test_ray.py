"""Ray, for real: a two-node local cluster whose nodes replay two machines, and a real MLflow server.

Ray's own ``ray.cluster_utils.Cluster`` starts a head node and a second node on this machine,
each with one CPU; node 1 listens on 127.0.0.2, so that the two nodes have two addresses (Tune
says where a trial ran by address, and Ray Train numbers nodes by address). Each node's
workers replay another machine through ``MLFLOW_SYSMETRICS_ROOT`` (node 0 a DGX H100, node 1
an MI300X box) and the driver, this test process, a CPU-only ECS task: which facts landed
on which run tells which process read them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest

from tests.conftest import fixture_root
from tests.integration.conftest import REPO, Proxy, _forget_mlflow_state
from tests.integration.engines import DEADLINE, engine_marks, machine_facts, require

pytestmark = engine_marks("ray")

#: The machine each node's workers replay, by node, and the driver's.
NODE_MACHINES = ("dgx-h100-8x", "amd-mi300x")
DRIVER_MACHINE = "ecs-fargate"
SECOND_NODE_IP = "127.0.0.2"


class Nodes:
    """The running cluster: each node's address and the machine it replays."""

    def __init__(self, machines: dict[str, str]) -> None:
        self.machines = machines  # node address -> replayed machine

    def facts(self, address: str) -> dict[str, str]:
        """What ``collect()`` says of the machine the node at ``address`` replays."""
        return machine_facts(self.machines[address])


@pytest.fixture(scope="module")
def ray_nodes() -> Iterator[Nodes]:
    """Two Ray nodes of one CPU each, one module's worth, shut down after (no process left)."""
    ray = require("ray")
    from ray.cluster_utils import Cluster

    roots = [str(fixture_root(machine)) for machine in NODE_MACHINES]
    quiet = {"RAY_DEDUP_LOGS": "0", "OMP_NUM_THREADS": "1", **DEADLINE}
    # Ray keeps every node's session folder, and the address of the last cluster, in
    # $RAY_TMPDIR/ray (by default /tmp/ray) and leaves them there: here that is a folder made
    # for this cluster in the system's temporary folder, removed after. Not under pytest's
    # folder: Ray's sockets live in it, and a socket's path may not pass 107 bytes.
    sessions = tempfile.mkdtemp(prefix="ray-")
    os.mkdir(os.path.join(sessions, "ray"))
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("RAY_TMPDIR", sessions)
            cluster = Cluster(
                initialize_head=True,
                head_node_args={
                    "num_cpus": 1,
                    "include_dashboard": False,
                    "env_vars": {"MLFLOW_SYSMETRICS_ROOT": roots[0], **quiet},
                },
            )
            try:
                cluster.add_node(
                    num_cpus=1,
                    node_ip_address=SECOND_NODE_IP,
                    env_vars={"MLFLOW_SYSMETRICS_ROOT": roots[1], **quiet},
                )
                cluster.wait_for_nodes()
                # The workers import the tests' user code (tests/integration/scripts) by name.
                ray.init(
                    address=cluster.address,
                    include_dashboard=False,
                    logging_level="ERROR",
                    log_to_driver=False,
                    runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}},
                )
                addresses = sorted(
                    (node["NodeManagerAddress"] for node in ray.nodes() if node["Alive"]),
                    key=lambda address: address == SECOND_NODE_IP,
                )
                assert len(addresses) == 2, addresses
                assert addresses[1] == SECOND_NODE_IP, addresses
                yield Nodes(dict(zip(addresses, NODE_MACHINES, strict=True)))
            finally:
                ray.shutdown()
                cluster.shutdown()
    finally:
        shutil.rmtree(sessions, ignore_errors=True)


@pytest.fixture
def driver_machine(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The test process, Ray's driver, replays a CPU-only ECS task: its facts must land nowhere."""
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(fixture_root(DRIVER_MACHINE)))
    for name, value in DEADLINE.items():
        monkeypatch.setenv(name, value)
    return machine_facts(DRIVER_MACHINE)


def _system_tags(run: Any) -> dict[str, str]:
    return {k: v for k, v in run.data.tags.items() if k.startswith(("sys.", "sysmetrics."))}


def _runs(experiment: str) -> list[Any]:
    client = mlflow.MlflowClient()
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment}"
    return list(client.search_runs([found.experiment_id]))


def _same_machine(tags: dict[str, str], facts: dict[str, str]) -> None:
    """The run's plain keys tell the machine ``facts`` describe (the facts that never vary)."""
    for key in ("sys.cpu", "sys.cpu_cores", "sys.memory_gb", "sys.gpu", "sys.gpu_count", "sys.os"):
        assert tags.get(key) == facts.get(key), (key, tags.get(key), facts.get(key))


@pytest.fixture(scope="module")
def tune_search(ray_nodes: Nodes, counting_proxy: Proxy, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One Tune search of two trials, one per node: our MLflowLoggerCallback, and setup_mlflow inside."""
    from ray import tune

    from mlflow_sysmetrics.ray import MLflowLoggerCallback
    from tests.integration.scripts.ray_jobs import trainable

    storage = tmp_path_factory.mktemp("tune")
    # Made here, once: two trials that both create it (Ray's create_experiment_if_not_exists)
    # race, and the one that loses fails with RESOURCE_ALREADY_EXISTS.
    mlflow.MlflowClient(counting_proxy.url).create_experiment("tune-setup-mlflow")
    saved = {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_")}
    tuner = tune.Tuner(
        trainable,
        param_space={
            "x": tune.grid_search([1, 2]),
            "uri": counting_proxy.url,
            "experiment": "tune-setup-mlflow",
        },
        run_config=tune.RunConfig(
            name="sysmetrics",
            storage_path=str(storage),
            verbose=0,
            callbacks=[
                MLflowLoggerCallback(tracking_uri=counting_proxy.url, experiment_name="tune-callback")
            ],
        ),
    )
    try:
        results = tuner.fit()
    finally:
        # Ray's callback points this process's MLflow at the server (mlflow.set_tracking_uri
        # exports it): undone, as the tracking fixture undoes it.
        _forget_mlflow_state()
        for name in [k for k in os.environ if k.startswith("MLFLOW_")]:
            del os.environ[name]
        os.environ.update(saved)
    assert not results.errors, results.errors
    return results


def test_tune_callback_runs_carry_the_node_each_trial_ran_on(
    tune_search: Any, ray_nodes: Nodes, tracking: Proxy, driver_machine: dict[str, str]
) -> None:
    """MLflowLoggerCallback makes each trial's run on the driver; ours tags it with its trial's node.

    Each run names the node its trial reported from (Tune's node_ip), carries that node's
    replayed machine, says the facts were read there, and nothing of the driver's ECS task.
    """
    node_of_trial = {f"x{r.config['x']}": r.metrics["node_ip"] for r in tune_search}
    assert set(node_of_trial.values()) == set(ray_nodes.machines), "one trial on each node"
    runs = _runs("tune-callback")
    assert len(runs) == 2
    for run in runs:
        tags = _system_tags(run)
        x = "x" + run.data.params["x"]
        _same_machine(tags, ray_nodes.facts(node_of_trial[x]))
        assert tags["sysmetrics.collected_on"] == "ray node"
        assert "sys.frameworks" not in tags  # the probe's imports say nothing of the trial's
        assert tags.get("sys.container") != driver_machine["sys.container"] == "ecs"
        assert driver_machine["sys.cpu"] not in tags.values()
    print(json.dumps({run.info.run_name: _system_tags(run) for run in runs}, indent=1, sort_keys=True))


def test_tune_setup_mlflow_runs_carry_the_trials_node(
    tune_search: Any, ray_nodes: Nodes, tracking: Proxy
) -> None:
    """setup_mlflow in the trainable: each trial's own run carries the facts of the node it ran on."""
    node_of_trial = {f"x{r.config['x']}": r.metrics["node_ip"] for r in tune_search}
    runs = _runs("tune-setup-mlflow")
    assert sorted(run.info.run_name for run in runs) == ["x1", "x2"]
    for run in runs:
        tags = _system_tags(run)
        _same_machine(tags, ray_nodes.facts(node_of_trial[run.info.run_name]))
        assert "sysmetrics.collected_on" not in tags  # read in the trial's own process
        assert "sys.dist.rank" not in tags  # a Tune trial is no rank of a launched job
    print(json.dumps({run.info.run_name: _system_tags(run) for run in runs}, indent=1, sort_keys=True))


def test_log_node_sysmetrics_replaces_the_drivers_facts(
    ray_nodes: Nodes, tracking: Proxy, driver_machine: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run the driver made with its own facts (implicit tagging), for work done on node 1: the node's replace them."""
    from mlflow_sysmetrics.ray import log_node_sysmetrics, node_sysmetrics

    monkeypatch.setenv("MLFLOW_RUN_CONTEXT_PROVIDER", "sysmetrics")
    mlflow.set_experiment("ray-node")
    with mlflow.start_run() as run:
        pass
    assert _system_tags(mlflow.get_run(run.info.run_id))["sys.container"] == "ecs"  # the driver's, at first
    node = ray_nodes.facts(SECOND_NODE_IP)
    assert node_sysmetrics(node_ip=SECOND_NODE_IP)["sys.cpu"] == node["sys.cpu"]
    written = log_node_sysmetrics(run.info.run_id, node_ip=SECOND_NODE_IP)
    tags = _system_tags(mlflow.get_run(run.info.run_id))
    assert written == tags
    _same_machine(tags, node)
    assert "sys.container" not in tags  # the driver's ECS task is gone, the node has none
    assert tags["sysmetrics.collected_on"] == "ray node"
    with pytest.raises(TimeoutError):
        node_sysmetrics(node_ip=SECOND_NODE_IP, timeout=0.001)


@pytest.mark.needs_torch
def test_torch_trainer_run_carries_every_node(
    ray_nodes: Nodes, tracking: Proxy, driver_machine: dict[str, str], tmp_path: Path
) -> None:
    """TorchTrainer with setup_mlflow(rank_zero_only=True): the one run carries both nodes, ranks right.

    Rank 0 makes the run in its worker (implicit tagging on there, so its own process's
    facts, rank included, are on the run first); node 0's keys are then the node's, node 1's
    worker writes sys.node1.*, and no per-process fact stays on the shared run.
    """
    require("torch")
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from tests.integration.scripts.ray_jobs import train_loop

    storage = tmp_path / "storage"
    results = tmp_path / "results"
    results.mkdir()
    TorchTrainer(
        train_loop,
        train_loop_config={"uri": tracking.url, "experiment": "ray-train", "results": str(results)},
        scaling_config=ScalingConfig(num_workers=2, use_gpu=False),
        run_config=RunConfig(name="sysmetrics-train", storage_path=str(storage)),
    ).fit()

    seen = sorted((json.loads(p.read_text()) for p in results.glob("rank*.json")), key=lambda s: s["rank"])
    assert [s["rank"] for s in seen] == [0, 1]
    assert [s["sum"] for s in seen] == [2.0, 2.0]
    assert {s["node_rank"] for s in seen} == {0, 1}
    assert seen[1]["env"]["NODE_RANK"] == str(seen[1]["node_rank"])
    assert seen[1]["env"]["GROUP_RANK"] is None  # Ray Train's grammar: the node rank alone
    (run,) = _runs("ray-train")
    assert run.info.run_id == seen[0]["run_id"]
    tags = _system_tags(run)
    by_node = {s["node_rank"]: s["root"] for s in seen}
    machine_of = {str(fixture_root(m)): m for m in NODE_MACHINES}
    _same_machine(tags, machine_facts(machine_of[by_node[0]]))
    node1 = machine_facts(machine_of[by_node[1]])
    for key in ("sys.cpu", "sys.gpu", "sys.gpu_count", "sys.memory_gb"):
        assert tags[key.replace("sys.", "sys.node1.")] == node1[key]
    assert tags["sys.dist.world_size"] == "2"
    for per_process in ("sys.dist.rank", "sys.dist.local_rank", "sys.dist.node_rank", "sys.node1.dist.rank"):
        assert per_process not in tags, per_process
    assert not any(k.startswith("sys.node2.") for k in tags)
    assert driver_machine["sys.cpu"] not in tags.values()
    print(json.dumps(tags, indent=1, sort_keys=True))
    writes = [
        body
        for method, path, body in tracking.bodies
        if path.endswith("/runs/log-batch") and b'"sys.' in body
    ]
    assert len(writes) >= 2  # rank 0's own tags at creation, then each node's writer
    shutil.rmtree(storage, ignore_errors=True)
