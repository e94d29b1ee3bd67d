"""Spark, for real: PySpark's local-cluster (two executor processes), each replaying a machine.

``local-cluster[2,1,1024]`` starts a standalone master, two workers and one executor per
worker inside this machine, each executor a JVM of its own with its own Python workers. Each
executor's Python replays another machine (the executor runs in ``<work dir>/<app>/<id>``,
and the ``PYSPARK_PYTHON`` wrapper below picks the replayed root by that id); the driver,
this test process, replays a CPU-only ECS task and tags its runs implicitly, as a notebook
with ``MLFLOW_RUN_CONTEXT_PROVIDER=sysmetrics`` does. local-cluster's workers keep their
folders in ``$SPARK_HOME/work`` whatever ``SPARK_WORKER_DIR`` says, so ``SPARK_HOME`` is a
temporary folder of links to PySpark's own files: nothing is written into the repository or
into PySpark's install.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest

from tests.conftest import fixture_root
from tests.integration.conftest import REPO, Proxy
from tests.integration.engines import DEADLINE, engine_marks, machine_facts, require

pytestmark = engine_marks("spark")

#: The machine each executor replays, by executor id, and the driver's.
EXECUTOR_MACHINES = ("h100-vm", "gcp-vm")
DRIVER_MACHINE = "ecs-fargate"
#: The JIT and collector settings that make a JVM start fast on two cores.
JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def _executor_python(folder: Path) -> Path:
    """PYSPARK_PYTHON for the executors: this Python, replaying the machine of the executor's id."""
    cases = "\n".join(
        f"  {index}) export MLFLOW_SYSMETRICS_ROOT={shlex.quote(str(fixture_root(machine)))} ;;"
        for index, machine in enumerate(EXECUTOR_MACHINES)
    )
    deadline = "".join(f"export {name}={value}\n" for name, value in DEADLINE.items())
    script = folder / "python-for-executors"
    script.write_text(
        "#!/bin/sh\n"
        "# An executor runs in <work dir>/<app id>/<executor id>.\n"
        f'case "$(basename "$PWD")" in\n{cases}\nesac\n'
        f"{deadline}"
        f"export PYTHONPATH={shlex.quote(str(REPO))}${{PYTHONPATH:+:$PYTHONPATH}}\n"
        f'exec {shlex.quote(sys.executable)} "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A local-cluster session of two one-core executors; stopped after, its JVM ended."""
    require("pyspark")
    import pyspark
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    folder = tmp_path_factory.mktemp("spark")
    home = folder / "spark-home"
    home.mkdir()
    for entry in Path(pyspark.__file__).parent.iterdir():
        (home / entry.name).symlink_to(entry)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SPARK_HOME", str(home))
        env.setenv("SPARK_LOCAL_IP", "127.0.0.1")
        # The JVM and the executors it starts keep this: TorchDistributor's torchrun writes its
        # log folders (torchelastic_*) there, not in the system's temporary folder.
        (folder / "tmp").mkdir()
        env.setenv("TMPDIR", str(folder / "tmp"))
        env.setenv("PYSPARK_PYTHON", str(_executor_python(folder)))
        env.delenv("PYSPARK_DRIVER_PYTHON", raising=False)
        env.delenv("MLFLOW_SYSMETRICS_ROOT", raising=False)
        session = (
            SparkSession.builder.master("local-cluster[2,1,1024]")
            .appName("mlflow-sysmetrics-tests")
            .config("spark.executor.memory", "1g")
            .config("spark.ui.enabled", "false")
            .config("spark.driver.extraJavaOptions", JVM_OPTIONS)
            .config("spark.executor.extraJavaOptions", JVM_OPTIONS)
            .config("spark.local.dir", str(folder / "local"))
            .getOrCreate()
        )
        gateway = SparkContext._gateway
        try:
            deadline = time.monotonic() + 180
            while (
                len(session.sparkContext.statusTracker().getExecutorInfos()) < 3
            ):  # the driver is listed too
                assert time.monotonic() < deadline, "the two executors did not register"
                time.sleep(0.2)
            yield session
        finally:
            session.stop()
            # PySpark's JVM lives as long as this process unless its standard input closes.
            process = getattr(gateway, "proc", None)
            if process is not None:
                process.stdin.close()
                try:
                    process.wait(timeout=30)
                except Exception:
                    os.kill(process.pid, signal.SIGKILL)
            SparkContext._gateway = None
            SparkContext._jvm = None
    assert (home / "work").is_dir()  # the executors ran where the test put them


@pytest.fixture
def driver_run(monkeypatch: pytest.MonkeyPatch, tracking: Proxy) -> Iterator[Any]:
    """A run the driver makes with implicit tagging on, the driver replaying a CPU-only ECS task."""
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(fixture_root(DRIVER_MACHINE)))
    monkeypatch.setenv("MLFLOW_RUN_CONTEXT_PROVIDER", "sysmetrics")
    for name, value in DEADLINE.items():
        monkeypatch.setenv(name, value)
    mlflow.set_experiment("spark")
    with mlflow.start_run() as run:
        yield run


def _system_tags(run_id: str) -> dict[str, str]:
    tags = mlflow.MlflowClient().get_run(run_id).data.tags
    return {k: v for k, v in tags.items() if k.startswith(("sys.", "sysmetrics."))}


def _tag_writes(tracking: Proxy) -> list[dict[str, Any]]:
    return [
        json.loads(body)
        for _, path, body in tracking.bodies
        if path.endswith("/runs/log-batch") and b'"sys.' in body
    ]


def _run_distributor(spark: Any, run_id: str, tracking: Proxy, results: Path, root: str | None) -> list[Any]:
    require("torch")
    from pyspark.ml.torch.distributor import TorchDistributor

    from tests.integration.scripts.spark_jobs import train

    results.mkdir()
    tracking.reset()
    ranks = TorchDistributor(num_processes=2, local_mode=False, use_gpu=False).run(
        train, run_id, tracking.url, str(results), root
    )
    assert ranks == 0  # TorchDistributor returns rank 0's answer
    return sorted((json.loads(p.read_text()) for p in results.glob("rank*.json")), key=lambda s: s["rank"])


@pytest.mark.needs_torch
def test_torch_distributor_writes_each_machine_once(
    spark: Any, driver_run: Any, tracking: Proxy, tmp_path: Path
) -> None:
    """Two tasks on two machines: two writers, machine k's facts under sys.node<k>, the driver's gone.

    The driver made the run with its own facts (implicit tagging); the task on machine 0
    replaces them, the other writes sys.node1.*, sys.dist.nodes counts machines.
    """
    run_id = driver_run.info.run_id
    driver = machine_facts(DRIVER_MACHINE)
    assert _system_tags(run_id)["sys.cpu"] == driver["sys.cpu"]  # the driver's facts, at first
    seen = _run_distributor(spark, run_id, tracking, tmp_path / "results", None)
    assert [s["sum"] for s in seen] == [2.0, 2.0]
    assert [(s["task"], s["tasks"]) for s in seen] == [("0", "2"), ("1", "2")]  # two torchrun "nodes"
    assert len({s["root"] for s in seen}) == 2
    assert [(s["machine"], s["machines"], s["writes"]) for s in seen] == [(0, 2, True), (1, 2, True)]

    tags = _system_tags(run_id)
    machine_of = {str(fixture_root(m)): m for m in EXECUTOR_MACHINES}
    first, second = (machine_facts(machine_of[s["root"]]) for s in seen)
    for key in ("sys.cpu", "sys.cpu_cores", "sys.memory_gb", "sys.os", "sys.cloud"):
        assert tags.get(key) == first.get(key), key
        assert tags.get(key.replace("sys.", "sys.node1.")) == second.get(key), key
    # use_gpu=False: TorchDistributor sets CUDA_VISIBLE_DEVICES="", and the training
    # processes may use no GPU, the H100 machine's included.
    assert (tags["sys.gpu_count"], tags["sys.node1.gpu_count"]) == ("0", "0")
    assert (tags["sys.dist.nodes"], tags["sys.dist.world_size"]) == ("2", "2")
    assert not any(k.startswith("sys.node2.") or k.startswith("sys.dist.rank") for k in tags)
    assert tags.get("sys.container") == first.get("sys.container")  # the driver's "ecs" replaced
    assert driver["sys.cpu"] not in tags.values()
    writes = _tag_writes(tracking)
    assert len(writes) == 2  # one per machine
    print(json.dumps(tags, indent=1, sort_keys=True))


@pytest.mark.needs_torch
def test_torch_distributor_tasks_on_one_machine_write_once(
    spark: Any, driver_run: Any, tracking: Proxy, tmp_path: Path
) -> None:
    """Two tasks, two torchrun "nodes", on one machine: one writer, one set of facts, one node."""
    run_id = driver_run.info.run_id
    shared = str(fixture_root("cgroup-v2-nested"))
    seen = _run_distributor(spark, run_id, tracking, tmp_path / "results", shared)
    assert [(s["task"], s["root"]) for s in seen] == [("0", shared), ("1", shared)]
    assert [(s["machine"], s["machines"], s["writes"]) for s in seen] == [(0, 1, True), (0, 1, False)]
    tags = _system_tags(run_id)
    machine = machine_facts("cgroup-v2-nested")
    assert (tags["sys.cpu"], tags["sys.cpu_available"]) == (machine["sys.cpu"], machine["sys.cpu_available"])
    assert tags["sys.dist.nodes"] == "1"
    assert not any(k.startswith("sys.node") for k in tags)
    assert len(_tag_writes(tracking)) == 1


def test_executor_helper_tags_the_drivers_run_with_every_executor_machine(
    spark: Any, driver_run: Any, tracking: Proxy
) -> None:
    """log_executor_sysmetrics: the driver's run gets both executor machines in one write, the driver's facts go."""
    from mlflow_sysmetrics.spark import executor_sysmetrics, log_executor_sysmetrics

    run_id = driver_run.info.run_id
    assert spark.sparkContext.parallelize(range(100), 4).sum() == 4950  # the work, on the executors
    machines = executor_sysmetrics(spark)
    assert sorted(m["sys.cpu"] for m in machines) == sorted(
        machine_facts(m)["sys.cpu"] for m in EXECUTOR_MACHINES
    )
    tracking.reset()
    written = log_executor_sysmetrics()  # the active run, the active session
    tags = _system_tags(run_id)
    assert written == tags
    assert tags["sysmetrics.collected_on"] == "spark executors"
    assert tags["sys.dist.nodes"] == "2"
    assert {tags["sys.cpu"], tags["sys.node1.cpu"]} == {
        machine_facts(m)["sys.cpu"] for m in EXECUTOR_MACHINES
    }
    first = next(
        machine_facts(m) for m in EXECUTOR_MACHINES if machine_facts(m)["sys.cpu"] == tags["sys.cpu"]
    )
    for key in ("sys.gpu", "sys.gpu_count", "sys.memory_gb", "sys.container", "sys.cloud"):
        assert tags.get(key) == first.get(key), key
    assert not any(k.startswith("sys.node2.") for k in tags)
    assert machine_facts(DRIVER_MACHINE)["sys.cpu"] not in tags.values()
    assert "sys.frameworks" not in tags  # the probe's imports say nothing of the work's
    assert len(_tag_writes(tracking)) == 1
    print(json.dumps(tags, indent=1, sort_keys=True))
