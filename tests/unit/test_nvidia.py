"""NVIDIA GPUs: the driver's files, nvidia-smi's outputs and NVML, replayed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mlflow_sysmetrics import collect
from mlflow_sysmetrics.collectors import _nvml, nvidia
from mlflow_sysmetrics.collectors.gpu import Device, select_visible
from tests.conftest import FakeCommands, Replay, fixture_root

REPO = Path(__file__).resolve().parents[2]


def test_driver_version_from_both_kernel_module_kinds() -> None:
    """The proprietary and the open kernel module write their version line differently."""
    proprietary = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.183.01  Sun May 12 19:39:15 UTC 2024"
    open_module = (
        "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build  (nixbld@)"
    )
    assert nvidia.parse_driver_version(proprietary) == "535.183.01"
    assert nvidia.parse_driver_version(open_module) == "580.159.04"
    assert nvidia.parse_driver_version("garbage") is None


def test_query_csv_of_the_captured_h100() -> None:
    """The real nvidia-smi CSV, units and all, parses to one device and the driver."""
    text = (
        fixture_root("h100-vm") / "commands" / f"nvidia-smi--query-gpu={nvidia.QUERY_FIELDS}--format=csv.txt"
    ).read_text()
    devices, driver = nvidia.parse_query_csv(text)
    assert driver == "580.159.04"
    assert [(d.name, d.memory_bytes, d.compute_capability, d.mig_enabled, d.bus_id) for d in devices] == [
        ("NVIDIA H100 80GB HBM3", 81559 * 1024**2, "9.0", False, "00000000:00:06.0")
    ]


def test_cuda_version_from_header() -> None:
    """CUDA's version is only in nvidia-smi's header (no --query-gpu field holds it)."""
    header = (fixture_root("h100-vm") / "commands" / "nvidia-smi.txt").read_text()
    assert nvidia.parse_cuda_version(header) == "13.0"
    assert nvidia.parse_cuda_version("CUDA Driver Version: 12.8") == "12.8"


def test_eight_identical_gpus(replay: Replay) -> None:
    """Eight H100s: one model name, a count of 8, one memory value."""
    replay("dgx-h100-8x")
    tags = collect()
    assert tags["sys.gpu"] == "NVIDIA H100 80GB HBM3"
    assert tags["sys.gpu_count"] == "8"
    assert tags["sys.gpu_memory_gb"] == "85.52"
    assert tags["sys.gpu_driver"] == "550.90.07"
    assert tags["sys.cuda_driver"] == "12.4"
    assert tags["sys.gpu_compute_capability"] == "9.0"


def test_mixed_models_in_first_seen_order(replay: Replay) -> None:
    """Several models: counts and names in first-seen order, memory and capability alike."""
    replay("mixed-a100-t4")
    tags = collect()
    assert tags["sys.gpu"] == "2x NVIDIA A100-SXM4-80GB, 1x Tesla T4"
    assert tags["sys.gpu_count"] == "3"
    assert tags["sys.gpu_memory_gb"] == "85.9, 16.11"
    assert tags["sys.gpu_compute_capability"] == "8.0, 7.5"
    assert tags["sys.cuda_driver"] == "12.2"


def test_mig_enabled(replay: Replay) -> None:
    """MIG on: the instances in use are named in sys.gpu_mig."""
    replay("a100-mig")
    tags = collect()
    assert tags["sys.gpu"] == "NVIDIA A100-SXM4-40GB"
    assert tags["sys.gpu_mig"] == "1x 3g.20gb, 1x 2g.10gb, 1x 1g.5gb"


def _uuids(root: str) -> list[str]:
    base = fixture_root(root) / "proc/driver/nvidia/gpus"
    return [
        nvidia.parse_information((base / bus / "information").read_text())["GPU UUID"]
        for bus in sorted(os.listdir(base))
    ]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("0", "NVIDIA A100-SXM4-80GB|1"),
        ("2", "Tesla T4|1"),
        ("2,0", "1x Tesla T4, 1x NVIDIA A100-SXM4-80GB|2"),
        ("0,7,2", "NVIDIA A100-SXM4-80GB|1"),  # CUDA stops at the first entry naming no device
        ("", "None|0"),
        ("-1", "None|0"),
    ],
)
def test_cuda_visible_devices_indexes(
    replay: Replay, monkeypatch: pytest.MonkeyPatch, spec: str, expected: str
) -> None:
    """Indexes select in CUDA_VISIBLE_DEVICES's order; an empty value hides every GPU."""
    replay("mixed-a100-t4")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", spec)
    tags = collect()
    assert f"{tags['sys.gpu']}|{tags['sys.gpu_count']}" == expected


def test_cuda_visible_devices_uuid_and_prefix(replay: Replay, monkeypatch: pytest.MonkeyPatch) -> None:
    """Full GPU- UUIDs and unique prefixes select the same GPU."""
    replay("mixed-a100-t4")
    t4 = _uuids("mixed-a100-t4")[2]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", t4)
    assert collect()["sys.gpu"] == "Tesla T4"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", t4[:12])
    assert collect()["sys.gpu"] == "Tesla T4"


def test_cuda_visible_devices_mig_uuid(replay: Replay, monkeypatch: pytest.MonkeyPatch) -> None:
    """A MIG- UUID selects that MIG instance."""
    replay("a100-mig")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-4e8a1c35-0d3b-5b9e-a1f0-6f2d0c9e7b21")
    tags = collect()
    assert tags["sys.gpu"] == "NVIDIA A100-SXM4-40GB MIG 2g.10gb"
    assert tags["sys.gpu_count"] == "1"
    assert tags["sys.gpu_mig"] == "1x 2g.10gb"


def test_select_visible_rejects_duplicates_and_ambiguous_prefixes() -> None:
    """A repeated or ambiguous entry ends the list, as CUDA's parser does."""
    devices = [Device("nvidia", 0, "A", "GPU-abcd1111"), Device("nvidia", 1, "B", "GPU-abcd2222")]
    assert [d.name for d in select_visible(devices, "1,1,0")] == ["B"]
    assert select_visible(devices, "GPU-abcd") == []
    assert [d.name for d in select_visible(devices, None)] == ["A", "B"]


def test_container_sees_only_its_device_nodes(
    tmp_path: Path, replay: Replay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/proc/driver/nvidia lists every GPU of the host; /dev/nvidia<minor> says which are ours."""
    import shutil

    root = tmp_path / "container"
    shutil.copytree(fixture_root("dgx-h100-8x"), root)
    (root / "dev").mkdir()
    (root / "dev" / "nvidiactl").touch()
    (root / "dev" / "nvidia3").touch()
    (root / "dev" / "nvidia5").touch()
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(root))
    tags = collect()
    assert tags["sys.gpu_count"] == "2"


def test_nvidia_smi_failing_keeps_the_driver_files_facts(replay: Replay, fake_commands: FakeCommands) -> None:
    """nvidia-smi exiting non-zero: one error clause, and the /proc facts stay."""
    replay("h100-vm", commands=False)
    fake_commands(
        scripts={"nvidia-smi": "echo 'NVIDIA-SMI has failed because it could not communicate' >&2; exit 9"}
    )
    tags = collect()
    assert tags["sys.gpu"] == "NVIDIA H100 80GB HBM3"
    assert tags["sysmetrics.error"].startswith(
        "gpu: CommandError: nvidia-smi exited with status 9: NVIDIA-SMI has failed"
    )


def test_nvidia_smi_garbage(replay: Replay, fake_commands: FakeCommands) -> None:
    """nvidia-smi printing bytes that are no CSV: named as an error, other facts stay."""
    replay("h100-vm", commands=False)
    fake_commands(scripts={"nvidia-smi": r"printf '\377\376garbage\000\n'"})
    tags = collect()
    assert tags["sys.gpu"] == "NVIDIA H100 80GB HBM3"
    assert "gpu: ValueError: nvidia-smi" in tags["sysmetrics.error"]
    assert tags["sys.cpu"] == "Intel(R) Xeon(R) Processor"


def test_nvidia_smi_megabytes(replay: Replay, fake_commands: FakeCommands) -> None:
    """Megabytes of output are cut off at the bound and named, never read whole."""
    replay("h100-vm", commands=False)
    fake_commands(scripts={"nvidia-smi": "yes 0123456789012345678901234567890123456789 | head -c 8000000"})
    tags = collect()
    assert "printed more than" in tags["sysmetrics.error"]
    assert tags["sys.gpu_count"] == "1"


def test_nvidia_smi_hang_costs_one_deadline(
    replay: Replay, fake_commands: FakeCommands, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wedged nvidia-smi: the call returns near the deadline with the other tags; later calls are free."""
    replay("h100-vm", commands=False)
    fake_commands(scripts={"nvidia-smi": "sleep 30"})
    monkeypatch.setenv("MLFLOW_SYSMETRICS_TIMEOUT", "0.5")
    started = time.monotonic()
    tags = collect()
    first = time.monotonic() - started
    assert first < 1.5  # loosely: under 3x the deadline
    assert tags["sys.cpu"] == "Intel(R) Xeon(R) Processor"
    assert "gpu: TimeoutError" in tags["sysmetrics.error"]
    assert "sys.gpu" not in tags or tags["sys.gpu"] == "NVIDIA H100 80GB HBM3"
    time.sleep(0.3)  # the killed tool's collector finishes and is remembered
    started = time.monotonic()
    again = collect()
    assert time.monotonic() - started < 0.25
    assert "gpu: TimeoutError" in again["sysmetrics.error"]


def _run_with_nvml(fake_nvml: Path, spec: str, tmp_path: Path, code: str, **env: str) -> Any:
    spec_file = tmp_path / "spec.txt"
    spec_file.write_text(spec)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_SYSMETRICS")}
    environ.update(LD_LIBRARY_PATH=str(fake_nvml), FAKE_NVML_SPEC=str(spec_file), PYTHONPATH=str(REPO), **env)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=60, check=True
    )
    return json.loads(result.stdout)


H100_SPEC = (
    "driver 580.159.04\ncuda 13000\n"
    "gpu 85520809984 9 0 0 00000000:00:06.0 GPU-9c50839b-087d-2747-602b-26b91ab74952 NVIDIA H100 80GB HBM3\n"
)


def test_nvml_gives_all_six_facts(fake_nvml: Path, tmp_path: Path) -> None:
    """Through NVML (a stand-in library answering as the captured H100's NVML did)."""
    tags = _run_with_nvml(
        fake_nvml, H100_SPEC, tmp_path, "import json, mlflow_sysmetrics as m; print(json.dumps(m.collect()))"
    )
    assert {k: tags[k] for k in tags if k.startswith(("sys.gpu", "sys.cuda"))} == {
        "sys.gpu": "NVIDIA H100 80GB HBM3",
        "sys.gpu_count": "1",
        "sys.gpu_memory_gb": "85.52",
        "sys.gpu_driver": "580.159.04",
        "sys.cuda_driver": "13.0",
        "sys.gpu_compute_capability": "9.0",
    }
    assert "sysmetrics.error" not in tags


def test_nvml_mig_instances_and_visibility(fake_nvml: Path, tmp_path: Path) -> None:
    """NVML's MIG instances, chosen by MIG- UUID, carry their own memory."""
    spec = (
        "driver 550.54.15\ncuda 12040\n"
        "gpu 42949672960 8 0 1 00000000:00:04.0 GPU-5d5ba0d6-d33d-2b2c-524d-9e3d8d2b8a77 NVIDIA A100-SXM4-40GB\n"
        "mig 0 20937965568 MIG-c6d4f1ef-42e4-5de3-91c7-45d71c87eb3f NVIDIA A100-SXM4-40GB MIG 3g.20gb\n"
        "mig 0 10468982784 MIG-4e8a1c35-0d3b-5b9e-a1f0-6f2d0c9e7b21 NVIDIA A100-SXM4-40GB MIG 2g.10gb\n"
    )
    code = "import json, mlflow_sysmetrics as m; print(json.dumps(m.collect()))"
    whole = _run_with_nvml(fake_nvml, spec, tmp_path, code)
    one = _run_with_nvml(
        fake_nvml, spec, tmp_path, code, CUDA_VISIBLE_DEVICES="MIG-c6d4f1ef-42e4-5de3-91c7-45d71c87eb3f"
    )
    assert (whole["sys.gpu_mig"], whole["sys.cuda_driver"]) == ("1x 3g.20gb, 1x 2g.10gb", "12.4")
    assert (one["sys.gpu"], one["sys.gpu_memory_gb"], one["sys.gpu_count"]) == (
        "NVIDIA A100-SXM4-40GB MIG 3g.20gb",
        "20.94",
        "1",
    )


def test_nvml_failing_falls_back_to_the_driver_files(fake_nvml: Path, tmp_path: Path) -> None:
    """NVML failing to start: no GPU where no driver is loaded, else the driver files' GPUs.

    A CUDA image on a CPU host has NVML but no driver. On a real NVIDIA machine the driver's
    files still list the GPUs, and NVML's failure is named.
    """
    tags = _run_with_nvml(
        fake_nvml,
        "init_error 9\n",
        tmp_path,
        "import json, mlflow_sysmetrics as m; print(json.dumps(m.collect()))",
    )
    if os.path.isdir("/proc/driver/nvidia/gpus"):  # a real NVIDIA machine
        assert int(tags["sys.gpu_count"]) >= 1
        assert "gpu: NVMLError: nvmlInit_v2 returned 9: Driver Not Loaded" in tags["sysmetrics.error"]
    else:
        assert (tags["sys.gpu"], tags["sys.gpu_count"]) == ("None", "0")
        assert "sysmetrics.error" not in tags


def test_nvml_hang_is_bounded_by_the_deadline(fake_nvml: Path, tmp_path: Path) -> None:
    """An NVML call that never returns costs the deadline, not the run."""
    code = (
        "import json, time, mlflow_sysmetrics as m; s = time.monotonic(); t = m.collect(); "
        "t['elapsed'] = time.monotonic() - s; print(json.dumps(t))"
    )
    tags = _run_with_nvml(
        fake_nvml, H100_SPEC + "init_sleep_ms 20000\n", tmp_path, code, MLFLOW_SYSMETRICS_TIMEOUT="0.5"
    )
    assert float(tags["elapsed"]) < 1.5
    assert "gpu: TimeoutError" in tags["sysmetrics.error"]
    assert "sys.cpu" in tags


def test_nvml_library_names_per_platform() -> None:
    """The Linux soname is tried first; nothing else is needed from the bindings package."""
    assert _nvml.library_names()[0] == "libnvidia-ml.so.1"
    assert _nvml.cuda_version_text(12040) == "12.4"
