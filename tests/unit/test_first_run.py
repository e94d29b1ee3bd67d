"""The cold path: only what this machine needs is imported, and the facts still match their sources.

The first collection in a process pays for every module it imports. These tests run a bare
interpreter (``python -S``: no site-packages, no MLflow, as on a GPU node with nothing but
the package) and check what the collection brought in. The facts once read through heavier
modules (``platform``, ``importlib.metadata``, ``shutil``) are checked against those modules
in their collectors' tests (``test_system.py``, ``test_software.py``, ``test_frameworks.py``, ``test_disk.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mlflow_sysmetrics.collectors import frameworks
from mlflow_sysmetrics.collectors.accelerators import VENDORS
from tests.conftest import FIXTURES, Replay, expected
from tests.fresh import bare_python

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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux machine's imports")
def test_collect_imports_only_what_this_machine_needs() -> None:
    """No tool is run here and no GPU is present: nothing of csv, ctypes, subprocess, logging, re."""
    new, tags = bare_python(IMPORTS_AND_TAGS)  # type: ignore[misc]
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
    new, tags = bare_python(IMPORTS_AND_TAGS, LD_LIBRARY_PATH=str(fake_nvml), FAKE_NVML_SPEC=str(spec))  # type: ignore[misc]
    assert tags["sys.gpu"] == expected("h100-vm")["sys.gpu"]  # nvml/h100.txt describes that machine
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
    new, tags = bare_python(IMPORTS_AND_TAGS, **env)  # type: ignore[misc]
    assert tags["sys.gpu"] == expected("h100-vm")["sys.gpu"]  # the README's captured machine
    nvidia = {m for m in new if m.startswith(NVIDIA)}
    assert nvidia == {NVIDIA, f"{NVIDIA}.facts", f"{NVIDIA}.fallback"}
    assert "ctypes" not in new


def test_the_bare_collection_names_the_same_facts(tmp_path: Path) -> None:
    """Without MLflow or site-packages the facts that need neither are the same as here."""
    code = "import json, mlflow_sysmetrics\nprint(json.dumps(mlflow_sysmetrics.collect()))\n"
    bare = bare_python(code)
    from mlflow_sysmetrics import collect

    here = collect()
    for key in ("sys.cpu", "sys.cpu_cores", "sys.memory_gb", "sys.os", "sys.platform", "sys.python"):
        assert bare[key] == here[key], key  # type: ignore[index]
    assert "sys.mlflow" not in bare  # type: ignore[operator]
