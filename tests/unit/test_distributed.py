"""Launcher ranks: each launcher's environment, and the sys.dist.* tags read from it.

Every environment below is the one the launcher or engine's own source writes, cited in each
case: Ray 2.60 (``ray/train/torch/config.py``), PySpark 4.3
(``pyspark/ml/torch/distributor.py``), Kubeflow Trainer v2
(``pkg/runtime/framework/plugins/torch/torch.go``) and the Training Operator's PyTorchJob v1
(``pkg/controller.v1/pytorch/envvar.go``, before and after 1.7), plus the variables
torchrun's agent gives its workers (``torch/distributed/elastic``), Slurm's ``srun`` and
Open MPI's ``mpirun``.
"""

from __future__ import annotations

import logging

import pytest

from mlflow_sysmetrics import collect
from mlflow_sysmetrics.collectors import distributed


def test_torchrun_variables() -> None:
    """torchrun/torchelastic's variables, node count from GROUP_WORLD_SIZE."""
    info = distributed.read(
        {
            "RANK": "5",
            "LOCAL_RANK": "1",
            "WORLD_SIZE": "8",
            "GROUP_RANK": "2",
            "GROUP_WORLD_SIZE": "4",
            "LOCAL_WORLD_SIZE": "2",
        }
    )
    assert (info.rank, info.local_rank, info.world_size, info.node_rank, info.nodes) == (5, 1, 8, 2, 4)


def test_slurm_variables() -> None:
    """Srun's variables (a step's task count and node count), and the job id."""
    info = distributed.read(
        {
            "SLURM_PROCID": "3",
            "SLURM_LOCALID": "1",
            "SLURM_NTASKS": "8",
            "SLURM_STEP_NUM_TASKS": "4",
            "SLURM_NODEID": "1",
            "SLURM_NNODES": "4",
            "SLURM_STEP_NUM_NODES": "2",
            "SLURM_JOB_ID": "81723",
        }
    )
    assert (info.rank, info.local_rank, info.world_size, info.node_rank, info.nodes, info.slurm_job_id) == (
        3,
        1,
        4,
        1,
        2,
        "81723",
    )


def test_open_mpi_claims_no_node_index() -> None:
    """--map-by node puts rank 1 (local rank 0 of 2) on the second node: rank // local size would say node 0."""
    info = distributed.read(
        {
            "OMPI_COMM_WORLD_RANK": "1",
            "OMPI_COMM_WORLD_LOCAL_RANK": "0",
            "OMPI_COMM_WORLD_SIZE": "4",
            "OMPI_COMM_WORLD_LOCAL_SIZE": "2",
        }
    )
    assert (info.rank, info.local_rank, info.world_size, info.node_rank) == (1, 0, 4, None)


def test_torchrun_under_srun_reports_torch_ranks() -> None:
    """Torchrun started by srun: torch's ranks are the ones training code uses, SLURM's are not mixed in."""
    info = distributed.read(
        {
            "RANK": "7",
            "WORLD_SIZE": "8",
            "SLURM_PROCID": "1",
            "SLURM_STEP_NUM_TASKS": "2",
            "SLURM_NODEID": "1",
            "SLURM_STEP_NUM_NODES": "2",
        }
    )
    assert (info.rank, info.world_size, info.node_rank, info.nodes) == (7, 8, None, None)


def test_plain_python_in_a_batch_script_is_no_rank() -> None:
    """Sbatch --ntasks=8 sets SLURM_NTASKS=8 and SLURM_PROCID=0 for the batch script itself: not a task of 8."""
    info = distributed.read(
        {
            "SLURM_JOB_ID": "81723",
            "SLURM_NTASKS": "8",
            "SLURM_PROCID": "0",
            "SLURM_LOCALID": "0",
            "SLURM_NODEID": "0",
            "SLURM_NNODES": "2",
        }
    )
    assert info == distributed.DistInfo(slurm_job_id="81723")


def test_mpirun_remote_ranks_ignore_the_daemons_slurm_step() -> None:
    """Mpirun under SLURM starts remote daemons with srun; their ranks inherit that step's SLURM_NODEID."""
    rank_on_node_1 = distributed.read(
        {
            "OMPI_COMM_WORLD_RANK": "2",
            "OMPI_COMM_WORLD_LOCAL_RANK": "0",
            "OMPI_COMM_WORLD_SIZE": "4",
            "SLURM_PROCID": "0",
            "SLURM_STEP_NUM_TASKS": "1",
            "SLURM_NODEID": "0",
            "SLURM_STEP_NUM_NODES": "1",
        }
    )
    assert (rank_on_node_1.rank, rank_on_node_1.world_size, rank_on_node_1.node_rank) == (2, 4, None)


def test_garbage_values_are_ignored_with_a_debug_line(caplog: pytest.LogCaptureFixture) -> None:
    """RANK=abc, a negative local rank, a rank beyond the world: ignored, never a crash."""
    caplog.set_level(logging.DEBUG, logger="mlflow_sysmetrics")
    info = distributed.read({"RANK": "abc", "LOCAL_RANK": "0", "WORLD_SIZE": "4", "SLURM_PROCID": "9"})
    assert info == distributed.DistInfo()  # no readable rank: no place in a job is claimed
    assert "ignoring RANK='abc'" in caplog.text
    info = distributed.read({"RANK": "1", "LOCAL_RANK": "-1", "WORLD_SIZE": "4"})
    assert (info.rank, info.local_rank, info.world_size) == (1, None, 4)
    assert distributed.read({"RANK": "9", "WORLD_SIZE": "4"}) == distributed.DistInfo()


def test_dist_tags_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rank tags are read on every call: a changed environment shows at once."""
    assert not any(k.startswith("sys.dist") for k in collect())
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    tags = collect()
    assert (tags["sys.dist.rank"], tags["sys.dist.world_size"], tags["sys.slurm.job_id"]) == ("1", "2", "42")


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
