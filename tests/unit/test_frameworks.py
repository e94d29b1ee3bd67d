"""The frameworks this process imported, with the CUDA, cuDNN and NCCL they use (collectors/frameworks.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlflow_sysmetrics.collectors import frameworks
from tests.conftest import FIXTURES, expected
from tests.fresh import fresh_python


def _python(code: str, **env: str) -> Any:
    return fresh_python(code, env=env).value


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
    assert _frameworks_on("torch-bundled-cudnn") == expected("torch-bundled-cudnn")


def test_torch_of_an_ngc_container_uses_the_system_libraries() -> None:
    """NGC's PyTorch 25.01, built against the system cuDNN 9.7.0 and NCCL 2.25.1 (its release notes).

    /proc/self/maps names those libraries by their full file names.
    """
    assert _frameworks_on("ngc-pytorch") == expected("ngc-pytorch")


def test_tensorflow_with_its_cuda_wheels_has_the_full_cudnn_version() -> None:
    """tensorflow[and-cuda] 2.18 requires nvidia-cudnn-cu12==9.3.0.75; its build info says only 9."""
    assert _frameworks_on("tensorflow-and-cuda") == expected("tensorflow-and-cuda")


@pytest.mark.parametrize("version", [12080, "12.8"])
def test_cuda_versions_as_frameworks_write_them(version: object) -> None:
    """NVML-style 12080 and plain 12.8 both read 12.8."""
    assert frameworks._cuda_text(version) == "12.8"
