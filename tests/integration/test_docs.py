"""Every snippet on every page runs as written and does what the text says; the samples are real output.

The pages are the README and ``docs/*.md``. Each ``python`` or ``bash`` block is found by a
line it holds: either in :data:`CHECKS` (run here, in a fresh process against a SQLite store,
then checked) or in :data:`SHOWN` (a recipe that needs what a fresh process here cannot have:
a package index, a Ray or Spark cluster, a Jupyter kernel; named with the test that runs it).
A block in neither fails, so a new snippet comes with its check.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest

from mlflow_sysmetrics import collect
from tests.conftest import expected, fixture_root
from tests.integration.conftest import REPO, Proxy, copy_store, script_path
from tests.pages import DOCS, Snippet, columns, output_sample, snippets

SNIPPETS = snippets("python", "bash")
SYSTEM_KEYS = {"sys.cpu", "sys.cpu_cores", "sys.memory_gb", "sys.gpu", "sys.os"}
H100 = expected("h100-vm")["sys.gpu"]
#: Tags a run for each replayed machine named, as a run made there (one fresh process for all).
TAG_RUNS = (
    "import os, sys\n"
    "import mlflow\n"
    "from mlflow_sysmetrics import log_sysmetrics\n"
    "client = mlflow.MlflowClient()\n"
    "for root in sys.argv[1:]:\n"
    "    os.environ['MLFLOW_SYSMETRICS_ROOT'] = root\n"
    "    run = client.create_run('0')\n"
    "    log_sysmetrics(run.info.run_id, client=client)\n"
    "    client.set_terminated(run.info.run_id)\n"
)
#: The program `mlflow-sysmetrics run` runs on the command-line page: one a user does not edit.
TRAIN_PY = (
    "import sys\n\n"
    "import mlflow\n\n"
    "epochs = int(sys.argv[sys.argv.index('--epochs') + 1])\n"
    "with mlflow.start_run():\n"
    "    mlflow.log_param('epochs', epochs)\n"
    "    mlflow.log_metric('loss', 1.0 / epochs)\n"
)
#: The runs of the `summary` sample, made by a script that imports scikit-learn: for each
#: replayed machine named, a number of runs.
SUMMARY_RUNS = (
    "import os, sys, time\n"
    "import sklearn\n"
    "import mlflow\n"
    "from mlflow_sysmetrics import sysmetrics_run\n"
    "mlflow.set_experiment('training')\n"
    "for root, count in zip(sys.argv[1::2], sys.argv[2::2]):\n"
    "    os.environ['MLFLOW_SYSMETRICS_ROOT'] = root\n"
    "    for _ in range(int(count)):\n"
    "        with sysmetrics_run():\n"
    "            time.sleep(0.05)\n"
)


def _env(**extra: str) -> dict[str, str]:
    """The environment of the tests, with this interpreter's scripts first on PATH (`python`, `mlflow-sysmetrics`)."""
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    return dict(os.environ, PATH=path, **extra)


def _run_python(code: str, env: dict[str, str], cwd: Path, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )
    assert out.returncode == 0, f"exit status {out.returncode}: {out.stderr[-3000:]}"
    return out.stdout


def _runs(uri: str) -> list[mlflow.entities.Run]:
    client = mlflow.MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    return list(client.search_runs(experiments)) if experiments else []


def _experiment_of(uri: str, run: mlflow.entities.Run) -> str:
    return mlflow.MlflowClient(uri).get_experiment(run.info.experiment_id).name


@dataclass(frozen=True)
class Check:
    """How a snippet is run here and what it must have done.

    ``prepare`` readies the folder and the store first (the runs a search must find, the
    program a command runs); ``then`` is a command run after a bash snippet, in the same
    shell, to see what the snippet changed; ``verify`` gets the output and every run the
    store holds afterwards.
    """

    verify: Callable[[str, list[mlflow.entities.Run], str], None]
    prepare: Callable[[str, Path], None] | None = None
    then: str = ""


def _implicit(stdout: str, runs: list[mlflow.entities.Run], uri: str) -> None:
    assert stdout.strip() == collect()["sys.cpu"]
    assert runs[0].data.params == {"lr": "0.01"}


def _with_block(stdout: str, runs: list[mlflow.entities.Run], uri: str) -> None:
    (run,) = runs
    assert (run.info.run_name, run.data.tags["team"], run.data.metrics["accuracy"]) == (
        "baseline",
        "vision",
        0.91,
    )
    assert run.info.status == "FINISHED"
    assert "sys.gpu_hours" in run.data.metrics  # the with block writes the ledger


def _decorator(stdout: str, runs: list[mlflow.entities.Run], uri: str) -> None:
    (run,) = runs
    assert (run.info.run_name, run.data.metrics["loss"]) == ("train", 0.25)
    assert "sys.gpu_hours" in run.data.metrics  # so does the decorator


def _client_run(stdout: str, runs: list[mlflow.entities.Run], uri: str) -> None:
    (run,) = runs
    # Created by the client, tagged afterwards, and ended as a user should end it.
    assert run.info.status == "FINISHED"
    assert run.info.end_time is not None


def _facts(stdout: str, runs: list[mlflow.entities.Run], uri: str) -> None:
    assert stdout.strip() == collect()["sys.cpu_available"]
    assert runs == []


def _ledger(stdout: str, runs: list[mlflow.entities.Run], uri: str) -> None:
    (run,) = runs
    assert (run.info.run_name, run.info.status) == ("train", "FINISHED")
    assert "sys.gpu_hours" in run.data.metrics
    assert "sys.ledger" in run.data.tags or "sys.memory_peak_gb" in run.data.metrics


def _two_machines(uri: str, folder: Path) -> None:
    """A run tagged on the replayed H100 VM and one on a replayed pod without a GPU."""
    machines = [str(fixture_root(machine)) for machine in ("h100-vm", "cgroup-v2-nested")]
    _run_python(TAG_RUNS, _env(MLFLOW_TRACKING_URI=uri), folder, *machines)


def _h100_runs(stdout: str, runs: list[mlflow.entities.Run], uri: str) -> None:
    by_gpu = {run.data.tags["sys.gpu"]: run.info.run_id for run in runs}
    assert set(by_gpu) == {H100, "None"}
    assert by_gpu[H100] in stdout
    assert by_gpu["None"] not in stdout


def _switched_on(stdout: str, runs: list[mlflow.entities.Run], uri: str) -> None:
    assert stdout.strip() == "True"
    assert runs == []


def _a_program(uri: str, folder: Path) -> None:
    (folder / "train.py").write_text(TRAIN_PY)


def _program_run(stdout: str, runs: list[mlflow.entities.Run], uri: str) -> None:
    (run,) = runs
    assert (_experiment_of(uri, run), run.info.status) == ("training", "FINISHED")
    assert (run.data.params, run.data.metrics["loss"]) == ({"epochs": "4"}, 0.25)
    assert "sys.memory_peak_gb" in run.data.metrics  # a fresh child's peak is its own


#: What each snippet run here must have done, found by a line it holds.
CHECKS: dict[str, Check] = {
    'print(mlflow.get_run(run.info.run_id).data.tags["sys.cpu"])': Check(_implicit),
    'sysmetrics_run(run_name="baseline"': Check(_with_block),
    '@with_sysmetrics(run_name="train")': Check(_decorator),
    "log_sysmetrics(run.info.run_id)": Check(_client_run),
    'print(collect()["sys.cpu_available"])': Check(_facts),
    'metrics.`sys.gpu_energy_wh` > 100"': Check(_ledger),
    "tags.`sys.gpu` = 'NVIDIA H100 80GB HBM3'": Check(_h100_runs, prepare=_two_machines),
    "export MLFLOW_RUN_CONTEXT_PROVIDER=sysmetrics\n": Check(
        _switched_on,
        then="python -c 'from mlflow_sysmetrics import SysMetricsRunContextProvider as P; print(P().in_context())'",
    ),
    "mlflow-sysmetrics run --experiment training -- python train.py --epochs 4": Check(
        _program_run, prepare=_a_program
    ),
}

#: Snippets shown, not run here, with the file that runs what they show and a line it holds.
SHOWN: dict[str, tuple[str, str]] = {
    # A package index is not reached from the tests; the wheel built from this tree is installed.
    "pip install mlflow-sysmetrics\n": (
        "tests/unit/test_package.py",
        "def test_the_built_wheel_installs_what_users_get",
    ),
    # A fresh clone's two commands: the first is the demo, the second is CI's first step.
    "# 1. Set up and run the main job": (
        "tests/unit/test_docs.py",
        "def test_the_quick_start_is_what_ci_runs",
    ),
    # The notebook, run on a real Jupyter kernel.
    "jupyter execute notebooks/quickstart.ipynb": ("tests/integration/test_notebook.py", "NotebookClient("),
    # The engines' recipes, run against a two-node Ray cluster and a two-executor Spark cluster.
    "from mlflow_sysmetrics.ray import MLflowLoggerCallback, setup_mlflow": (
        "tests/integration/test_ray.py",
        "MLflowLoggerCallback(tracking_uri=",
    ),
    "TorchDistributor(num_processes=8": ("tests/integration/test_spark.py", "TorchDistributor("),
    "log_executor_sysmetrics()  # the active run": (
        "tests/integration/test_spark.py",
        "log_executor_sysmetrics(",
    ),
    # why() and its text, JSON and comparison, against the real server with runs it wrote.
    "print(why(run_id, than=baseline_id))": ("tests/integration/test_why.py", "why(capped, than=full"),
}


def _markers(snippet: Snippet) -> tuple[list[str], list[str]]:
    return [m for m in CHECKS if m in snippet.code], [m for m in SHOWN if m in snippet.code]


def test_every_snippet_is_run_here_or_by_a_named_test() -> None:
    """Each page's snippet has one check here, or names the test that runs what it shows."""
    assert {s.page for s in SNIPPETS} >= {"README.md", "docs/usage.md", "docs/ledger.md", "docs/cli.md"}
    for snippet in SNIPPETS:
        checked, shown = _markers(snippet)
        assert len(checked) + len(shown) == 1, (
            f"no single check for this snippet of {snippet.page}:\n{snippet.code}"
        )
    for path, line in SHOWN.values():
        assert line in (REPO / path).read_text(), f"{path} no longer holds {line!r}"
    used = {m for s in SNIPPETS for m in (*_markers(s)[0], *_markers(s)[1])}
    assert used == set(CHECKS) | set(SHOWN)  # no check is left over from a snippet that went


def test_the_usage_page_shows_every_door() -> None:
    """The page on tagging runs shows every door, each in a snippet that runs."""
    joined = "\n".join(s.code for s in SNIPPETS if s.page == "docs/usage.md")
    for name in ("mlflow.start_run", "sysmetrics_run(", "@with_sysmetrics", "log_sysmetrics(", "collect()"):
        assert name in joined


def _run_here() -> dict[str, Snippet]:
    """The snippets run here, each once (the README shows some of the pages' snippets word for word), by name."""
    found: dict[str, Snippet] = {}
    for snippet in SNIPPETS:
        checked = _markers(snippet)[0]
        if checked and snippet.code not in {s.code for s in found.values()}:
            found[f"{snippet.page}:{CHECKS[checked[0]].verify.__name__.strip('_')}"] = snippet
    return found


RUN_HERE = _run_here()


@pytest.mark.parametrize("snippet", RUN_HERE.values(), ids=RUN_HERE.keys())
def test_snippet_runs_and_does_what_it_says(
    snippet: Snippet, tmp_path: Path, empty_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run in a fresh process against a SQLite store: Python with implicit tagging on, as the pages say; bash as written."""
    uri = copy_store(empty_store, tmp_path)
    monkeypatch.chdir(tmp_path)  # MLflow 2's SQLite store makes ./mlruns where its client is made
    (marker,) = _markers(snippet)[0]
    check = CHECKS[marker]
    if check.prepare is not None:
        check.prepare(uri, tmp_path)
    if snippet.language == "python":
        env = _env(MLFLOW_TRACKING_URI=uri, MLFLOW_RUN_CONTEXT_PROVIDER="sysmetrics")
        command = [sys.executable, "-c", snippet.code]
    else:
        env = _env(MLFLOW_TRACKING_URI=uri)
        env.pop("MLFLOW_RUN_CONTEXT_PROVIDER", None)  # a bash snippet says itself what it sets
        command = ["bash", "-e", "-c", snippet.code + check.then]
    out = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, f"exit status {out.returncode}: {out.stderr[-3000:]}"
    runs = _runs(uri)
    for run in runs:  # whichever door made it, every run carries the system tags
        assert set(run.data.tags) >= SYSTEM_KEYS, run.data.tags
    check.verify(out.stdout, runs, uri)


def test_the_documented_summary_is_what_summary_prints(tracking: Proxy, tmp_path: Path) -> None:
    """The command-line page's `summary` sample, made again against the real server: the same columns and rows.

    The runs are the ones the page describes (three on the replayed H100 VM, two on the
    replayed pod, from a script that imports scikit-learn); the documented command is run as
    the installed script. Durations and versions differ from run to run; the columns, and the
    hardware in each row, do not.
    """
    command, heading, blank, header, *rows = output_sample(DOCS / "cli.md", "mlflow-sysmetrics summary")
    machines = (str(fixture_root("h100-vm")), "3", str(fixture_root("cgroup-v2-nested")), "2")
    _run_python(SUMMARY_RUNS, _env(MLFLOW_TRACKING_URI=tracking.url), tmp_path, *machines)
    argv = shlex.split(command.removeprefix("$ "))
    out = subprocess.run(
        [script_path(argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        env=_env(MLFLOW_TRACKING_URI=tracking.url),
        cwd=tmp_path,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    real_heading, real_blank, real_header, *real_rows = out.stdout.splitlines()
    experiment_id = mlflow.get_experiment_by_name("training").experiment_id
    assert (heading.replace("(id 1)", f"(id {experiment_id})"), blank) == (real_heading, real_blank)
    assert columns(header) == columns(real_header)
    hardware = [columns(header).index(c) for c in ("cpu", "cores", "memory GB", "gpu", "gpus", "runs")]
    assert [[columns(r)[i] for i in hardware] for r in rows] == [
        [columns(r)[i] for i in hardware] for r in real_rows
    ]
