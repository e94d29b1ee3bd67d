"""The ``frameworks`` collector: the ML frameworks this process has imported, and their CUDA.

With the frameworks, the CUDA, cuDNN and NCCL they were built with or load. The frameworks are
read from ``sys.modules`` on every call (they are imported after the first one), never
imported, and nothing is asked that would load a library or initialise CUDA.
"""

from __future__ import annotations

import os
import sys

from .. import _state
from .. import tags as T
from .._context import Context
from .._files import Root
from .._value import cuda_version

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from typing import Any

# importlib.metadata (slow to import: csv, email, zipfile) is imported where used: only when a
# framework is imported.

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


def _version(module: Any) -> str | None:
    version = getattr(module, "__version__", None)
    return str(version) if isinstance(version, str) and version else None


def _cuda_text(version: Any) -> str | None:
    """``12.8`` from ``12.8`` or from an encoded ``12080`` (major*1000 + minor*10)."""
    if isinstance(version, int) and version > 0:
        return cuda_version(version)
    return version if isinstance(version, str) and version else None


_wheel_lock = _state.lock()
_wheel_versions: dict[str, str | None] = _state.memo()
_requirements: dict[str, frozenset[str]] = _state.memo()


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


def requirements(distribution: str) -> frozenset[str]:
    """The distributions ``distribution`` requires, in any extra, as normalised names.

    ``nvidia-cudnn-cu12==9.10.2.21; platform_system == "Linux"`` is ``nvidia-cudnn-cu12``.
    """
    with _wheel_lock:
        known = _requirements.get(distribution)
    if known is not None:
        return known
    from importlib import metadata

    try:
        declared = metadata.requires(distribution) or []
    except metadata.PackageNotFoundError:
        declared = []
    names = set()
    for requirement in declared:
        name = requirement
        for stop in " ;<>=!~[(":
            name = name.split(stop, 1)[0]
        names.add(name.strip().lower().replace("_", "-").replace(".", "-"))
    found = frozenset(names)
    with _wheel_lock:
        _requirements[distribution] = found
    return found


def _three_parts(version: str | None) -> str | None:
    return ".".join(version.split(".")[:3]) if version else None


def _version_in_file_name(name: str, library: str) -> str | None:
    """``9.1.0`` from ``libcudnn.so.9.1.0``; ``None`` when the name holds less than three parts."""
    parts = name.removeprefix(f"lib{library}.so.").split(".")
    return ".".join(parts[:3]) if len(parts) >= 3 and all(p.isdigit() for p in parts[:3]) else None


def loaded_system_library(root: Root, library: str) -> str | None:
    """The version of ``lib<library>`` mapped into this process from outside any Python package.

    ``/proc/self/maps`` names each file the process has mapped, by its real name: a system
    library installed by a package manager carries its full version there
    (``/usr/lib/x86_64-linux-gnu/libcudnn.so.9.1.0``). Copies inside ``site-packages`` or
    ``dist-packages`` (a wheel's, a framework's bundled one) are not system libraries.
    """
    for line in (root.read("/proc/self/maps") or "").splitlines():
        fields = line.split(None, 5)  # address, perms, offset, dev, inode, path
        path = fields[5].strip() if len(fields) == 6 else ""
        name = path.rsplit("/", 1)[-1]
        if name.startswith(f"lib{library}.so.") and "-packages/" not in path:
            version = _version_in_file_name(name, library)
            if version:
                return version
    return None


def torch_library(torch: Any, library: str, cuda_major: str, root: Root) -> str | None:
    """The version of the cuDNN or NCCL (``library``) a CUDA build of PyTorch loads.

    As PyTorch's wheels are built (``.ci/manywheel/build_cuda.sh``): a wheel whose metadata
    requires ``nvidia-<library>-cu<major>`` loads it from that wheel (``torch/__init__.py``,
    ``_load_global_deps``); one that requires none bundles its own copy in ``torch/lib``
    (cuDNN) or links it statically (``USE_STATIC_NCCL=1``), whose version cannot be known
    without loading it, so it is left out, never taken from another package's wheel (JAX's,
    beside it). A build from source against the system's library (NGC containers) loads
    that one, which :func:`loaded_system_library` names.
    """
    wheel = f"nvidia-{library}-cu{cuda_major}"
    if wheel in requirements("torch"):
        return _three_parts(wheel_version(wheel))
    folder = os.path.join(os.path.dirname(getattr(torch, "__file__", None) or ""), "lib")
    try:
        bundled = any(name.startswith(f"lib{library}.") for name in os.listdir(folder))
    except OSError:
        bundled = False
    return None if bundled else loaded_system_library(root, library)


def tensorflow_cudnn(build_info: dict[str, Any], cuda_major: str) -> str | None:
    """The cuDNN of a CUDA build of TensorFlow.

    Its build info names the major only (``9``); where TensorFlow was installed with its
    CUDA wheels (``tensorflow[and-cuda]`` requires ``nvidia-cudnn-cu12``) and that wheel is
    of the same major, the wheel's full version.
    """
    major = _cuda_text(build_info.get("cudnn_version"))
    wheel = f"nvidia-cudnn-cu{cuda_major}"
    if major and wheel in requirements("tensorflow"):
        version = _three_parts(wheel_version(wheel))
        if version and version.split(".")[0] == major.split(".")[0]:
            return version
    return major


_TF_BUILD_INFO = "tensorflow.python.platform.build_info"
_LOOKED_FOR = (*FRAMEWORKS, _TF_BUILD_INFO)
#: Answers by root and the set of those modules imported: a module's version does not change.
_by_imported: dict[tuple[str, ...], dict[str, str]] = _state.memo()


def collect(ctx: Context) -> dict[str, str]:
    """``sys.frameworks`` and, from the frameworks already imported, CUDA, cuDNN and NCCL versions.

    CUDA's is the toolkit the framework was built with (``torch.version.cuda``, TensorFlow's
    build info), not the driver's. cuDNN and NCCL are those the framework loads (see
    :func:`torch_library` and :func:`tensorflow_cudnn`): asking the framework itself could
    load the libraries. Worked out once for each set of them imported (a framework still
    half imported is asked again later).
    """
    modules = sys.modules
    imported = (ctx.root.path, *(name for name in _LOOKED_FOR if name in modules))
    known = _by_imported.get(imported)
    if known is None:
        known, complete = _frameworks(modules, ctx.root)
        if complete:
            _by_imported[imported] = known
    return dict(known)


def _frameworks(modules: dict[str, Any], root: Root) -> tuple[dict[str, str], bool]:
    """The tags, and whether every imported framework said its version (none half imported)."""
    present = [name for name in FRAMEWORKS if name in modules]
    listed = [f"{name} {version}" for name in present if (version := _version(modules.get(name)))]
    found: dict[str, str] = {}
    if listed:
        found[T.FRAMEWORKS] = ", ".join(listed)
    cuda = cudnn = nccl = None
    torch = modules.get("torch")
    if torch is not None:
        cuda = _cuda_text(getattr(getattr(torch, "version", None), "cuda", None))
        if cuda:
            major = cuda.split(".")[0]
            cudnn = torch_library(torch, "cudnn", major, root)
            nccl = torch_library(torch, "nccl", major, root)
    build_info = getattr(modules.get(_TF_BUILD_INFO), "build_info", None)
    if isinstance(build_info, dict) and build_info.get("is_cuda_build"):
        tf_cuda = _cuda_text(build_info.get("cuda_version"))
        cuda = cuda or tf_cuda
        cudnn = cudnn or tensorflow_cudnn(build_info, (tf_cuda or "").split(".")[0])
    for key, value in ((T.CUDA_RUNTIME, cuda), (T.CUDNN, cudnn), (T.NCCL, nccl)):
        if value:
            found[key] = value
    half_imported = _TF_BUILD_INFO in modules and not isinstance(build_info, dict)
    return found, len(listed) == len(present) and not half_imported
