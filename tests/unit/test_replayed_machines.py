"""Whole machines replayed from captured files: what collect() says about each."""

from __future__ import annotations

import ctypes.util
import os
import shutil
import subprocess
import sys

import pytest

from mlflow_sysmetrics import collect
from tests.conftest import Replay


def test_h100_capture_gives_the_documented_facts(replay: Replay) -> None:
    """The captured H100 VM: CPU model, OS and all six NVIDIA facts its files and outputs hold."""
    replay("h100-vm")
    tags = collect()
    expected = {
        "sys.cpu": "Intel(R) Xeon(R) Processor",
        "sys.cpu_cores": "16",
        "sys.cpu_physical_cores": "16",
        "sys.cpu_available": "16",
        "sys.memory_gb": "135.15",
        "sys.os": "Ubuntu 24.04.3 LTS",
        "sys.gpu": "NVIDIA H100 80GB HBM3",
        "sys.gpu_count": "1",
        "sys.gpu_memory_gb": "85.52",
        "sys.gpu_driver": "580.159.04",
        "sys.cuda_driver": "13.0",
        "sys.gpu_compute_capability": "9.0",
        "sys.container": "docker",
    }
    assert expected == {key: tags.get(key) for key in expected}
    assert "sysmetrics.error" not in tags
    assert "sys.memory_limit_gb" not in tags  # no limit was set on that machine
    assert "sys.gpu_mig" not in tags  # MIG is disabled there


def test_h100_files_alone_give_name_count_and_driver(replay: Replay) -> None:
    """Without nvidia-smi, the driver's /proc files still name the GPU, count it and give the driver."""
    replay("h100-vm", commands=False)
    tags = collect()
    assert tags["sys.gpu"] == "NVIDIA H100 80GB HBM3"
    assert tags["sys.gpu_count"] == "1"
    assert tags["sys.gpu_driver"] == "580.159.04"
    assert "sys.cuda_driver" not in tags
    assert "sysmetrics.error" not in tags


@pytest.mark.parametrize(
    ("machine", "expected", "absent"),
    [
        pytest.param(
            "cgroup-v2-namespaced",
            {
                "sys.cpu": "Intel(R) Xeon(R) Platinum 8480+",
                "sys.cpu_cores": "8",
                "sys.cpu_available": "1.5",  # cpu.max 150000 100000
                "sys.memory_limit_gb": "4.29",  # memory.max 4 GiB
                "sys.container": "podman",
            },
            (),
            id="container with its own cgroup namespace (0::/)",
        ),
        pytest.param(
            "cgroup-v2-nested",
            {
                "sys.cpu_cores": "32",
                "sys.cpu_physical_cores": "16",
                "sys.cpu_available": "2.5",  # the pod slice's limits bind its container scope
                "sys.memory_limit_gb": "8.59",
                "sys.container": "kubernetes",
            },
            (),
            id="Kubernetes pod without a cgroup namespace",
        ),
        pytest.param(
            "cgroup-v1",
            {
                "sys.cpu": "Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz",  # model name trimmed
                "sys.cpu_available": "0.5",  # CFS quota of half a core
                "sys.memory_limit_gb": "2.15",
                "sys.os": "Debian GNU/Linux 11 (bullseye)",
                "sys.container": "docker",
            },
            (),
            id="Docker on cgroup v1",
        ),
        pytest.param(
            "aws-graviton2",
            {
                "sys.cpu": "ARM Neoverse-N1",  # implementer and part, named as lscpu names them
                "sys.cpu_cores": "4",
                "sys.cpu_physical_cores": "4",
                "sys.os": "Amazon Linux 2023",  # NAME + VERSION stand in for PRETTY_NAME
                "sys.cloud": "aws",
                "sys.instance_type": "c6g.xlarge",
                "sys.gpu": "None",
                "sys.gpu_count": "0",
            },
            ("sys.container",),
            id="Graviton2 on AWS",
        ),
        pytest.param("gcp-vm", {"sys.cloud": "gcp"}, ("sys.instance_type",), id="GCP names no machine size"),
        pytest.param(
            "azure-vm", {"sys.cloud": "azure"}, ("sys.instance_type",), id="Azure names no machine size"
        ),
    ],
)
def test_replayed_machine(
    replay: Replay, machine: str, expected: dict[str, str], absent: tuple[str, ...]
) -> None:
    """Each replayed machine's facts, as its README derives them from its sources."""
    replay(machine)
    tags = collect()
    assert {key: tags.get(key) for key in expected} == expected
    assert [key for key in absent if key in tags] == []


def _lscpu(field: str) -> str:
    """A field of util-linux's lscpu, a reader of /proc/cpuinfo that is not ours."""
    lscpu = shutil.which("lscpu")
    assert lscpu, "util-linux's lscpu is needed to check the live machine's CPU against"
    output = subprocess.run([lscpu], capture_output=True, text=True, check=True, env={"LC_ALL": "C"}).stdout
    return next(line.split(":", 1)[1].strip() for line in output.splitlines() if line.startswith(f"{field}:"))


def test_this_machine_is_told_truly() -> None:
    """On the live machine: lscpu's model and CPU count, the usable cores no more than those, no error."""
    tags = collect()
    assert tags["sys.cpu"] == _lscpu("Model name")
    assert tags["sys.cpu_cores"] == _lscpu("CPU(s)")
    assert tags["sys.cpu_cores"] == str(os.cpu_count())
    assert float(tags["sys.cpu_available"]) <= os.cpu_count()  # type: ignore[operator]
    assert "sysmetrics.error" not in tags
    has_nvidia = os.path.isdir("/proc/driver/nvidia/gpus") or ctypes.util.find_library("nvidia-ml")
    if has_nvidia:
        assert int(tags["sys.gpu_count"]) >= 1
    else:
        assert tags["sys.gpu"] == "None"
        assert tags["sys.gpu_count"] == "0"
    for key in ("sys.memory_gb", "sys.disk_free_gb", "sys.disk_total_gb"):
        assert float(tags[key]) > 0


@pytest.mark.skipif(sys.version_info < (3, 13), reason="os.process_cpu_count() came with Python 3.13")
def test_usable_cores_agree_with_process_cpu_count() -> None:
    """Where no cgroup quota applies, sys.cpu_available is what Python 3.13 says the process may use."""
    from mlflow_sysmetrics._files import Root
    from mlflow_sysmetrics.collectors import _cgroup

    if _cgroup.cpu_quota(Root()) is not None:
        pytest.skip("a cgroup CPU quota applies here, which process_cpu_count() does not read")
    assert collect()["sys.cpu_available"] == str(os.process_cpu_count())  # type: ignore[attr-defined]
