"""NVIDIA GPUs: the driver's files, nvidia-smi's outputs and NVML, replayed."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from mlflow_sysmetrics import collect, snapshot
from mlflow_sysmetrics.collectors.accelerators.nvidia import fallback
from tests.conftest import FIXTURES, FakeCommands, Replay, expected, fixture_root
from tests.fresh import fresh_python

REPO = Path(__file__).resolve().parents[2]
NVML_SPECS = FIXTURES / "nvml"
#: The captured H100 VM's and the DGX's tags, as their READMEs give them.
H100 = expected("h100-vm")
DGX = expected("dgx-h100-8x")


def _python(code: str, **env: str) -> Any:
    """What ``code`` printed last, as JSON, in a fresh interpreter given ``env``."""
    return fresh_python(code, env=env).value


def test_driver_version_from_both_kernel_module_kinds() -> None:
    """The proprietary and the open kernel module write their version line differently."""
    proprietary = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.183.01  Sun May 12 19:39:15 UTC 2024"
    open_module = (
        "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build  (nixbld@)"
    )
    assert fallback.parse_driver_version(proprietary) == "535.183.01"
    assert fallback.parse_driver_version(open_module) == "580.159.04"
    assert fallback.parse_driver_version("garbage") is None


def test_query_csv_of_the_captured_h100() -> None:
    """The real nvidia-smi CSV, units and all, parses to one device and the driver.

    That capture asked ``power.limit``, the software limit: it is not taken for the enforced one.
    """
    (recording,) = (fixture_root("h100-vm") / "commands").glob("nvidia-smi--query-gpu=index*")
    devices, driver = fallback.parse_query_csv(recording.read_text())
    assert driver == H100["sys.gpu_driver"]
    assert [(d.name, d.memory_bytes, d.compute_capability, d.mig_enabled, d.bus_id) for d in devices] == [
        (H100["sys.gpu"], 81559 * 1024**2, H100["sys.gpu_compute_capability"], False, "00000000:00:06.0")
    ]
    assert devices[0].power_limit_w is None


def test_an_older_driver_is_asked_again_without_the_fields_it_refuses(replay: Replay) -> None:
    """R460 refuses compute_cap (R510): asked again without it, every other fact stays."""
    replay("a100-mig-r460")
    tags = collect()
    assert (
        tags["sys.gpu"],
        tags["sys.gpu_driver"],
        tags["sys.cuda_driver"],
    ) == ("A100-SXM4-40GB MIG 3g.20gb", "460.73.01", "11.2")
    assert "sys.gpu_compute_capability" not in tags
    assert "sysmetrics.error" not in tags


def test_cuda_version_from_header() -> None:
    """CUDA's version is only in nvidia-smi's header (no --query-gpu field holds it)."""
    header = (fixture_root("h100-vm") / "commands" / "nvidia-smi.txt").read_text()
    assert fallback.parse_cuda_version(header) == H100["sys.cuda_driver"]
    assert fallback.parse_cuda_version("CUDA Driver Version: 12.8") == "12.8"


def test_eight_identical_gpus(replay: Replay) -> None:
    """Eight H100s: one model name, a count of 8, one memory value."""
    replay("dgx-h100-8x")
    tags = collect()
    assert tags["sys.gpu"] == DGX["sys.gpu"]
    assert tags["sys.gpu_count"] == DGX["sys.gpu_count"] == "8"
    assert tags["sys.gpu_memory_gb"] == DGX["sys.gpu_memory_gb"]
    assert tags["sys.gpu_driver"] == DGX["sys.gpu_driver"]
    assert tags["sys.cuda_driver"] == DGX["sys.cuda_driver"]
    assert tags["sys.gpu_compute_capability"] == DGX["sys.gpu_compute_capability"]


def test_mixed_models_in_first_seen_order(replay: Replay) -> None:
    """Several models: counts and names in first-seen order, memory and capability alike."""
    replay("mixed-a100-t4")
    tags = collect()
    assert tags["sys.gpu"] == "2x NVIDIA A100-SXM4-80GB, 1x Tesla T4"
    assert tags["sys.gpu_count"] == "3"
    assert tags["sys.gpu_memory_gb"] == "85.9, 16.11"
    assert tags["sys.gpu_compute_capability"] == "8.0, 7.5"
    assert tags["sys.cuda_driver"] == "12.2"


def test_mig_enabled_one_process_enumerates_one_instance(replay: Replay) -> None:
    """MIG on, three instances: one CUDA process enumerates only the first (NVIDIA's MIG guide)."""
    replay("a100-mig")
    tags = collect()
    assert tags["sys.gpu"] == "NVIDIA A100-SXM4-40GB MIG 3g.20gb"
    assert tags["sys.gpu_count"] == "1"
    assert tags["sys.gpu_mig"] == "1x 3g.20gb"
    assert len(snapshot()["gpus"]) == 1


def test_mig_instances_named_the_old_way(replay: Replay, monkeypatch: pytest.MonkeyPatch) -> None:
    """R450/R460 drivers name MIG devices MIG-GPU-<uuid>/<gi>/<ci>, and know no compute_cap field."""
    replay("a100-mig-r460")
    tags = collect()
    assert (tags["sys.gpu"], tags["sys.gpu_driver"], tags["sys.cuda_driver"]) == (
        "A100-SXM4-40GB MIG 3g.20gb",
        "460.73.01",
        "11.2",
    )
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-GPU-e86cb44c-6756-fd30-cd4a-1e6da3caf9b0/2/0")
    assert collect()["sys.gpu_count"] == "1"
    assert snapshot()["gpus"][0]["uuid"] == "MIG-GPU-e86cb44c-6756-fd30-cd4a-1e6da3caf9b0/2/0"


def _uuids(root: str) -> list[str]:
    base = fixture_root(root) / "proc/driver/nvidia/gpus"
    return [
        fallback.parse_information((base / bus / "information").read_text())["GPU UUID"]
        for bus in sorted(os.listdir(base))
    ]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("0", "NVIDIA A100-SXM4-80GB|1"),
        ("2", "Tesla T4|1"),
        ("2,0", "1x Tesla T4, 1x NVIDIA A100-SXM4-80GB|2"),
        ("0,7,2", "NVIDIA A100-SXM4-80GB|1"),  # CUDA stops at the first entry naming no device
        ("1gpu2,2ampere", "1x NVIDIA A100-SXM4-80GB, 1x Tesla T4|2"),  # read as strtoul reads: 1,2
        ("0,1,0", "None|0"),  # a repeated ordinal gives CUDA an empty set
        ("1,1", "None|0"),
        ("", "None|0"),
        ("-1", "None|0"),
    ],
)
def test_cuda_visible_devices_indexes_in_bus_order(
    replay: Replay, monkeypatch: pytest.MonkeyPatch, spec: str, expected: str
) -> None:
    """With CUDA_DEVICE_ORDER=PCI_BUS_ID, indexes select in CUDA_VISIBLE_DEVICES's order."""
    replay("mixed-a100-t4")
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", spec)
    tags = collect()
    assert f"{tags['sys.gpu']}|{tags['sys.gpu_count']}" == expected
    assert "sysmetrics.error" not in tags


def test_indexes_on_mixed_models_without_bus_order_are_not_guessed(
    replay: Replay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CUDA's default order puts the fastest GPU first: index 2 may not be the T4. Count only, and say so."""
    replay("mixed-a100-t4")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")
    tags = collect()
    assert tags["sys.gpu_count"] == "1"
    assert "sys.gpu" not in tags
    assert "sys.gpu_memory_gb" not in tags
    assert tags["sys.gpu_driver"] == "535.183.01"  # the machine's, whichever GPU it is
    assert "CUDA_DEVICE_ORDER is not PCI_BUS_ID" in tags["sysmetrics.error"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,1,0")  # every GPU: the set is known
    assert collect()["sys.gpu"] == "1x Tesla T4, 2x NVIDIA A100-SXM4-80GB"


def test_indexes_on_identical_models_need_no_bus_order(
    replay: Replay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight H100s: whichever two CUDA means by 0,1, they are two H100s."""
    replay("dgx-h100-8x")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    tags = collect()
    assert (tags["sys.gpu"], tags["sys.gpu_count"]) == (DGX["sys.gpu"], "2")
    assert "sysmetrics.error" not in tags


def test_cuda_visible_devices_uuid_and_prefix(replay: Replay, monkeypatch: pytest.MonkeyPatch) -> None:
    """Full GPU- UUIDs and unique prefixes select the same GPU."""
    replay("mixed-a100-t4")
    t4 = _uuids("mixed-a100-t4")[2]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", t4)
    assert collect()["sys.gpu"] == "Tesla T4"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", t4[:12])
    assert collect()["sys.gpu"] == "Tesla T4"


def test_cuda_visible_devices_mig_uuids(replay: Replay, monkeypatch: pytest.MonkeyPatch) -> None:
    """A MIG- UUID selects that instance; of two, a CUDA process enumerates only the first."""
    replay("a100-mig")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-4e8a1c35-0d3b-5b9e-a1f0-6f2d0c9e7b21")
    tags = collect()
    assert tags["sys.gpu"] == "NVIDIA A100-SXM4-40GB MIG 2g.10gb"
    assert tags["sys.gpu_count"] == "1"
    assert tags["sys.gpu_mig"] == "1x 2g.10gb"
    monkeypatch.setenv(
        "CUDA_VISIBLE_DEVICES",
        "MIG-91b0d2aa-7c1e-5f43-9e3c-2d8b6a4f1e07,MIG-4e8a1c35-0d3b-5b9e-a1f0-6f2d0c9e7b21",
    )
    tags = collect()
    assert (tags["sys.gpu"], tags["sys.gpu_count"]) == ("NVIDIA A100-SXM4-40GB MIG 1g.5gb", "1")


def test_uninitialised_gpu_uuid_is_no_uuid(replay: Replay, monkeypatch: pytest.MonkeyPatch) -> None:
    """GPU-????????-... in the driver's file is a placeholder: nvidia-smi's real UUIDs win."""
    replay("nvidia-uninitialised")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-8a41c7d9")
    tags = collect()
    assert (tags["sys.gpu"], tags["sys.gpu_count"]) == ("NVIDIA A100-SXM4-80GB", "1")
    uuids = [gpu["uuid"] for gpu in snapshot()["gpus"]]
    assert uuids == ["GPU-8a41c7d9-0e6b-4f2a-b835-91d7e4c20f6b"]


def test_uninitialised_gpu_without_nvidia_smi(replay: Replay) -> None:
    """Without nvidia-smi the placeholder stays unknown: no UUID is made up."""
    replay("nvidia-uninitialised", commands=False)
    assert collect()["sys.gpu_count"] == "2"
    assert [gpu["uuid"] for gpu in snapshot()["gpus"]] == [None, None]


def test_container_without_nvidiactl_has_no_gpu(replay: Replay) -> None:
    """The host's /proc/driver/nvidia lists 8 GPUs, but without /dev/nvidiactl none can be opened."""
    replay("dgx-container-no-nvidiactl")
    tags = collect()
    assert (tags["sys.gpu"], tags["sys.gpu_count"]) == ("None", "0")
    assert "sysmetrics.error" not in tags
    assert "nvidiactl is missing" in snapshot()["gpu_sources"][0]["notes"][0]


def test_container_sees_only_its_device_nodes(
    tmp_path: Path, replay: Replay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/proc/driver/nvidia lists every GPU of the host; /dev/nvidia<minor> says which are ours."""
    import shutil

    root = tmp_path / "container"
    shutil.copytree(fixture_root("dgx-h100-8x"), root, symlinks=True)
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
    assert tags["sys.gpu"] == H100["sys.gpu"]
    assert tags["sysmetrics.error"].startswith(
        "gpu: CommandError: nvidia-smi exited with status 9: NVIDIA-SMI has failed"
    )


def test_nvidia_smi_garbage(replay: Replay, fake_commands: FakeCommands) -> None:
    """nvidia-smi printing bytes that are no CSV: named as an error, other facts stay."""
    replay("h100-vm", commands=False)
    fake_commands(scripts={"nvidia-smi": r"printf '\377\376garbage\000\n'"})
    tags = collect()
    assert tags["sys.gpu"] == H100["sys.gpu"]
    assert "gpu: ValueError: nvidia-smi" in tags["sysmetrics.error"]
    assert tags["sys.cpu"] == H100["sys.cpu"]


def test_nvidia_smi_megabytes(replay: Replay, fake_commands: FakeCommands) -> None:
    """Megabytes of output are cut off at the bound and named, never read whole."""
    replay("h100-vm", commands=False)
    fake_commands(scripts={"nvidia-smi": "yes 0123456789012345678901234567890123456789 | head -c 8000000"})
    tags = collect()
    assert "printed more than" in tags["sysmetrics.error"]
    assert tags["sys.gpu_count"] == H100["sys.gpu_count"]


def test_nvidia_smi_hang_costs_one_deadline(
    replay: Replay, fake_commands: FakeCommands, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A wedged nvidia-smi: the call returns near the deadline with the other tags; later calls are free."""
    replay("h100-vm", commands=False)
    calls = tmp_path / "calls"
    fake_commands(scripts={"nvidia-smi": f"echo call >> {calls}\nsleep 30"})
    monkeypatch.setenv("MLFLOW_SYSMETRICS_TIMEOUT", "0.5")
    started = time.monotonic()
    tags = collect()
    first = time.monotonic() - started
    assert first < 10  # cut off near the deadline, not the 30 s the program would take
    assert tags["sys.cpu"] == H100["sys.cpu"]
    assert "gpu: TimeoutError" in tags["sysmetrics.error"]
    again = collect()  # the collector that missed its deadline is not waited on again
    assert "gpu: TimeoutError" in again["sysmetrics.error"]
    assert calls.read_text().splitlines() == ["call"]  # nvidia-smi was not started again


def _run_with_nvml(fake_nvml: Path, spec: str, tmp_path: Path, code: str, **env: str) -> Any:
    spec_file = tmp_path / "spec.txt"
    spec_file.write_text(spec)
    env = {"LD_LIBRARY_PATH": str(fake_nvml), "FAKE_NVML_SPEC": str(spec_file), **env}
    return fresh_python(code, env=env, timeout=60).value


H100_SPEC = (NVML_SPECS / "h100.txt").read_text()
COLLECT = "import json, mlflow_sysmetrics as m; print(json.dumps(m.collect()))"


def test_nvml_gives_every_gpu_fact(fake_nvml: Path, tmp_path: Path) -> None:
    """Through NVML (a stand-in library answering as the captured H100's NVML did)."""
    tags = _run_with_nvml(fake_nvml, H100_SPEC, tmp_path, COLLECT)
    facts = ("sys.gpu", "sys.gpu_count", "sys.gpu_memory_gb", "sys.gpu_driver", "sys.cuda_driver")
    facts += ("sys.gpu_compute_capability", "sys.gpu_power_limit_w", "sys.gpu_link")
    assert {k: tags[k] for k in tags if k.startswith(("sys.gpu", "sys.cuda"))} == {k: H100[k] for k in facts}
    assert "sysmetrics.error" not in tags


def test_nvml_mig_instances_and_visibility(fake_nvml: Path, tmp_path: Path) -> None:
    """NVML's MIG instances carry their own memory, and are found by new and old names alike."""
    spec = (NVML_SPECS / "a100-mig.txt").read_text()
    whole = _run_with_nvml(fake_nvml, spec, tmp_path, COLLECT)
    second = _run_with_nvml(
        fake_nvml, spec, tmp_path, COLLECT, CUDA_VISIBLE_DEVICES="MIG-4e8a1c35-0d3b-5b9e-a1f0-6f2d0c9e7b21"
    )
    old_name = _run_with_nvml(
        fake_nvml,
        spec,
        tmp_path,
        COLLECT,
        CUDA_VISIBLE_DEVICES="MIG-GPU-5d5ba0d6-d33d-2b2c-524d-9e3d8d2b8a77/5/0",
    )
    assert (whole["sys.gpu"], whole["sys.gpu_mig"], whole["sys.cuda_driver"]) == (
        "NVIDIA A100-SXM4-40GB MIG 3g.20gb",
        "1x 3g.20gb",
        "12.4",
    )
    assert (second["sys.gpu"], second["sys.gpu_memory_gb"], second["sys.gpu_count"]) == (
        "NVIDIA A100-SXM4-40GB MIG 2g.10gb",
        "10.47",
        "1",
    )
    assert old_name["sys.gpu"] == second["sys.gpu"]


def test_nvml_mig_instance_of_another_container(fake_nvml: Path, tmp_path: Path) -> None:
    """An instance whose handle is refused (NO_PERMISSION) belongs to someone else: skipped, not fatal."""
    tags = _run_with_nvml(fake_nvml, (NVML_SPECS / "a100-mig-container.txt").read_text(), tmp_path, COLLECT)
    assert (tags["sys.gpu"], tags["sys.gpu_count"]) == ("NVIDIA A100-SXM4-40GB MIG 2g.10gb", "1")
    assert "sysmetrics.error" not in tags


def test_nvml_slurm_constrained_gpu(fake_nvml: Path, tmp_path: Path) -> None:
    """NVML counts both GPUs; the one the job was not given answers NO_PERMISSION and is left out."""
    tags = _run_with_nvml(fake_nvml, (NVML_SPECS / "slurm-one-of-two.txt").read_text(), tmp_path, COLLECT)
    assert (tags["sys.gpu"], tags["sys.gpu_count"]) == ("NVIDIA H100 80GB HBM3", "1")
    assert "sysmetrics.error" not in tags
    code = "import json, mlflow_sysmetrics as m; print(json.dumps(m.snapshot()['gpus']))"
    gpus = _run_with_nvml(fake_nvml, (NVML_SPECS / "slurm-one-of-two.txt").read_text(), tmp_path, code)
    assert [(g["index"], g["uuid"]) for g in gpus] == [(0, "GPU-81d13c12-092e-5dc5-f6ef-971415c2f43a")]


def test_nvml_one_gpu_failing_keeps_the_other(fake_nvml: Path, tmp_path: Path) -> None:
    """A GPU that is lost is named in sysmetrics.error; the healthy one is still tagged."""
    tags = _run_with_nvml(fake_nvml, (NVML_SPECS / "gpu-lost.txt").read_text(), tmp_path, COLLECT)
    assert (tags["sys.gpu"], tags["sys.gpu_count"]) == ("NVIDIA H100 80GB HBM3", "1")
    assert "NVML device 1" in tags["sysmetrics.error"]
    assert "GPU is lost" in tags["sysmetrics.error"]


def test_nvml_failing_without_a_driver_is_no_gpu(fake_nvml: Path, tmp_path: Path) -> None:
    """A CUDA image on a CPU host: NVML is there but the driver is not, so there is no GPU and no error."""
    if os.path.isdir("/proc/driver/nvidia/gpus"):
        pytest.skip("this host has an NVIDIA driver; benchmarks/gpu_check.sh checks that case on one")
    tags = _run_with_nvml(fake_nvml, (NVML_SPECS / "driver-not-loaded.txt").read_text(), tmp_path, COLLECT)
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
    assert float(tags["elapsed"]) < 10  # the deadline, not the 20 s NVML's init hangs
    assert "gpu: TimeoutError" in tags["sysmetrics.error"]
    assert "sys.cpu" in tags


def test_h100_power_limit_and_link_from_its_capture(replay: Replay) -> None:
    """The captured H100: enforced power limit 700 W, PCIe Gen5 x16 (its nvidia-smi -q -x)."""
    replay("h100-vm")
    tags = collect()
    assert (tags["sys.gpu_power_limit_w"], tags["sys.gpu_link"]) == (
        H100["sys.gpu_power_limit_w"],
        H100["sys.gpu_link"],
    )
    (gpu,) = snapshot()["gpus"]
    assert (gpu["power_limit_w"], gpu["pcie_generation"], gpu["pcie_width"]) == (700.0, 5, 16)


def test_ecc_mode_from_both_nvidia_sources(replay: Replay, fake_nvml: Path, tmp_path: Path) -> None:
    """ECC on: the captured H100's nvidia-smi (`current_ecc` Enabled) and a DGX through NVML."""
    replay("h100-vm")
    assert collect()["sys.gpu_ecc"] == H100["sys.gpu_ecc"] == "on"
    spec = tmp_path / "spec.txt"
    spec.write_text((NVML_SPECS / "dgx-h100-8x.txt").read_text())
    tags = _python(COLLECT, LD_LIBRARY_PATH=str(fake_nvml), FAKE_NVML_SPEC=str(spec))
    assert tags["sys.gpu_ecc"] == "on"
    spec.write_text((NVML_SPECS / "h100.txt").read_text())  # a GPU that answers NOT_SUPPORTED
    assert "sys.gpu_ecc" not in _python(COLLECT, LD_LIBRARY_PATH=str(fake_nvml), FAKE_NVML_SPEC=str(spec))


def test_the_enforced_power_limit_not_the_software_one(replay: Replay) -> None:
    """An HGX H100 whose BMC caps each GPU at 500 W while software still asks 700 W.

    nvidia-smi --help-query-gpu: power.limit is "the software power limit";
    enforced.power.limit is "the minimum of various power limiters", as NVML's enforced
    limit is. No NVML here (the nvidia-smi path).
    """
    replay("hgx-h100-bmc-capped")
    tags = collect()
    capped = expected("hgx-h100-bmc-capped")
    assert {key: tags.get(key) for key in capped} == capped
    assert capped["sys.gpu_power_limit_w"] == "500"


def test_nvml_power_pcie_and_nvlink(fake_nvml: Path, tmp_path: Path) -> None:
    """A DGX H100 through NVML: 700 W enforced, PCIe Gen5 x16, all 18 NVLink links of each GPU active."""
    spec = tmp_path / "spec.txt"
    spec.write_text((NVML_SPECS / "dgx-h100-8x.txt").read_text())
    tags = _python(
        "import json, mlflow_sysmetrics as m; print(json.dumps(m.collect()))",
        LD_LIBRARY_PATH=str(fake_nvml),
        FAKE_NVML_SPEC=str(spec),
    )
    assert (tags["sys.gpu_count"], tags["sys.gpu_power_limit_w"], tags["sys.gpu_link"]) == (
        "8",
        "700",
        "PCIe Gen5 x16, NVLink 18 links",
    )
