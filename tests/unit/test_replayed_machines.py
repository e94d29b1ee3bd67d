"""Whole machines replayed from captured files: what collect() says about each."""

from __future__ import annotations

import ctypes.util
import os
import shutil
import subprocess
import sys

import pytest

from mlflow_sysmetrics import collect
from tests.conftest import Replay, expected, machine_environment, replayed_machines


def test_h100_capture_gives_the_documented_facts(replay: Replay) -> None:
    """The captured H100 VM: CPU model, OS and all the NVIDIA facts its files and outputs hold.

    Its README says where each comes from; no limit was set on that machine, and MIG is
    disabled there.
    """
    replay("h100-vm")
    tags = collect()
    documented = expected("h100-vm")
    assert {key: tags.get(key) for key in documented} == documented
    assert "sysmetrics.error" not in tags


def test_h100_files_alone_give_name_count_and_driver(replay: Replay) -> None:
    """Without nvidia-smi, the driver's /proc files still name the GPU, count it and give the driver."""
    replay("h100-vm", commands=False)
    tags = collect()
    documented = expected("h100-vm")
    assert tags["sys.gpu"] == documented["sys.gpu"]
    assert tags["sys.gpu_count"] == documented["sys.gpu_count"]
    assert tags["sys.gpu_driver"] == documented["sys.gpu_driver"]
    assert "sys.cuda_driver" not in tags
    assert "sysmetrics.error" not in tags


@pytest.mark.parametrize("machine", replayed_machines())
def test_replayed_machine(replay: Replay, monkeypatch: pytest.MonkeyPatch, machine: str) -> None:
    """Each replayed machine's facts, as its README derives them from its sources (its expected.json).

    A tag the README says the machine has not (``null``) is absent; the environment the
    README names (``container=oci`` in ECS's image) is set first.
    """
    for name, value in machine_environment(machine).items():
        monkeypatch.setenv(name, value)
    replay(machine)
    tags = collect()
    documented = expected(machine)
    assert {key: tags.get(key) for key in documented} == documented


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
