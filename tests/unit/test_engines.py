"""The engines users scale out on (Ray, Spark, Kubeflow), without the engines.

Launcher grammars, machines agreed on, and the helpers' manners.

Every environment below is the one the engine's own source writes, cited in each test:
Ray 2.60 (``ray/train/torch/config.py``), PySpark 4.3 (``pyspark/ml/torch/distributor.py``),
Kubeflow Trainer v2 (``pkg/runtime/framework/plugins/torch/torch.go``) and the Training
Operator's PyTorchJob v1 (``pkg/controller.v1/pytorch/envvar.go``, before and after 1.7),
plus the variables torchrun's agent gives its workers (``torch/distributed/elastic``).
"""

from __future__ import annotations

import logging
import os
import sys
import types
from datetime import timedelta

import pytest

from mlflow_sysmetrics import _machines, _remote, _shared_run, collect
from mlflow_sysmetrics import tags as T
from mlflow_sysmetrics.collectors import distributed
from tests.conftest import fixture_root
from tests.fresh import fresh_python
from tests.integration.conftest import free_port


def _placed(info: distributed.DistInfo) -> tuple[int | None, ...]:
    return (info.rank, info.local_rank, info.world_size, info.node_rank, info.nodes)


def test_ray_train_workers_give_their_node_by_node_rank() -> None:
    """Ray Train sets RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, NODE_RANK and no GROUP_RANK.

    ``_set_torch_distributed_env_vars`` in ray/train/torch/config.py; the values are those
    world rank 1 (alone on the second node) saw in a two-node TorchTrainer job.
    """
    env = {"RANK": "1", "LOCAL_RANK": "0", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "1", "NODE_RANK": "1"}
    env |= {"MASTER_ADDR": "192.0.2.2", "MASTER_PORT": "40213", "RAY_JOB_ID": "01000000"}
    info = distributed.read(env)
    assert _placed(info) == (1, 0, 2, 1, None)
    assert info.launcher == "torchrun"


def test_group_rank_wins_over_node_rank() -> None:
    """Under torchrun GROUP_RANK is the node; a NODE_RANK beside it (Lightning's, set by hand) does not win."""
    env = {"RANK": "5", "LOCAL_RANK": "1", "WORLD_SIZE": "8", "GROUP_RANK": "2", "GROUP_WORLD_SIZE": "4"}
    assert _placed(distributed.read({**env, "NODE_RANK": "0"})) == (5, 1, 8, 2, 4)


def test_torch_distributor_tasks_are_not_nodes() -> None:
    """TorchDistributor: GROUP_RANK is a Spark task, not a machine, so no node is claimed.

    Each barrier task exports RANK = NODE_RANK = its partition id and the rendezvous id, and
    runs torchrun --node_rank=<partition id>.

    ``set_torch_config`` and ``_get_torchrun_args`` in pyspark/ml/torch/distributor.py;
    torchrun's agent then sets the worker's RANK, LOCAL_RANK, GROUP_RANK, GROUP_WORLD_SIZE.
    """
    env = {
        "PYSPARK_TORCH_DISTRIBUTOR_RDZV_ID": "6f1c0e6a8c0b4f1e9d2a3b4c5d6e7f80",
        "MASTER_ADDR": "10.0.0.4",
        "MASTER_PORT": "41567",
        "NODE_RANK": "1",
        "RANK": "1",
        "LOCAL_RANK": "0",
        "WORLD_SIZE": "2",
        "LOCAL_WORLD_SIZE": "1",
        "GROUP_RANK": "1",
        "GROUP_WORLD_SIZE": "2",
        "TORCHELASTIC_USE_AGENT_STORE": "True",
        "CUDA_VISIBLE_DEVICES": "",
    }
    info = distributed.read(env)
    assert _placed(info) == (1, 0, 2, None, None)
    assert info.launcher == distributed.TORCH_DISTRIBUTOR


def test_torch_distributor_local_mode_is_plain_torchrun() -> None:
    """local_mode=True runs torchrun --standalone on the driver and sets no rendezvous id: one node."""
    env = {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2", "GROUP_RANK": "0", "GROUP_WORLD_SIZE": "1"}
    info = distributed.read(env)
    assert (_placed(info), info.launcher) == ((1, 1, 2, 0, 1), "torchrun")


KUBEFLOW_V2_POD = {
    # Trainer v2's torch plugin: PET_NODE_RANK from the JobSet's completion index.
    "PET_NNODES": "2",
    "PET_NPROC_PER_NODE": "2",
    "PET_NODE_RANK": "1",
    "PET_MASTER_ADDR": "mnist-node-0-0.mnist",
    "PET_MASTER_PORT": "29400",
    "KUBERNETES_SERVICE_HOST": "10.96.0.1",
}


def test_kubeflow_trainer_v2_torchrun_worker() -> None:
    """A torchrun worker in a Trainer v2 pod: torchrun's variables, agreeing with the pod's PET_*."""
    env = {**KUBEFLOW_V2_POD, "RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2"}
    env |= {"GROUP_RANK": "1", "GROUP_WORLD_SIZE": "2", "MASTER_ADDR": "mnist-node-0-0.mnist"}
    info = distributed.read(env)
    assert (_placed(info), info.launcher) == ((3, 1, 4, 1, 2), "torchrun")


def test_kubeflow_trainer_v2_pod_process_of_one_rank_per_node() -> None:
    """One process per node (numProcPerNode 1) and a command that is not torchrun: the pod's process is the node's one rank."""
    env = {**KUBEFLOW_V2_POD, "PET_NPROC_PER_NODE": "1", "PET_NNODES": "3", "PET_NODE_RANK": "2"}
    info = distributed.read(env)
    assert (_placed(info), info.launcher) == ((2, 0, 3, 2, 3), "kubeflow")


@pytest.mark.parametrize("per_node", ["2", "auto", "gpu"])
def test_kubeflow_pod_process_of_several_ranks_is_no_rank(per_node: str) -> None:
    """Several processes per pod (or torchrun deciding, "auto"): the pod's own process is on node 1 of 2, no rank."""
    info = distributed.read({**KUBEFLOW_V2_POD, "PET_NPROC_PER_NODE": per_node})
    assert _placed(info) == (None, None, None, 1, 2)


def test_pytorchjob_v1_pod_is_one_node_of_one_process() -> None:
    """PyTorchJob v1 before PET_*: RANK = the pod's index (workers from 1), WORLD_SIZE = the pods.

    ``setPodEnv`` in pkg/controller.v1/pytorch/envvar.go, for worker 1 of a job of one
    master and two workers; each pod one process, as Lightning's KubeflowEnvironment reads it.
    """
    env = {
        "PYTHONUNBUFFERED": "0",
        "MASTER_PORT": "23456",
        "MASTER_ADDR": "pytorch-dist-mnist-master-0",
        "WORLD_SIZE": "3",
        "RANK": "2",
        "KUBERNETES_SERVICE_HOST": "10.96.0.1",
    }
    info = distributed.read(env)
    assert (_placed(info), info.launcher) == ((2, 0, 3, 2, 3), "kubeflow")


def test_an_mpijob_pod_exporting_rank_for_env_is_mpis() -> None:
    """An MPIJob's pod that exports RANK from Open MPI's variables is no PyTorchJob pod.

    On Kubernetes, with MASTER_ADDR, for torch's env://: an Open MPI rank, not a node of its own.
    """
    env = {
        "OMPI_COMM_WORLD_RANK": "13",
        "OMPI_COMM_WORLD_LOCAL_RANK": "5",
        "OMPI_COMM_WORLD_SIZE": "16",
        "RANK": "13",
        "WORLD_SIZE": "16",
        "MASTER_ADDR": "mpijob-launcher",
        "KUBERNETES_SERVICE_HOST": "10.96.0.1",
    }
    info = distributed.read(env)
    assert info.launcher != "kubeflow"
    assert (info.rank, info.world_size, info.node_rank) == (13, 16, None)


def test_pytorchjob_v1_7_sets_pet_beside_rank() -> None:
    """PyTorchJob v1.7+: WORLD_SIZE = pods x nprocPerNode, RANK = PET_NODE_RANK = the pod's index."""
    env = {"MASTER_ADDR": "job-master-0", "MASTER_PORT": "23456", "KUBERNETES_SERVICE_HOST": "10.96.0.1"}
    one = {
        **env,
        "WORLD_SIZE": "3",
        "RANK": "1",
        "PET_NPROC_PER_NODE": "1",
        "PET_NODE_RANK": "1",
        "PET_NNODES": "3",
    }
    assert _placed(distributed.read(one)) == (1, 0, 3, 1, 3)
    four = {**one, "WORLD_SIZE": "12", "PET_NPROC_PER_NODE": "4"}  # torchrun's workers are the ranks
    assert _placed(distributed.read(four)) == (None, None, None, 1, 3)


def test_a_pods_own_variables_alone_are_no_launch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every pod has KUBERNETES_SERVICE_HOST, many a MASTER_ADDR: neither alone makes a rank."""
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("MASTER_ADDR", "10.0.0.1")
    assert distributed.current() == distributed.DistInfo()
    assert not any(key.startswith("sys.dist.") for key in collect())


def test_rank_variables_in_a_pod_without_a_master_are_read_as_torchs() -> None:
    """RANK and WORLD_SIZE in a pod with no MASTER_ADDR are no PyTorchJob: no node is claimed."""
    info = distributed.read({"RANK": "1", "WORLD_SIZE": "4", "KUBERNETES_SERVICE_HOST": "10.96.0.1"})
    assert (_placed(info), info.launcher) == ((1, None, 4, None, None), "torchrun")


def test_machine_key_tells_replayed_machines_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same process replaying two machines has two keys; the same machine twice one."""
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(fixture_root("h100-vm")))
    h100 = _machines.machine_key()
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(fixture_root("gcp-vm")))
    assert h100 != _machines.machine_key()
    monkeypatch.delenv("MLFLOW_SYSMETRICS_ROOT")
    assert _machines.machine_key() == _machines.machine_key() != h100


@pytest.fixture
def agent_store(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """A real torch TCPStore, as torchrun's agent hosts it, and a TorchDistributor task's variables."""
    try:
        from torch.distributed import TCPStore
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("torch is needed in CI: pip install -r requirements-torch.txt")
        pytest.skip("torch is not installed: pip install -r requirements-torch.txt")
    port = free_port()
    store = TCPStore("127.0.0.1", port, is_master=True, timeout=timedelta(seconds=10), wait_for_workers=False)
    rdzv = f"test-{port}"
    env = {
        "PYSPARK_TORCH_DISTRIBUTOR_RDZV_ID": rdzv,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "WORLD_SIZE": "6",
        "GROUP_WORLD_SIZE": "3",
        "LOCAL_WORLD_SIZE": "2",
    }
    return types.SimpleNamespace(
        store=store, env=env, key=lambda task: f"{_machines.STORE_PREFIX}/{rdzv}/{task}"
    )


def _task(env: dict[str, str], task: int, local: int) -> dict[str, str]:
    return {**env, "GROUP_RANK": str(task), "RANK": str(2 * task + local), "LOCAL_RANK": str(local)}


@pytest.mark.needs_torch
def test_tasks_agree_on_machines_through_the_agents_store(agent_store: types.SimpleNamespace) -> None:
    """Three tasks, two machines: task 0 elsewhere, tasks 1 and 2 here.

    Task 1 writes for this machine as node 1; task 2 (and task 1's second process) write
    nothing; machines are counted, not tasks.
    """
    mine = _machines.machine_key()
    agent_store.store.set(agent_store.key(0), "another-machine")
    agent_store.store.set(agent_store.key(2), mine)  # task 2 published already
    placements = {}
    for task, local in ((1, 0), (1, 1), (2, 0)):
        env = _task(agent_store.env, task, local)
        placements[(task, local)] = _machines.placed_by_machine(distributed.read(env), env)
    assert agent_store.store.get(agent_store.key(1)).decode() == mine  # local rank 0 published
    assert {k: (p.node_rank, p.nodes, p.local_rank) for k, p in placements.items()} == {
        (1, 0): (1, 2, 0),
        (1, 1): (1, 2, 1),
        (2, 0): (1, 2, 2),
    }
    writes = {k: _shared_run.shared_run_tags({"sys.cpu": "X"}, p) for k, p in placements.items()}
    assert writes == {(1, 0): {"sys.node1.cpu": "X"}, (1, 1): None, (2, 0): None}


@pytest.mark.needs_torch
def test_machine_zero_writes_the_job_and_the_machine_count(agent_store: types.SimpleNamespace) -> None:
    """Task 0's machine is machine 0: plain keys, the world size, and sys.dist.nodes = machines (2), not tasks (3)."""
    agent_store.store.set(agent_store.key(1), "another-machine")
    agent_store.store.set(agent_store.key(2), "another-machine")
    env = _task(agent_store.env, 0, 0)
    info = _machines.placed_by_machine(distributed.read(env), env)
    tags = {"sys.cpu": "X", "sys.dist.rank": "0", "sys.dist.world_size": "6"}
    assert _shared_run.shared_run_tags(tags, info) == {
        "sys.cpu": "X",
        "sys.dist.world_size": "6",
        "sys.dist.nodes": "2",
    }


@pytest.mark.needs_torch
def test_tasks_that_cannot_agree_leave_rank_zero_the_only_writer(
    agent_store: types.SimpleNamespace, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A task whose peers never publish waits a bounded time, warns, and stays as its launcher placed it."""
    monkeypatch.setattr(_machines, "AGREEMENT_SECONDS", 0.3)
    env = _task(agent_store.env, 1, 0)
    launched = distributed.read(env)
    with caplog.at_level(logging.WARNING, logger="mlflow_sysmetrics"):
        assert _machines.placed_by_machine(launched, env) == launched
    assert "could not learn which tasks share its machine" in caplog.text
    assert _shared_run.writing_node(launched) is None  # only rank 0 (task 0) writes, as node 0


def test_placement_is_the_launchers_own_elsewhere() -> None:
    """Only TorchDistributor's tasks are placed by machine; torchrun's nodes are its own."""
    info = distributed.DistInfo(rank=3, local_rank=1, world_size=4, node_rank=1, nodes=2, launcher="torchrun")
    assert _shared_run.placed(info) is info
    assert not _shared_run.replaces_creators_facts(info)
    assert _shared_run.replaces_creators_facts(info._replace(launcher=distributed.TORCH_DISTRIBUTOR))


def test_worker_facts_leave_out_what_the_reading_process_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    """An engine's probe process imported what it imported: sys.frameworks and kin say nothing of the work."""
    fake = types.ModuleType("sklearn")
    fake.__version__ = "1.9.1"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sklearn", fake)
    assert "sklearn 1.9.1" in collect()["sys.frameworks"]
    facts = _remote.worker_facts()
    assert not set(facts) & set(T.keys_of("frameworks"))
    assert facts["sys.cpu"] == collect()["sys.cpu"]


def test_machine_tags_lay_out_each_machine_once() -> None:
    """Machine 0 plain, machine k sys.node<k>.*, per-process facts nowhere, the machine count and the path once."""
    machines = [
        {"sys.cpu": "A", "sys.gpu": "None", "sys.dist.rank": "3", "sysmetrics.error": "gpu: boom"},
        {"sys.cpu": "B", "sys.gpu": "NVIDIA H100 80GB HBM3", "sys.slurm.job_id": "81723"},
    ]
    assert _remote.machine_tags(machines, _remote.SPARK_EXECUTORS) == {
        "sys.cpu": "A",
        "sys.gpu": "None",
        "sys.dist.nodes": "2",
        "sysmetrics.error": "gpu: boom",
        "sys.node1.cpu": "B",
        "sys.node1.gpu": "NVIDIA H100 80GB HBM3",
        "sysmetrics.collected_on": "spark executors",
    }


def test_the_engine_modules_import_no_engine() -> None:
    """Importing the Ray and Spark modules imports neither engine, nor MLflow, nor torch."""
    code = (
        "import json, sys, mlflow_sysmetrics.ray, mlflow_sysmetrics.spark;"
        "print(json.dumps([m for m in ('ray', 'pyspark', 'mlflow', 'torch') if m in sys.modules]))"
    )
    assert fresh_python(code).value == []


def test_the_engine_modules_public_names_are_documented() -> None:
    """Each module's __all__ is sorted; every name in it has a docstring, a use on the engines' page and its API entry."""
    from mlflow_sysmetrics import ray as sysmetrics_ray
    from mlflow_sysmetrics import spark as sysmetrics_spark
    from tests.pages import DOCS

    engines = (DOCS / "multi-node.md").read_text()
    reference = (DOCS / "reference.md").read_text().splitlines()
    for module in (sysmetrics_ray, sysmetrics_spark):
        assert f"::: {module.__name__}" in reference, f"{module.__name__} is not in the API reference"
        assert sorted(module.__all__) == module.__all__
        for name in module.__all__:
            assert f"`{name}" in engines, f"{name} is not on the page docs/multi-node.md"
            if name != "MLflowLoggerCallback":  # built from Ray's class on first use (imports Ray)
                assert getattr(module, name).__doc__, name


def test_the_ray_helpers_need_a_running_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a Ray the program started, the helpers say how to call them; wrong arguments say what they take."""
    from mlflow_sysmetrics import ray as sysmetrics_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # as in a program that never imported Ray
    with pytest.raises(ValueError, match=r"after ray\.init\(\)"):
        sysmetrics_ray.node_sysmetrics(node_ip="10.0.0.2")
    with pytest.raises(TypeError, match=r"node_ip= .* or node_id="):
        sysmetrics_ray.node_sysmetrics(node_ip="10.0.0.2", node_id="ab12")
    with pytest.raises(ValueError, match="positive number of seconds"):
        sysmetrics_ray.node_sysmetrics(node_ip="10.0.0.2", timeout=-1)
    with pytest.raises(TypeError, match="run id string"):
        sysmetrics_ray.log_node_sysmetrics(42, node_ip="10.0.0.2")  # type: ignore[arg-type]


def test_the_spark_helpers_need_a_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a session the program made (or with something else as spark=), a clear error, nothing started."""
    from mlflow_sysmetrics import spark as sysmetrics_spark

    monkeypatch.delitem(sys.modules, "pyspark", raising=False)
    with pytest.raises(ValueError, match="SparkSession"):
        sysmetrics_spark.executor_sysmetrics()
    with pytest.raises(TypeError, match=r"spark= takes a pyspark\.sql\.SparkSession"):
        sysmetrics_spark.executor_sysmetrics(spark=object())
    connect = type("SparkSession", (), {"__module__": "pyspark.sql.connect.session"})
    with pytest.raises(ValueError, match="Spark Connect session has none"):
        sysmetrics_spark.executor_sysmetrics(spark=connect())
    with pytest.raises(TypeError, match="run id string"):
        sysmetrics_spark.log_executor_sysmetrics(run_id=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not both"):
        sysmetrics_spark.log_executor_sysmetrics("abc", tracking_uri="x", client=object())  # type: ignore[arg-type]
    assert "pyspark" not in sys.modules  # nothing imported it
