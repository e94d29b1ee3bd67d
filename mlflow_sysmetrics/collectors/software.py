"""Versions: Python and MLflow, and the ML frameworks this process has imported.

MLflow need not be installed for :func:`collect`. The frameworks are read from
``sys.modules`` on every call (they are imported after the first one), never imported, and
nothing is asked that would load a library or initialise CUDA.
"""

from __future__ import annotations

import importlib.util
import platform
import sys
import threading
from typing import Any

from .. import _state
from .. import tags as T
from .._context import Context

#: The frameworks looked for, in the order they are listed (by import name).
FRAMEWORKS = (
    "torch",
    "tensorflow",
    "keras",
    "jax",
    "lightning",
    "pytorch_lightning",
    "transformers",
    "accelerate",
    "deepspeed",
    "sklearn",
    "xgboost",
    "lightgbm",
    "catboost",
    "vllm",
)


def mlflow_version() -> str | None:
    """The installed MLflow version, or ``None`` when MLflow is not installed.

    Every door imports MLflow before it collects, so the module's own ``__version__`` is
    there; otherwise the package metadata is asked, but only after ``find_spec`` (cheap)
    says there is an MLflow to ask about: ``importlib.metadata`` is slow to import, and a
    process without MLflow (``collect()`` on a bare GPU node) should not pay for it.
    """
    module = sys.modules.get("mlflow")
    version = getattr(module, "__version__", None)
    if isinstance(version, str):
        return version
    if importlib.util.find_spec("mlflow") is None:
        return None
    from importlib import metadata

    for distribution in ("mlflow", "mlflow-skinny"):
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return None


def collect(ctx: Context) -> dict[str, str]:
    """``sys.python`` and ``sys.mlflow``."""
    found = {T.PYTHON: platform.python_version()}
    version = mlflow_version()
    if version:
        found[T.MLFLOW] = version
    return found


def _version(module: Any) -> str | None:
    version = getattr(module, "__version__", None)
    return str(version) if isinstance(version, str) and version else None


def _cuda_text(version: Any) -> str | None:
    """``12.8`` from ``12.8`` or from an encoded ``12080`` (major*1000 + minor*10)."""
    if isinstance(version, int) and version > 0:
        return f"{version // 1000}.{(version % 1000) // 10}"
    return version if isinstance(version, str) and version else None


_wheel_lock = threading.Lock()
_wheel_versions: dict[str, str | None] = {}
_state.register(reset=_wheel_versions.clear)


def wheel_version(distribution: str) -> str | None:
    """An installed wheel's version (``nvidia-cudnn-cu12``), looked up once per process."""
    with _wheel_lock:
        if distribution in _wheel_versions:
            return _wheel_versions[distribution]
    from importlib import metadata

    try:
        version: str | None = metadata.version(distribution)
    except metadata.PackageNotFoundError:
        version = None
    with _wheel_lock:
        _wheel_versions[distribution] = version
    return version


def _three_parts(version: str | None) -> str | None:
    return ".".join(version.split(".")[:3]) if version else None


def collect_frameworks(ctx: Context) -> dict[str, str]:
    """``sys.frameworks`` and, from the frameworks already imported, CUDA, cuDNN and NCCL versions.

    CUDA's is the toolkit the framework was built with (``torch.version.cuda``, TensorFlow's
    build info), not the driver's. cuDNN and NCCL: TensorFlow's build info, else the NVIDIA
    wheels a CUDA build of PyTorch loads them from (``nvidia-cudnn-cu12``,
    ``nvidia-nccl-cu12``): asking PyTorch itself could load the libraries.
    """
    modules = sys.modules
    listed = [f"{name} {version}" for name in FRAMEWORKS if (version := _version(modules.get(name)))]
    found: dict[str, str] = {}
    if listed:
        found[T.FRAMEWORKS] = ", ".join(listed)
    cuda = cudnn = nccl = None
    torch = modules.get("torch")
    if torch is not None:
        cuda = _cuda_text(getattr(getattr(torch, "version", None), "cuda", None))
        if cuda:
            major = cuda.split(".")[0]
            cudnn = _three_parts(wheel_version(f"nvidia-cudnn-cu{major}"))
            nccl = _three_parts(wheel_version(f"nvidia-nccl-cu{major}"))
    build_info = getattr(modules.get("tensorflow.python.platform.build_info"), "build_info", None)
    if isinstance(build_info, dict) and build_info.get("is_cuda_build"):
        cuda = cuda or _cuda_text(build_info.get("cuda_version"))
        cudnn = cudnn or _cuda_text(build_info.get("cudnn_version"))
    for key, value in ((T.CUDA_RUNTIME, cuda), (T.CUDNN, cudnn), (T.NCCL, nccl)):
        if value:
            found[key] = value
    return found
