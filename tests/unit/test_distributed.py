"""Launcher ranks: each launcher's environment, and the sys.dist.* tags read from it.

One table, :data:`LAUNCHES`: each case is a launcher, the environment it gives the process
as its own source or documentation writes it (cited beside the case), and the
``sys.dist.*`` / ``sys.slurm.job_id`` tags that process gets. The sources: torchrun's agent
(``torch/distributed/elastic/agent/server/api.py``, and the "Environment Variables" of
torchrun's documentation), Slurm's srun(1) and sbatch(1) ("OUTPUT ENVIRONMENT VARIABLES"),
Open MPI's mpirun(1) ("Exported Environment Variables"), MPICH's Hydra (``PMI_RANK``,
``PMI_SIZE``, ``MPI_LOCALRANKID``), Ray 2.60 (``ray/train/torch/config.py``), PySpark 4.3
(``pyspark/ml/torch/distributor.py``), Kubeflow Trainer v2
(``pkg/runtime/framework/plugins/torch/torch.go``) and the Training Operator's PyTorchJob v1
(``pkg/controller.v1/pytorch/envvar.go``, before and after 1.7).
"""

from __future__ import annotations

import logging

import pytest

from mlflow_sysmetrics import collect
from mlflow_sysmetrics.collectors import distributed

RANK, LOCAL, WORLD = "sys.dist.rank", "sys.dist.local_rank", "sys.dist.world_size"
NODE, NODES, JOB = "sys.dist.node_rank", "sys.dist.nodes", "sys.slurm.job_id"

#: Trainer v2's torch plugin: PET_NODE_RANK from the JobSet's completion index.
KUBEFLOW_V2_POD = {
    "PET_NNODES": "2",
    "PET_NPROC_PER_NODE": "2",
    "PET_NODE_RANK": "1",
    "PET_MASTER_ADDR": "mnist-node-0-0.mnist",
    "PET_MASTER_PORT": "29400",
    "KUBERNETES_SERVICE_HOST": "10.96.0.1",
}
#: The Training Operator's PyTorchJob v1.7+ pod (setPodEnv), beside which it sets PET_*.
PYTORCHJOB_V1_7 = {
    "MASTER_ADDR": "job-master-0",
    "MASTER_PORT": "23456",
    "KUBERNETES_SERVICE_HOST": "10.96.0.1",
    "WORLD_SIZE": "3",
    "RANK": "1",
    "PET_NPROC_PER_NODE": "1",
    "PET_NODE_RANK": "1",
    "PET_NNODES": "3",
}

LAUNCHES = [
    # torchrun's agent, for worker 5 of 8 on node 2 of 4 (two workers a node); torchrun's
    # documentation lists each variable.
    pytest.param(
        "torchrun",
        {
            "RANK": "5",
            "LOCAL_RANK": "1",
            "WORLD_SIZE": "8",
            "GROUP_RANK": "2",
            "GROUP_WORLD_SIZE": "4",
            "LOCAL_WORLD_SIZE": "2",
            "ROLE_RANK": "5",
            "ROLE_WORLD_SIZE": "8",
            "MASTER_ADDR": "10.0.0.1",
            "MASTER_PORT": "29500",
            "TORCHELASTIC_RUN_ID": "train-81723",
            "TORCHELASTIC_RESTART_COUNT": "0",
            "TORCHELASTIC_MAX_RESTARTS": "0",
        },
        {RANK: "5", LOCAL: "1", WORLD: "8", NODE: "2", NODES: "4"},
        id="torchrun: node count from GROUP_WORLD_SIZE",
    ),
    # A NODE_RANK beside torchrun's own (Lightning's, set by hand): GROUP_RANK is the node.
    pytest.param(
        "torchrun",
        {
            "RANK": "5",
            "LOCAL_RANK": "1",
            "WORLD_SIZE": "8",
            "GROUP_RANK": "2",
            "GROUP_WORLD_SIZE": "4",
            "NODE_RANK": "0",
        },
        {RANK: "5", LOCAL: "1", WORLD: "8", NODE: "2", NODES: "4"},
        id="torchrun: GROUP_RANK wins over NODE_RANK",
    ),
    # TorchDistributor with local_mode=True runs torchrun --standalone on the driver and sets
    # no rendezvous id: one node.
    pytest.param(
        "torchrun",
        {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2", "GROUP_RANK": "0", "GROUP_WORLD_SIZE": "1"},
        {RANK: "1", LOCAL: "1", WORLD: "2", NODE: "0", NODES: "1"},
        id="TorchDistributor local mode: plain torchrun",
    ),
    # srun(1): a step's task count and node count, and the job id; the job's own
    # SLURM_NTASKS and SLURM_NNODES are not the step's.
    pytest.param(
        "slurm",
        {
            "SLURM_PROCID": "3",
            "SLURM_LOCALID": "1",
            "SLURM_NTASKS": "8",
            "SLURM_STEP_NUM_TASKS": "4",
            "SLURM_NODEID": "1",
            "SLURM_NNODES": "4",
            "SLURM_STEP_NUM_NODES": "2",
            "SLURM_JOB_ID": "81723",
        },
        {RANK: "3", LOCAL: "1", WORLD: "4", NODE: "1", NODES: "2", JOB: "81723"},
        id="srun: the step's tasks and nodes, and the job id",
    ),
    # torchrun started by srun: torch's ranks are the ones training code uses; SLURM's are
    # not mixed in.
    pytest.param(
        "torchrun",
        {
            "RANK": "7",
            "WORLD_SIZE": "8",
            "SLURM_PROCID": "1",
            "SLURM_STEP_NUM_TASKS": "2",
            "SLURM_NODEID": "1",
            "SLURM_STEP_NUM_NODES": "2",
        },
        {RANK: "7", WORLD: "8"},
        id="torchrun under srun: torch's ranks",
    ),
    # sbatch(1) --ntasks=8 sets SLURM_NTASKS=8 and SLURM_PROCID=0 for the batch script
    # itself: not a task of 8 (no step, so no SLURM_STEP_NUM_TASKS); the job id is tagged.
    pytest.param(
        None,
        {
            "SLURM_JOB_ID": "81723",
            "SLURM_NTASKS": "8",
            "SLURM_PROCID": "0",
            "SLURM_LOCALID": "0",
            "SLURM_NODEID": "0",
            "SLURM_NNODES": "2",
        },
        {JOB: "81723"},
        id="sbatch: plain Python in a batch script is no rank",
    ),
    # mpirun(1) --map-by node puts rank 1 (local rank 0 of 2) on the second node: rank // local
    # size would say node 0. OMPI_COMM_WORLD_NODE_RANK is a rank among a node's processes,
    # not the node's index.
    pytest.param(
        "openmpi",
        {
            "OMPI_COMM_WORLD_RANK": "1",
            "OMPI_COMM_WORLD_LOCAL_RANK": "0",
            "OMPI_COMM_WORLD_SIZE": "4",
            "OMPI_COMM_WORLD_LOCAL_SIZE": "2",
            "OMPI_COMM_WORLD_NODE_RANK": "0",
            "OMPI_UNIVERSE_SIZE": "4",
        },
        {RANK: "1", LOCAL: "0", WORLD: "4"},
        id="mpirun: Open MPI claims no node index",
    ),
    # mpirun under SLURM starts its remote daemons with srun; their ranks inherit that
    # step's SLURM_NODEID: Open MPI's own variables win.
    pytest.param(
        "openmpi",
        {
            "OMPI_COMM_WORLD_RANK": "2",
            "OMPI_COMM_WORLD_LOCAL_RANK": "0",
            "OMPI_COMM_WORLD_SIZE": "4",
            "SLURM_PROCID": "0",
            "SLURM_STEP_NUM_TASKS": "1",
            "SLURM_NODEID": "0",
            "SLURM_STEP_NUM_NODES": "1",
        },
        {RANK: "2", LOCAL: "0", WORLD: "4"},
        id="mpirun under Slurm: the daemons' step ignored",
    ),
    # MPICH's Hydra (and Intel MPI's): PMI_RANK, PMI_SIZE, and MPI_LOCALRANKID /
    # MPI_LOCALNRANKS for the rank among the node's; no node index.
    pytest.param(
        "pmi",
        {"PMI_RANK": "3", "PMI_SIZE": "8", "MPI_LOCALRANKID": "1", "MPI_LOCALNRANKS": "4"},
        {RANK: "3", LOCAL: "1", WORLD: "8"},
        id="mpiexec (Hydra): PMI ranks, no node index",
    ),
    # Ray Train's _set_torch_distributed_env_vars (ray/train/torch/config.py) sets RANK,
    # LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, NODE_RANK and no GROUP_RANK: the values world
    # rank 1 (alone on the second node) saw in a two-node TorchTrainer job.
    pytest.param(
        "torchrun",
        {
            "RANK": "1",
            "LOCAL_RANK": "0",
            "WORLD_SIZE": "2",
            "LOCAL_WORLD_SIZE": "1",
            "NODE_RANK": "1",
            "MASTER_ADDR": "192.0.2.2",
            "MASTER_PORT": "40213",
            "RAY_JOB_ID": "01000000",
        },
        {RANK: "1", LOCAL: "0", WORLD: "2", NODE: "1"},
        id="Ray Train: the node by NODE_RANK",
    ),
    # TorchDistributor (set_torch_config and _get_torchrun_args in
    # pyspark/ml/torch/distributor.py): each barrier task exports RANK = NODE_RANK = its
    # partition id and the rendezvous id, and runs torchrun --node_rank=<partition id>, whose
    # agent sets RANK, LOCAL_RANK, GROUP_RANK, GROUP_WORLD_SIZE. GROUP_RANK is a Spark task,
    # not a machine: no node is claimed.
    pytest.param(
        distributed.TORCH_DISTRIBUTOR,
        {
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
        },
        {RANK: "1", LOCAL: "0", WORLD: "2"},
        id="TorchDistributor: tasks are not nodes",
    ),
    # A torchrun worker in a Trainer v2 pod: torchrun's variables, agreeing with the pod's PET_*.
    pytest.param(
        "torchrun",
        {
            **KUBEFLOW_V2_POD,
            "RANK": "3",
            "LOCAL_RANK": "1",
            "WORLD_SIZE": "4",
            "LOCAL_WORLD_SIZE": "2",
            "GROUP_RANK": "1",
            "GROUP_WORLD_SIZE": "2",
            "MASTER_ADDR": "mnist-node-0-0.mnist",
        },
        {RANK: "3", LOCAL: "1", WORLD: "4", NODE: "1", NODES: "2"},
        id="Kubeflow Trainer v2: a torchrun worker",
    ),
    # One process per node (numProcPerNode 1) and a command that is not torchrun: the pod's
    # process is the node's one rank.
    pytest.param(
        "kubeflow",
        {**KUBEFLOW_V2_POD, "PET_NPROC_PER_NODE": "1", "PET_NNODES": "3", "PET_NODE_RANK": "2"},
        {RANK: "2", LOCAL: "0", WORLD: "3", NODE: "2", NODES: "3"},
        id="Kubeflow Trainer v2: a pod of one rank",
    ),
    # Several processes per pod (or torchrun deciding, "auto", "gpu"): the pod's own process
    # is on node 1 of 2, no rank.
    *(
        pytest.param(
            "kubeflow",
            {**KUBEFLOW_V2_POD, "PET_NPROC_PER_NODE": per_node},
            {NODE: "1", NODES: "2"},
            id=f"Kubeflow Trainer v2: a pod of several ranks ({per_node})",
        )
        for per_node in ("2", "auto", "gpu")
    ),
    # PyTorchJob v1 before PET_* (setPodEnv in pkg/controller.v1/pytorch/envvar.go), worker 1
    # of a job of one master and two workers: RANK = the pod's index (workers from 1),
    # WORLD_SIZE = the pods; each pod one process, as Lightning's KubeflowEnvironment reads it.
    pytest.param(
        "kubeflow",
        {
            "PYTHONUNBUFFERED": "0",
            "MASTER_PORT": "23456",
            "MASTER_ADDR": "pytorch-dist-mnist-master-0",
            "WORLD_SIZE": "3",
            "RANK": "2",
            "KUBERNETES_SERVICE_HOST": "10.96.0.1",
        },
        {RANK: "2", LOCAL: "0", WORLD: "3", NODE: "2", NODES: "3"},
        id="PyTorchJob v1: a pod is one node of one process",
    ),
    # PyTorchJob v1.7+: WORLD_SIZE = pods x nprocPerNode, RANK = PET_NODE_RANK = the pod's index.
    pytest.param(
        "kubeflow",
        PYTORCHJOB_V1_7,
        {RANK: "1", LOCAL: "0", WORLD: "3", NODE: "1", NODES: "3"},
        id="PyTorchJob v1.7: PET_* beside RANK, one process a pod",
    ),
    # The same with four processes a pod: torchrun's workers are the ranks.
    pytest.param(
        "kubeflow",
        {**PYTORCHJOB_V1_7, "WORLD_SIZE": "12", "PET_NPROC_PER_NODE": "4"},
        {NODE: "1", NODES: "3"},
        id="PyTorchJob v1.7: four processes a pod",
    ),
    # An MPIJob's pod that exports RANK from Open MPI's variables, with MASTER_ADDR, for torch's
    # env://: no PyTorchJob pod; RANK set by hand is read as torch's, an Open MPI rank, not a
    # node of its own.
    pytest.param(
        "torchrun",
        {
            "OMPI_COMM_WORLD_RANK": "13",
            "OMPI_COMM_WORLD_LOCAL_RANK": "5",
            "OMPI_COMM_WORLD_SIZE": "16",
            "RANK": "13",
            "WORLD_SIZE": "16",
            "MASTER_ADDR": "mpijob-launcher",
            "KUBERNETES_SERVICE_HOST": "10.96.0.1",
        },
        {RANK: "13", WORLD: "16"},
        id="MPIJob pod exporting RANK for env://",
    ),
    # RANK and WORLD_SIZE in a pod with no MASTER_ADDR are no PyTorchJob: read as torch's,
    # no node claimed.
    pytest.param(
        "torchrun",
        {"RANK": "1", "WORLD_SIZE": "4", "KUBERNETES_SERVICE_HOST": "10.96.0.1"},
        {RANK: "1", WORLD: "4"},
        id="RANK in a pod without a master",
    ),
    # Every pod has KUBERNETES_SERVICE_HOST, many a MASTER_ADDR: neither alone makes a rank.
    pytest.param(
        None,
        {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "MASTER_ADDR": "10.0.0.1"},
        {},
        id="a pod's own variables alone are no launch",
    ),
]


@pytest.mark.parametrize(("launcher", "env", "expected"), LAUNCHES)
def test_each_launcher_places_its_process(
    launcher: str | None, env: dict[str, str], expected: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The launcher that speaks for the process, and the tags collect() writes in that environment."""
    info = distributed.read(env)
    assert (info.launcher, distributed.tags_of(info)) == (launcher, expected)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert distributed.current() == info  # the fast read of the environment agrees
    launched = {k: v for k, v in collect().items() if k.startswith(("sys.dist.", "sys.slurm."))}
    assert launched == expected


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
