"""Shared fixtures: replayed machines, fake commands on PATH, a clean environment.

Nothing here imports MLflow: the unit tests must run where MLflow is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
FAKES = Path(__file__).parent / "fakes"

#: Variables a test machine (or CI) may have set that would change what is collected.
_SCRUBBED_PREFIXES: tuple[str, ...] = (
    "MLFLOW_SYSMETRICS_",
    "OMPI_COMM_WORLD_",
    "SLURM_",
    "PMI_",
    "TORCHELASTIC_",
)
_SCRUBBED_PREFIXES += ("PET_", "PYSPARK_TORCH_")  # Kubeflow's pods, Spark's TorchDistributor
_SCRUBBED = {
    "MLFLOW_RUN_CONTEXT_PROVIDER",
    "CUDA_VISIBLE_DEVICES",
    "HIP_VISIBLE_DEVICES",
    "ROCR_VISIBLE_DEVICES",
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "GROUP_RANK",
    "GROUP_WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "NODE_RANK",
    "MASTER_ADDR",
    "KUBERNETES_SERVICE_HOST",
    "APPTAINER_CONTAINER",
    "SINGULARITY_CONTAINER",
    "container",
    "MPI_LOCALRANKID",
    "MPI_LOCALNRANKS",
    "MLFLOW_EXPERIMENT_ID",
    "MLFLOW_EXPERIMENT_NAME",
    "MLFLOW_TRACKING_URI",
}
_SHELL_TOOLS = ("sh", "cat", "sleep", "head", "yes", "printf", "env")


#: The repository's root folder.
_REPO = Path(__file__).resolve().parents[1]
#: What MLflow (a store, its artifacts) and a build leave in the folder they run in.
_LITTER = ("mlruns", "mlflow.db", "mlartifacts", "build", "dist", "*.egg-info")


def _litter() -> dict[str, list[tuple[str, int]]]:
    """Each litter path in the repository root, with its entries and their modification times.

    The entries' times show a run written into a ``mlruns`` that was there before; only one
    level is read, so a big store left by hand costs nothing.
    """
    found: dict[str, list[tuple[str, int]]] = {}
    for pattern in _LITTER:
        for path in _REPO.glob(pattern):
            entries = [("", path.stat().st_mtime_ns)]
            if path.is_dir():
                entries += sorted((entry.name, entry.stat().st_mtime_ns) for entry in os.scandir(path))
            found[path.name] = entries
    return found


@pytest.fixture(autouse=True, scope="session")
def no_litter_in_the_repository() -> Iterator[None]:
    """Tests write to temporary folders only: a test run that adds to these in the root fails."""
    before = _litter()
    yield
    after = _litter()
    changed = sorted(name for name in set(before) | set(after) if before.get(name) != after.get(name))
    if changed:
        pytest.fail(
            f"the tests wrote {', '.join(changed)} in the repository root ({_REPO}); "
            "write to tmp_path (a local store: the local_store fixture; a build: a copy of the tree)"
        )


@pytest.fixture(autouse=True, scope="session")
def torch_caches_in_the_test_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """PyTorch's inductor cache goes to a folder of this run, not the system's temporary folder.

    Its default is ``torchinductor_<user>`` there, made when Lightning or Transformers is
    imported; the variable reaches this process and every process it starts (torchrun's
    workers, the framework recipes).
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path_factory.mktemp("torchinductor")))
        yield


def fixture_root(name: str) -> Path:
    """The replayed machine ``name`` under ``tests/fixtures``."""
    path = FIXTURES / name
    assert path.is_dir(), f"no fixture tree {name}"
    return path


def expected(machine: str) -> dict[str, str | None]:
    """The tags the replayed machine ``machine`` yields, from its ``expected.json``.

    Written from the machine's README and the documents it names, never from running the
    package; ``None`` for a tag the README says the machine has not.
    """
    document = json.loads((fixture_root(machine) / "expected.json").read_text())
    tags: dict[str, str | None] = document["tags"]
    return tags


def documented(machine: str, *keys: str) -> tuple[str | None, ...]:
    """The values of ``keys`` in ``machine``'s expected tags, in that order (for a tuple to compare)."""
    tags = expected(machine)
    return tuple(tags[key] for key in keys)


def replayed_machines() -> list[str]:
    """The machines a plain replay checks: those whose ``expected.json`` names tags.

    A framework machine (a ``site-packages`` or ``dist-packages`` folder under ``usr``) is
    left out: its tags need its packages imported (``tests/unit/test_software.py``).
    """
    return sorted(
        path.name
        for path in FIXTURES.iterdir()
        if (path / "expected.json").is_file()
        and expected(path.name)
        and not any(path.glob("usr/**/*-packages"))
    )


def machine_environment(machine: str) -> dict[str, str]:
    """The variables ``machine``'s README says its process had (its ``expected.json``'s ``environment``)."""
    document = json.loads((fixture_root(machine) / "expected.json").read_text())
    environment: dict[str, str] = document.get("environment", {})
    return environment


def _mlflow_variables() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_")}


@pytest.fixture(autouse=True)
def no_environment_leaks() -> Iterator[None]:
    """A test that leaves an MLFLOW_* variable changed fails (and the variable is put back).

    Set up before every other function fixture, so it checks after all of them (monkeypatch
    included) have been torn down: only what code did behind the fixtures' backs remains,
    such as a command that writes the tracking URI into the environment.
    """
    before = _mlflow_variables()
    yield
    after = _mlflow_variables()
    if after == before:
        return
    for name in set(after) - set(before):
        del os.environ[name]
    os.environ.update(before)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    pytest.fail(f"the test left MLflow variables changed in this process: {', '.join(changed)}")


@pytest.fixture(autouse=True)
def clean_state(no_environment_leaks: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with no sysmetrics settings, no launcher variables and no caches."""
    for name in list(os.environ):
        if name in _SCRUBBED or name.startswith(_SCRUBBED_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    from mlflow_sysmetrics import _collection

    _collection.clear_cache()
    yield
    _collection.clear_cache()
    from mlflow_sysmetrics import _context

    # A helper left stuck would make the next test (in random order) skip that source.
    assert not _context._stuck, f"the test left helpers stuck: {sorted(_context._stuck)}; see release_helpers"


def release_helpers(released: threading.Event, what: str) -> None:
    """Release the helper threads for ``what`` a test held stuck, and wait until they end.

    A released helper still has to wake and mark its source free; a test that returned
    before that would leave the next test (in random order) seeing "still stuck".
    """
    released.set()
    for thread in threading.enumerate():
        if thread.name == f"mlflow-sysmetrics-{what}":
            thread.join(10)


def without_free_space(tags: dict[str, str]) -> dict[str, str]:
    """Tags less free disk space, which is live: two processes read it at their own moments.

    Rounded to 10 MB, a change of one byte between the reads can tip it to the next step.
    """
    return {k: v for k, v in tags.items() if not k.endswith("disk_free_gb")}


def nvidia_smi_stand_in(description: Path, before: str = "") -> str:
    """A shell body for a fake ``nvidia-smi``: ``before`` (log a call, sleep), then the stand-in.

    The stand-in (``tests/fakes/nvidia_smi.py``) answers from ``description``, a machine's
    ``commands/nvidia-smi.json``.
    """
    # -I -S: no site-packages (nor coverage started in it), a start twice as quick under load
    return f'{before}\nexec "{sys.executable}" -I -S "{FAKES / "nvidia_smi.py"}" "{description}" "$@"'


@pytest.fixture
def shell_tools(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding only the basic shell tools fake commands use (no real GPU tools)."""
    folder = tmp_path_factory.mktemp("tools")
    for tool in _SHELL_TOOLS:
        found = shutil.which(tool)
        if found:
            (folder / tool).symlink_to(found)
    return folder


FakeCommands = Callable[..., Path]


@pytest.fixture
def fake_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shell_tools: Path) -> FakeCommands:
    """Put fake programs on a PATH that holds nothing else but basic shell tools.

    ``fake_commands(recordings=folder)`` replays a ``commands/`` folder whose files are named
    program + arguments joined + ``.txt`` (as the captured machines are); a ``.fail.txt``
    file is printed to standard error with exit status 2 (a command that refuses). Where
    the folder holds ``nvidia-smi.json``, a description of the GPUs, ``nvidia-smi`` is the
    stand-in ``tests/fakes/nvidia_smi.py``, which answers any fields it is asked from it;
    ``fake_commands(scripts={"nvidia-smi": "sleep 30"})`` installs shell bodies.
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{shell_tools}")

    def install(recordings: Path | None = None, scripts: dict[str, str] | None = None) -> Path:
        programs: dict[str, str] = {}
        if recordings is not None:
            description = recordings / "nvidia-smi.json"
            if description.is_file():  # answered from a description of the GPUs, any fields asked
                programs["nvidia-smi"] = nvidia_smi_stand_in(description)
                # A Python program takes its time to start on a loaded machine (tests in
                # parallel): these tests are about facts, so the deadline is generous unless
                # the test chose one (before this, or after it: monkeypatch wins).
                if "MLFLOW_SYSMETRICS_TIMEOUT" not in os.environ:
                    monkeypatch.setenv("MLFLOW_SYSMETRICS_TIMEOUT", "30")
            for name in ("nvidia-smi", "rocm-smi", "sysctl", "system_profiler", "powershell"):
                if name not in programs and any(p.name.startswith(name) for p in recordings.iterdir()):
                    programs[name] = (
                        f'key=$(printf "%s" "$@")\nfile="{recordings}/{name}$key.txt"\n'
                        'if [ -f "$file" ]; then cat "$file"; exit 0; fi\n'
                        f'fail="{recordings}/{name}$key.fail.txt"\n'
                        'if [ -f "$fail" ]; then cat "$fail" >&2; exit 2; fi\n'
                        f'echo "{name}: no recording for: $*" >&2\nexit 2\n'
                    )
        programs.update(scripts or {})
        for name, body in programs.items():
            path = bin_dir / name
            path.write_text(f"#!/bin/sh\n{body}\n")
            path.chmod(path.stat().st_mode | stat.S_IEXEC)
        return bin_dir

    return install


Replay = Callable[..., Path]


@pytest.fixture
def replay(monkeypatch: pytest.MonkeyPatch, fake_commands: FakeCommands) -> Replay:
    """Point the readers at a captured machine and put its recorded commands on PATH."""

    def use(name: str, commands: bool = True) -> Path:
        root = fixture_root(name)
        monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(root))
        recordings = root / "commands"
        fake_commands(recordings=recordings if commands and recordings.is_dir() else None)
        return root

    return use


def build_fake_nvml(folder: Path, *leave_out: str) -> Path:
    """``folder`` holding a fake ``libnvidia-ml.so.1`` from ``tests/fakes/fake_nvml.c``.

    ``leave_out``: NVML functions the library lacks (as a newer NVML lacks one it deprecated).
    """
    compiler = shutil.which("cc") or shutil.which("gcc")
    assert compiler, "a C compiler (cc or gcc) is needed to build the fake NVML library"
    flags = [f"-DLEAVE_OUT_{name}" for name in leave_out]
    library = folder / "libnvidia-ml.so.1"
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O1", *flags, "-o", str(library), str(FAKES / "fake_nvml.c")],
        check=True,
    )
    return folder


@pytest.fixture(scope="session")
def fake_nvml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a fake ``libnvidia-ml.so.1`` compiled from ``tests/fakes/fake_nvml.c``."""
    return build_fake_nvml(tmp_path_factory.mktemp("nvml"))
