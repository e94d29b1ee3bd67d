"""The facts that explain a slow run: frameworks, GPU power limit and links, the RDMA fabric."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from mlflow_sysmetrics import _shared_run, collect, snapshot
from mlflow_sysmetrics._files import Root
from mlflow_sysmetrics.collectors import distributed, frameworks, network
from mlflow_sysmetrics.collectors.accelerators import pci
from tests.conftest import FIXTURES, Replay
from tests.fresh import fresh_python

REPO = Path(__file__).resolve().parents[2]
COLLECT = "import json, mlflow_sysmetrics as m; print(json.dumps(m.collect()))"
NVML_SPECS = FIXTURES / "nvml"


def _python(code: str, **env: str) -> Any:
    return fresh_python(code, env=env).value


def test_h100_power_limit_and_link_from_its_capture(replay: Replay) -> None:
    """The captured H100: enforced power limit 700 W, PCIe Gen5 x16 (its nvidia-smi -q -x)."""
    replay("h100-vm")
    tags = collect()
    assert (tags["sys.gpu_power_limit_w"], tags["sys.gpu_link"]) == ("700", "PCIe Gen5 x16")
    (gpu,) = snapshot()["gpus"]
    assert (gpu["power_limit_w"], gpu["pcie_generation"], gpu["pcie_width"]) == (700.0, 5, 16)


def test_ecc_mode_from_both_nvidia_sources(replay: Replay, fake_nvml: Path, tmp_path: Path) -> None:
    """ECC on: the captured H100's nvidia-smi (`current_ecc` Enabled) and a DGX through NVML."""
    replay("h100-vm")
    assert collect()["sys.gpu_ecc"] == "on"
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
    assert (
        tags["sys.gpu_count"],
        tags["sys.gpu_power_limit_w"],
        tags["sys.gpu_link"],
    ) == ("8", "500", "PCIe Gen5 x16")


def test_a_gen5_gpu_in_a_gen4_slot(replay: Replay) -> None:
    """An H100 PCIe (max_link_speed 32 GT/s) under a 16 GT/s root port: the link is Gen4.

    max_link_speed is what one end supports (pcie_get_speed_cap); the link runs at the
    lower end, which is what nvidia-smi's pcie.link.gen.max ("possible with this GPU and
    system") says too.
    """
    root = replay("h100-pcie-gen4-server")
    assert collect()["sys.gpu_link"] == "PCIe Gen4 x16"
    assert pci.link(Root(str(root)), "0000:17:00.0") == (4, 16)


def test_an_amd_gpu_behind_its_own_switch_in_an_x8_slot(replay: Replay) -> None:
    """A W7900 (x16 to AMD's internal switch 1478/1479) in a slot wired x8: PCIe Gen4 x8.

    The slot's link is above the switch (amdgpu_device_partner_bandwidth skips 1002 bridges);
    idle, amdgpu has narrowed it to x1 (pp_dpm_pcie level 0), which must not shrink the tag.
    """
    root = replay("amd-w7900-x8-slot", commands=False)
    assert collect()["sys.gpu_link"] == "PCIe Gen4 x8"
    assert pci.link(Root(str(root)), "0000:03:00.0") == (4, 16)  # the GPU's own link, to the switch


def test_an_amd_link_trained_narrower_at_full_speed(replay: Replay) -> None:
    """A W7900's slot link at 16.0 GT/s (the most both ends allow) but x8 where both ends support x16.

    amdgpu's power levels lower the speed with the width; at full speed the link is in none,
    so x8 is the width it runs at (fixture README: sysfs-bus-pci's current_link_speed and
    current_link_width, amdgpu_device_partner_bandwidth for the slot's link).
    """
    root = replay("amd-w7900-x8-full-speed", commands=False)
    assert collect()["sys.gpu_link"] == "PCIe Gen4 x8"
    link = pci.link(
        Root(str(root)), "0000:03:00.0", internal_bridge_vendor=0x1002, width_drops_when_idle=True
    )
    assert link == (4, 8)


def test_an_amd_link_narrowed_by_a_power_state_is_told_at_its_width(tmp_path: Path) -> None:
    """The same machine idle (2.5 GT/s x1 at both ends of the slot's link): x16, what both ends support."""
    root = tmp_path / "idle"
    shutil.copytree(FIXTURES / "amd-w7900-x8-full-speed", root, symlinks=True)
    slot = root / "sys/devices/pci0000:00/0000:00:01.1"
    for end in (slot, slot / "0000:01:00.0"):
        (end / "current_link_speed").write_text("2.5 GT/s PCIe\n")
        (end / "current_link_width").write_text("1\n")
    link = pci.link(
        Root(str(root)), "0000:03:00.0", internal_bridge_vendor=0x1002, width_drops_when_idle=True
    )
    assert link == (4, 16)


def test_mixed_models_list_power_per_model_and_say_mixed_links(replay: Replay) -> None:
    """Power limits in sys.gpu's order; links that differ are "mixed", each GPU's in the snapshot."""
    replay("mixed-a100-t4")
    tags = collect()
    assert (tags["sys.gpu_power_limit_w"], tags["sys.gpu_link"]) == ("400, 70", "mixed")
    links = [(g["name"], g["pcie_generation"], g["pcie_width"]) for g in snapshot()["gpus"]]
    assert links == [
        ("NVIDIA A100-SXM4-80GB", 4, 16),
        ("NVIDIA A100-SXM4-80GB", 4, 16),
        ("Tesla T4", 3, 16),
    ]


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


def test_amd_power_cap_and_link_from_sysfs(replay: Replay) -> None:
    """The hwmon power1_cap of amdgpu (microwatts) and the PCI link attributes."""
    replay("amd-mi300x", commands=False)
    tags = collect()
    assert (tags["sys.gpu_power_limit_w"], tags["sys.gpu_link"]) == ("750", "PCIe Gen5 x16")


def test_no_rdma_no_network_tag(replay: Replay) -> None:
    """Without RDMA devices there is no sys.network at all."""
    replay("h100-vm")
    assert "sys.network" not in collect()
    assert network.describe([]) is None


def test_the_multi_node_scheme_covers_the_new_facts() -> None:
    """Node 1 writes its fabric and link as sys.node1.network and sys.node1.gpu_link."""
    tags = {"sys.network": "8x 400 Gb/sec InfiniBand", "sys.gpu_link": "PCIe Gen5 x16"}
    info = distributed.DistInfo(rank=8, local_rank=0, world_size=16, node_rank=1, nodes=2)
    assert _shared_run.shared_run_tags(tags, info) == {
        "sys.node1.network": "8x 400 Gb/sec InfiniBand",
        "sys.node1.gpu_link": "PCIe Gen5 x16",
    }


@pytest.mark.needs_torch
def test_frameworks_imported_in_this_process() -> None:
    """Import torch and scikit-learn, then collect: both listed with the versions they give themselves.

    The version is the framework's own ``__version__`` (``2.11.0+cu130``: a CUDA wheel's
    metadata may say only ``2.11.0``); the CUDA toolkit is ``torch.version.cuda``, absent on a
    CPU build.
    """
    from importlib import metadata

    tags, own = _python(
        "import torch, sklearn, json, mlflow_sysmetrics as m; "
        "print(json.dumps([m.collect(), [torch.__version__, sklearn.__version__, torch.version.cuda]]))"
    )
    torch_version, sklearn_version, cuda = own
    assert torch_version.split("+")[0] == metadata.version("torch").split("+")[0]
    assert tags["sys.frameworks"] == f"torch {torch_version}, sklearn {sklearn_version}"
    assert tags.get("sys.cuda_runtime") == cuda  # None on a CPU build: no tag
    later = _python(
        "import json, mlflow_sysmetrics as m; first = m.collect(); import sklearn; "
        "print(json.dumps([first.get('sys.frameworks'), m.collect().get('sys.frameworks')]))"
    )
    assert later == [None, f"sklearn {metadata.version('scikit-learn')}"]  # read again on each call


def test_collect_imports_no_framework() -> None:
    """A fresh interpreter: collect() leaves every framework unimported (and CUDA untouched)."""
    names = _python(
        "import json, sys, mlflow_sysmetrics as m\n"
        "from mlflow_sysmetrics.collectors.frameworks import FRAMEWORKS\n"
        "m.collect(); m.snapshot()\n"
        "print(json.dumps(sorted(n for n in FRAMEWORKS if n in sys.modules)))"
    )
    assert names == []


def _stand_in(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_cuda_build_of_torch_and_its_nvidia_wheels(tmp_path: Path) -> None:
    """A CUDA 12.8 build of torch (a stand-in package) with the cuDNN and NCCL wheels it requires."""
    site = _stand_in(
        tmp_path,
        {
            "torch/__init__.py": "from . import version\n__version__ = '2.13.0+cu128'\n",
            "torch/version.py": "cuda = '12.8'\nhip = None\n",
            "torch-2.13.0+cu128.dist-info/METADATA": (
                "Metadata-Version: 2.1\nName: torch\nVersion: 2.13.0+cu128\nRequires-Dist: filelock\n"
                'Requires-Dist: nvidia-cudnn-cu12==9.10.2.21; platform_system == "Linux"\n'
                'Requires-Dist: nvidia-nccl-cu12==2.27.3; platform_system == "Linux"\n'
            ),
            "nvidia_cudnn_cu12-9.10.2.21.dist-info/METADATA": "Metadata-Version: 2.1\nName: nvidia-cudnn-cu12\nVersion: 9.10.2.21\n",
            "nvidia_nccl_cu12-2.27.3.dist-info/METADATA": "Metadata-Version: 2.1\nName: nvidia-nccl-cu12\nVersion: 2.27.3\n",
        },
    )
    tags = _python(
        "import torch, json, mlflow_sysmetrics as m; print(json.dumps(m.collect()))", PYTHONPATH=str(site)
    )
    assert {k: tags.get(k) for k in ("sys.frameworks", "sys.cuda_runtime", "sys.cudnn", "sys.nccl")} == {
        "sys.frameworks": "torch 2.13.0+cu128",
        "sys.cuda_runtime": "12.8",
        "sys.cudnn": "9.10.2",
        "sys.nccl": "2.27.3",
    }


def test_tensorflow_build_info(tmp_path: Path) -> None:
    """TensorFlow's own build info names its CUDA and cuDNN (a stand-in package)."""
    site = _stand_in(
        tmp_path,
        {
            "tensorflow/__init__.py": "__version__ = '2.18.0'\nfrom .python.platform import build_info\n",
            "tensorflow/python/__init__.py": "",
            "tensorflow/python/platform/__init__.py": "",
            "tensorflow/python/platform/build_info.py": (
                "build_info = {'is_cuda_build': True, 'cuda_version': '12.5.1', 'cudnn_version': '9'}\n"
            ),
        },
    )
    tags = _python(
        "import tensorflow, json, mlflow_sysmetrics as m; print(json.dumps(m.collect()))",
        PYTHONPATH=str(site),
    )
    assert (tags["sys.frameworks"], tags["sys.cuda_runtime"], tags["sys.cudnn"]) == (
        "tensorflow 2.18.0",
        "12.5.1",
        "9",
    )
    assert "sys.nccl" not in tags


def _frameworks_on(machine: str) -> dict[str, str | None]:
    """collect()'s framework tags in a fresh interpreter that imports what ``machine`` installed."""
    root = FIXTURES / machine
    site = next(p for p in root.glob("usr/**/*-packages") if p.is_dir())
    names = sorted(p.name for p in site.iterdir() if (p / "__init__.py").exists())
    tags = _python(
        f"import {', '.join(names)}, json, mlflow_sysmetrics as m; print(json.dumps(m.collect()))",
        PYTHONPATH=str(site),
        MLFLOW_SYSMETRICS_ROOT=str(root),
    )
    return {k: tags.get(k) for k in ("sys.frameworks", "sys.cuda_runtime", "sys.cudnn", "sys.nccl")}


def test_torch_bundling_its_cudnn_beside_jax_wheels() -> None:
    """A PyTorch wheel that bundles cuDNN and links NCCL statically, JAX's CUDA wheels beside it.

    Its metadata requires no nvidia-* wheel (.ci/manywheel/build_cuda.sh, "Bundling with
    cudnn and cublas", USE_STATIC_NCCL=1): it loads torch/lib/libcudnn.so.9, whose version
    cannot be known without loading it, and JAX's nvidia-cudnn-cu12 9.11.0 and
    nvidia-nccl-cu12 2.27.5 (mapped in the process too) are not what it uses.
    """
    assert _frameworks_on("torch-bundled-cudnn") == {
        "sys.frameworks": "torch 2.9.1+cu128",
        "sys.cuda_runtime": "12.8",
        "sys.cudnn": None,
        "sys.nccl": None,
    }


def test_torch_of_an_ngc_container_uses_the_system_libraries() -> None:
    """NGC's PyTorch 25.01, built against the system cuDNN 9.7.0 and NCCL 2.25.1 (its release notes).

    /proc/self/maps names those libraries by their full file names.
    """
    assert _frameworks_on("ngc-pytorch") == {
        "sys.frameworks": "torch 2.6.0a0+ecf3bae40a.nv25.01",
        "sys.cuda_runtime": "12.8",
        "sys.cudnn": "9.7.0",
        "sys.nccl": "2.25.1",
    }


def test_tensorflow_with_its_cuda_wheels_has_the_full_cudnn_version() -> None:
    """tensorflow[and-cuda] 2.18 requires nvidia-cudnn-cu12==9.3.0.75; its build info says only 9."""
    assert _frameworks_on("tensorflow-and-cuda") == {
        "sys.frameworks": "tensorflow 2.18.0",
        "sys.cuda_runtime": "12.5.1",
        "sys.cudnn": "9.3.0",
        "sys.nccl": None,
    }


@pytest.mark.parametrize("version", [12080, "12.8"])
def test_cuda_versions_as_frameworks_write_them(version: object) -> None:
    """NVML-style 12080 and plain 12.8 both read 12.8."""
    assert frameworks._cuda_text(version) == "12.8"
