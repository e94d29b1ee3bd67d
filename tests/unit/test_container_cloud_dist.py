"""Containers, clouds and launcher ranks: markers, firmware strings and environment variables."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mlflow_sysmetrics import collect
from mlflow_sysmetrics.collectors import cloud, container, distributed
from tests.conftest import fixture_root


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_kubernetes_variable_wins_over_markers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """KUBERNETES_SERVICE_HOST says more than the runtime's marker."""
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(_tree(tmp_path, {"/.dockerenv": ""})))
    assert collect()["sys.container"] == "docker"
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    assert collect()["sys.container"] == "kubernetes"


@pytest.mark.parametrize(
    ("cgroup", "expected"),
    [
        ("0::/system.slice/docker-3f1e9c.scope\n", "docker"),
        ("0::/machine.slice/libpod-9c2e.scope/container\n", "podman"),
        ("0::/kubepods/besteffort/pod1/abc\n", "kubernetes"),
        ("0::/lxc.payload.build01\n", "lxc"),
        ("0::/user.slice/user-1000.slice/session-2.scope\n", None),
    ],
)
def test_runtime_from_cgroup_path(cgroup: str, expected: str | None) -> None:
    """Where no marker is left, the cgroup path names the runtime."""
    assert container.from_cgroup(cgroup) == expected


def test_container_oci_names_no_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    """container=oci (UBI images hardcode it) gives way to the cgroup path: ECS here, as systemd's virt.c does."""
    from tests.conftest import fixture_root

    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(fixture_root("ecs-fargate")))
    monkeypatch.setenv("container", "oci")
    tags = collect()
    assert tags["sys.container"] == "ecs"
    assert tags["sys.memory_limit_gb"] == "4.29"


def test_container_oci_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """container=oci and nothing else: an OCI container whose manager is not known, not "docker"."""
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(_tree(tmp_path, {"/etc/os-release": "NAME=x\n"})))
    monkeypatch.setenv("container", "oci")
    assert collect()["sys.container"] == "oci"
    monkeypatch.setenv("container", "podman")
    assert collect()["sys.container"] == "podman"


def test_hpc_runtimes_announce_themselves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Apptainer and Singularity set a variable inside their containers."""
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(_tree(tmp_path, {"/etc/os-release": "NAME=x\n"})))
    monkeypatch.setenv("APPTAINER_CONTAINER", "/scratch/train.sif")
    assert collect()["sys.container"] == "apptainer"


@pytest.mark.parametrize(
    ("dmi", "expected"),
    [
        (
            {"sys_vendor": "Amazon EC2", "product_name": "p5.48xlarge"},
            {"sys.cloud": "aws", "sys.instance_type": "p5.48xlarge"},
        ),
        (
            {"sys_vendor": "Xen", "product_name": "HVM domU", "bios_version": "4.11.amazon"},
            {"sys.cloud": "aws"},
        ),
        ({"sys_vendor": "Google", "product_name": "Google Compute Engine"}, {"sys.cloud": "gcp"}),
        ({"sys_vendor": "Google", "product_name": "Eve", "bios_vendor": "coreboot"}, {}),  # a Chromebook
        (
            {"chassis_asset_tag": cloud.AZURE_ASSET_TAG, "sys_vendor": "Microsoft Corporation"},
            {"sys.cloud": "azure"},
        ),
        ({"chassis_asset_tag": "OracleCloud.com"}, {"sys.cloud": "oci"}),
        ({"sys_vendor": "Alibaba Cloud", "product_name": "Alibaba Cloud ECS"}, {"sys.cloud": "alibaba"}),
        ({"sys_vendor": "DigitalOcean", "product_name": "Droplet"}, {"sys.cloud": "digitalocean"}),
        ({"sys_vendor": "Hetzner", "product_name": "vServer"}, {"sys.cloud": "hetzner"}),
        (
            {"sys_vendor": "OpenStack Foundation", "product_name": "OpenStack Nova"},
            {"sys.cloud": "openstack"},
        ),
        ({"sys_vendor": "Microsoft Corporation", "product_name": "Virtual Machine"}, {}),  # local Hyper-V
        ({"sys_vendor": "Dell Inc.", "product_name": "PowerEdge R750xa"}, {}),
    ],
)
def test_cloud_from_firmware(dmi: dict[str, str], expected: dict[str, str]) -> None:
    """Each provider by what its firmware writes; a workstation or a local VM is no cloud."""
    assert cloud.classify(dmi) == expected


def test_chromebook_is_no_cloud(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Chromebook's firmware says sys_vendor Google; only GCE says Google Compute Engine."""
    from tests.conftest import fixture_root

    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(fixture_root("chromebook")))
    tags = collect()
    assert "sys.cloud" not in tags
    assert tags["sys.cpu"] == "Intel(R) Core(TM) i7-7Y75 CPU @ 1.30GHz"


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


def test_shared_run_without_node_index_has_one_writer() -> None:
    """Open MPI: nodes cannot be named, so only rank 0 writes (as node 0); no two writers share a key."""
    from mlflow_sysmetrics._shared_run import shared_run_tags

    tags = {"sys.cpu": "X", "sys.dist.world_size": "4"}
    writers = [
        shared_run_tags(tags, distributed.DistInfo(rank=rank, local_rank=rank // 2, world_size=4))
        for rank in range(4)
    ]
    assert writers == [{"sys.cpu": "X", "sys.dist.world_size": "4"}, None, None, None]


def test_shared_run_keys_per_node() -> None:
    """On a run shared by a job: node 0 writes plain keys, node k sys.node<k>.*, others nothing."""
    from mlflow_sysmetrics._shared_run import shared_run_tags
    from mlflow_sysmetrics.tags import node_key

    tags = {"sys.cpu": "X", "sys.dist.rank": "5", "sys.dist.world_size": "8", "sysmetrics.error": "gpu: boom"}
    node0 = shared_run_tags(tags, distributed.DistInfo(rank=0, local_rank=0, world_size=8, node_rank=0))
    node2 = shared_run_tags(tags, distributed.DistInfo(rank=4, local_rank=0, world_size=8, node_rank=2))
    other = shared_run_tags(tags, distributed.DistInfo(rank=5, local_rank=1, world_size=8, node_rank=2))
    assert node0 == {"sys.cpu": "X", "sys.dist.world_size": "8", "sysmetrics.error": "gpu: boom"}
    assert node2 == {"sys.node2.cpu": "X", "sysmetrics.node2.error": "gpu: boom"}
    assert other is None
    assert node_key("sys.gpu", 0) == "sys.gpu"


def test_an_owners_asset_tag_stays_out_of_the_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A workstation's inventory number is an identifier: not in tags, not in the snapshot."""
    from mlflow_sysmetrics import snapshot

    dmi = tmp_path / "sys/class/dmi/id"
    dmi.mkdir(parents=True)
    (dmi / "sys_vendor").write_text("Dell Inc.\n")
    (dmi / "chassis_asset_tag").write_text("IT-004512\n")
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(tmp_path))
    document = snapshot()
    assert document["dmi"] == {"sys_vendor": "Dell Inc."}
    assert "IT-004512" not in str(document)


def test_a_clouds_asset_tag_marker_stays(monkeypatch: pytest.MonkeyPatch) -> None:
    """Azure writes one fixed asset tag on every VM: it names the cloud, not a machine."""
    from mlflow_sysmetrics import snapshot

    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(fixture_root("azure-vm")))
    document = snapshot()
    assert document["dmi"]["chassis_asset_tag"] == cloud.AZURE_ASSET_TAG
    assert document["tags"]["sys.cloud"] == "azure"
