"""Containers, clouds and launcher ranks: markers, firmware strings and environment variables."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mlflow_sysmetrics import collect
from mlflow_sysmetrics.collectors import cloud, container, distributed


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
    """Srun's variables, and the job id."""
    info = distributed.read(
        {
            "SLURM_PROCID": "3",
            "SLURM_LOCALID": "1",
            "SLURM_NTASKS": "4",
            "SLURM_NODEID": "1",
            "SLURM_NNODES": "2",
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


def test_open_mpi_variables_node_from_local_size() -> None:
    """Open MPI names no node index; with a uniform local size it follows from the rank."""
    info = distributed.read(
        {
            "OMPI_COMM_WORLD_RANK": "6",
            "OMPI_COMM_WORLD_LOCAL_RANK": "2",
            "OMPI_COMM_WORLD_SIZE": "8",
            "OMPI_COMM_WORLD_LOCAL_SIZE": "4",
        }
    )
    assert (info.rank, info.local_rank, info.world_size, info.node_rank) == (6, 2, 8, 1)


def test_torchrun_under_srun_reports_torch_ranks() -> None:
    """Torchrun started by srun: torch's ranks are the ones training code uses."""
    info = distributed.read({"RANK": "7", "SLURM_PROCID": "1", "WORLD_SIZE": "8", "SLURM_NTASKS": "2"})
    assert (info.rank, info.world_size) == (7, 8)


def test_garbage_values_are_ignored_with_a_debug_line(caplog: pytest.LogCaptureFixture) -> None:
    """RANK=abc, a negative local rank, a rank beyond the world: ignored, never a crash."""
    caplog.set_level(logging.DEBUG, logger="mlflow_sysmetrics")
    info = distributed.read({"RANK": "abc", "LOCAL_RANK": "-1", "WORLD_SIZE": "4", "SLURM_PROCID": "9"})
    assert (info.rank, info.local_rank, info.world_size) == (None, None, 4)
    assert "ignoring RANK='abc'" in caplog.text


def test_dist_tags_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rank tags are read on every call: a changed environment shows at once."""
    assert not any(k.startswith("sys.dist") for k in collect())
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    tags = collect()
    assert (tags["sys.dist.rank"], tags["sys.dist.world_size"], tags["sys.slurm.job_id"]) == ("1", "2", "42")


def test_shared_run_keys_per_node() -> None:
    """On a run shared by a job: node 0 writes plain keys, node k sys.node<k>.*, others nothing."""
    from mlflow_sysmetrics.runs import node_key, shared_run_tags

    tags = {"sys.cpu": "X", "sys.dist.rank": "5", "sys.dist.world_size": "8", "sysmetrics.error": "gpu: boom"}
    node0 = shared_run_tags(tags, distributed.DistInfo(rank=0, local_rank=0, world_size=8, node_rank=0))
    node2 = shared_run_tags(tags, distributed.DistInfo(rank=4, local_rank=0, world_size=8, node_rank=2))
    other = shared_run_tags(tags, distributed.DistInfo(rank=5, local_rank=1, world_size=8, node_rank=2))
    assert node0 == {"sys.cpu": "X", "sys.dist.world_size": "8", "sysmetrics.error": "gpu: boom"}
    assert node2 == {"sys.node2.cpu": "X", "sysmetrics.node2.error": "gpu: boom"}
    assert other is None
    assert node_key("sys.gpu", 0) == "sys.gpu"
