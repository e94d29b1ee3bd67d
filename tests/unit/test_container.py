"""Containers: the runtime's markers, its variables and the cgroup path."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlflow_sysmetrics import collect
from mlflow_sysmetrics.collectors import container
from tests.conftest import documented, fixture_root


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
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(fixture_root("ecs-fargate")))
    monkeypatch.setenv("container", "oci")
    tags = collect()
    assert (tags["sys.container"], tags["sys.memory_limit_gb"]) == documented(
        "ecs-fargate", "sys.container", "sys.memory_limit_gb"
    )


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
