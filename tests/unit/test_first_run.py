"""The cold path: only what this machine needs is imported, and the facts still match their sources.

The first collection in a process pays for every module it imports. These tests run a bare
interpreter (``python -S``: no site-packages, no MLflow, as on a GPU node with nothing but
the package) and check what the collection brought in; the facts that were once read
through heavier modules (``platform``, ``importlib.metadata``, ``shutil``) are checked
against those modules themselves.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import pytest

from mlflow_sysmetrics.collectors import disk, frameworks, software, system
from mlflow_sysmetrics.collectors.accelerators import VENDORS
from tests.conftest import FIXTURES, Replay
from tests.fresh import fresh_python

REPO = Path(__file__).resolve().parents[2]

#: Standard modules a plain Linux machine without a GPU needs none of.
NOT_NEEDED = (
    "csv",
    "ctypes",
    "subprocess",
    "selectors",
    "logging",
    "re",
    "typing",
    "shutil",
    "platform",
    "socket",
    "json",
    "fnmatch",
    "contextlib",
    "importlib.util",
    "importlib.metadata",
)
#: What of the accelerators a machine without one imports: the contract and the PCI bus scan
#: (every vendor's module, the device record, NVML's binding are left unimported).
ACCELERATORS = "mlflow_sysmetrics.collectors.accelerators"
NO_GPU_NEEDS = {ACCELERATORS, f"{ACCELERATORS}.pci"}
NVIDIA = f"{ACCELERATORS}.nvidia"
#: What the first collection prints: the modules it imported, and the tags.
IMPORTS_AND_TAGS = (
    "import sys, json\n"
    "before = set(sys.modules)\n"
    "import mlflow_sysmetrics\n"
    "tags = mlflow_sysmetrics.collect()\n"
    "print(json.dumps([sorted(set(sys.modules) - before), tags]))\n"
)


def _bare(code: str, **env: str) -> object:
    """Run ``code`` in ``python -S`` with only the repository on the path; its last line is JSON."""
    return fresh_python(code, "-S", env=env, scrub=("MLFLOW_", "PYTHON"), timeout=60).value


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux machine's imports")
def test_collect_imports_only_what_this_machine_needs() -> None:
    """No tool is run here and no GPU is present: nothing of csv, ctypes, subprocess, logging, re."""
    new, tags = _bare(IMPORTS_AND_TAGS)  # type: ignore[misc]
    assert "sys.cpu" in tags
    assert "sysmetrics.error" not in tags, tags
    if tags["sys.gpu"] != "None":
        pytest.skip("a GPU is here: its vendor modules and ctypes are needed")
    assert sorted(set(NOT_NEEDED) & set(new)) == []
    assert {m for m in new if m.startswith(ACCELERATORS)} == NO_GPU_NEEDS
    assert {f"{ACCELERATORS}.{vendor.name}" for vendor in VENDORS} & set(new) == set()
    assert sorted(set(frameworks.FRAMEWORKS) & set(new)) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux machine's imports")
def test_nvml_answering_imports_no_fallback(fake_nvml: Path, tmp_path: Path) -> None:
    """NVML's path loads its pass and binding only: not the fallbacks, re, csv or the ledger's counters."""
    spec = tmp_path / "spec.txt"
    spec.write_text((FIXTURES / "nvml" / "h100.txt").read_text())
    new, tags = _bare(IMPORTS_AND_TAGS, LD_LIBRARY_PATH=str(fake_nvml), FAKE_NVML_SPEC=str(spec))  # type: ignore[misc]
    assert tags["sys.gpu"] == "NVIDIA H100 80GB HBM3"  # nvml/h100.txt
    if any(m.startswith(f"{ACCELERATORS}.amd") for m in new):
        pytest.skip("an AMD GPU is here too: its module imports what it needs")
    nvidia = {m for m in new if m.startswith(NVIDIA)}
    assert nvidia == {NVIDIA, f"{NVIDIA}._nvml", f"{NVIDIA}.facts", f"{NVIDIA}.nvml_pass"}
    assert sorted({"re", "csv"} & set(new)) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux machine's imports")
def test_a_replayed_nvidia_machine_imports_no_ctypes(replay: Replay) -> None:
    """A replayed machine reads the driver's files and nvidia-smi: NVML's binding is never loaded."""
    root = replay("h100-vm")
    env = {"MLFLOW_SYSMETRICS_ROOT": str(root), "MLFLOW_SYSMETRICS_TIMEOUT": "30"}
    new, tags = _bare(IMPORTS_AND_TAGS, **env)  # type: ignore[misc]
    assert tags["sys.gpu"] == "NVIDIA H100 80GB HBM3"  # the README's captured machine
    nvidia = {m for m in new if m.startswith(NVIDIA)}
    assert nvidia == {NVIDIA, f"{NVIDIA}.facts", f"{NVIDIA}.fallback"}
    assert "ctypes" not in new


def test_the_bare_collection_names_the_same_facts(tmp_path: Path) -> None:
    """Without MLflow or site-packages the facts that need neither are the same as here."""
    code = "import json, mlflow_sysmetrics\nprint(json.dumps(mlflow_sysmetrics.collect()))\n"
    bare = _bare(code)
    from mlflow_sysmetrics import collect

    here = collect()
    for key in ("sys.cpu", "sys.cpu_cores", "sys.memory_gb", "sys.os", "sys.platform", "sys.python"):
        assert bare[key] == here[key], key  # type: ignore[index]
    assert "sys.mlflow" not in bare  # type: ignore[operator]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's platform string")
def test_platform_string_is_pythons_own() -> None:
    """sys.platform is what platform.platform() says, built without its `uname -p` process."""
    assert system.linux_platform() == platform.platform()


def test_platform_string_layout() -> None:
    """Python's layout: parts joined by '-', unsafe characters made '-', 'unknown' dropped."""
    assert system.platform_string("Linux", "6.8.0-1015-aws", "x86_64", "glibc2.39") == (
        "Linux-6.8.0-1015-aws-x86_64-with-glibc2.39"
    )
    assert system.platform_string("Linux", "5.4 (custom)", "unknown", "") == "Linux-5.4_-custom-with"


def test_python_version_is_platforms() -> None:
    """sys.python is platform.python_version(), release-candidate suffixes included."""
    assert software.python_version() == platform.python_version()


def test_mlflow_version_from_its_dist_info_folder(tmp_path: Path) -> None:
    """Found without importing MLflow or importlib.metadata; the same as the metadata says.

    An installed MLflow is laid out as pip lays it out (the package beside its ``.dist-info``
    folder with a ``METADATA`` file); importlib.metadata, reading that file, is the reference.
    """
    site = tmp_path / "site-packages"
    (site / "mlflow").mkdir(parents=True)
    (site / "mlflow" / "__init__.py").write_text("raise ImportError('never imported')\n")
    info = site / "mlflow-3.17.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mlflow\nVersion: 3.17.2\n")
    code = (
        "import sys, json\n"
        f"sys.path.append({str(site)!r})\n"
        "from mlflow_sysmetrics.collectors import software\n"
        "ours = software.mlflow_version()\n"
        "loaded = 'importlib.metadata' in sys.modules\n"
        "from importlib import metadata\n"
        "print(json.dumps([ours, loaded, metadata.version('mlflow')]))\n"
    )
    ours, loaded_metadata, reference = _bare(code)  # type: ignore[misc]
    assert ours == reference == "3.17.2"
    assert loaded_metadata is False


def test_dist_info_names_are_normalised(tmp_path: Path) -> None:
    """Folder names as the packaging specification writes them: lower case, '_' for '-', '.'."""
    for name in ("mlflow_skinny-3.17.2.dist-info", "other-1.0.dist-info", "mlflow.egg-info"):
        (tmp_path / name).mkdir()
    assert software.dist_info_version(str(tmp_path), ("mlflow", "mlflow_skinny")) == "3.17.2"
    (tmp_path / "MLflow-3.18.0.dist-info").mkdir()
    assert software.dist_info_version(str(tmp_path), ("mlflow", "mlflow_skinny")) == "3.18.0"
    assert software.dist_info_version(str(tmp_path / "missing"), ("mlflow",)) is None


def test_disk_space_is_what_shutil_says(tmp_path: Path) -> None:
    """Free and total bytes from statvfs as shutil.disk_usage computes them."""
    import shutil

    usage = shutil.disk_usage(tmp_path)
    free, total = disk.space(str(tmp_path))
    assert total == usage.total
    assert abs(free - usage.free) < 64 * 1024 * 1024  # other processes write meanwhile
