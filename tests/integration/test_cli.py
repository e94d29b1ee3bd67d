"""The mlflow-sysmetrics command, through click's runner and as the installed script."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import mlflow
import pytest
from click.testing import CliRunner

from mlflow_sysmetrics import _collection, log_sysmetrics, sysmetrics_run
from mlflow_sysmetrics import tags as T
from mlflow_sysmetrics.cli import _store, main
from tests.conftest import expected, fixture_root
from tests.integration.conftest import REPO, Proxy, free_port, script_path

#: The two replayed machines the commands are tried on, as their READMEs give them.
H100 = expected("h100-vm")
NESTED = expected("cgroup-v2-nested")


@pytest.fixture(params=["local", "server"])
def store(request: pytest.FixtureRequest) -> str:
    """Each command runs against a SQLite store and against the real server."""
    value = request.getfixturevalue("local_store" if request.param == "local" else "tracking")
    return value if isinstance(value, str) else value.url


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _new_run(name: str | None = None) -> str:
    client = mlflow.MlflowClient()
    return client.create_run(
        client.get_experiment_by_name("Default").experiment_id, run_name=name
    ).info.run_id


def _on_machine(monkeypatch: pytest.MonkeyPatch, machine: str) -> None:
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(fixture_root(machine)))
    _collection.clear_cache()


def test_show_here_table_and_json(store: str) -> None:
    """show: grouped table and JSON of what would be tagged here, keys in the README's order."""
    table = invoke("show")
    assert table.exit_code == 0
    for heading in ("CPU", "Memory", "Disk", "OS", "GPU"):
        assert f"\n{heading}\n" in f"\n{table.output}"
    data = json.loads(invoke("show", "--json").output)
    assert data["sys.cpu_cores"] == str(os.cpu_count())
    assert list(data) == [k for k in T.ALL_KEYS if k in data]


def test_show_log_and_diff_runs(store: str) -> None:
    """Log tags a client-made run; show reads it back under a heading; a run against itself is 'same'."""
    run_id = _new_run("trainer")
    logged = invoke("log", run_id, "--json")
    assert logged.exit_code == 0, logged.output
    written = json.loads(logged.output)
    shown = json.loads(invoke("show", run_id, "--json").output)
    assert shown == written
    assert list(shown) == list(written)  # one key order everywhere
    text = invoke("show", run_id).output
    assert text.startswith(f'Run {run_id} ("trainer") in experiment "Default"\n\nCPU\n')
    same = invoke("diff", run_id, run_id)
    assert (same.exit_code, same.output.split(":")[0]) == (0, "Same hardware")


def test_tracking_uri_after_the_subcommand(local_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """--tracking-uri is taken by every subcommand, after its name too."""
    run_id = _new_run()
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    for args in (
        ("show", run_id, "--tracking-uri", local_store),
        ("--tracking-uri", local_store, "show", run_id),
    ):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        assert f"Run {run_id}" in result.output


def test_show_an_untagged_run_says_so(local_store: str) -> None:
    """A run without system tags: a sentence that says how to tag it, not an empty table."""
    run_id = _new_run()
    result = invoke("show", run_id)
    assert result.exit_code == 0
    assert f"has no system tags; tag it with: mlflow-sysmetrics log {run_id}" in result.output


def test_diff_lists_only_what_differs(local_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two runs from two replayed machines: only the differing tags, side by side."""
    ids = []
    for machine in ("h100-vm", "cgroup-v2-nested"):
        _on_machine(monkeypatch, machine)
        with sysmetrics_run(run_name=machine) as run:
            ids.append(run.info.run_id)
    result = invoke("diff", *ids)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert any(
        line.startswith("sys.cpu ") and H100["sys.cpu"] in line and NESTED["sys.cpu"] in line
        for line in lines
    )
    assert not any(line.startswith(("sys.python", "sys.disk_free_gb")) for line in lines)
    data = json.loads(invoke("diff", *ids, "--json").output)
    assert data["same_hardware"] is False
    assert data["differences"]["sys.memory_limit_gb"] == {"a": None, "b": "8.59"}


def test_diff_of_one_machine_with_and_without_a_ledger(
    local_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A counted run and a run tagged afterwards, on one machine: the same hardware, not a sys.ledger row."""
    _on_machine(monkeypatch, "h100-vm")
    with sysmetrics_run(run_name="counted") as run:
        counted = run.info.run_id
    tagged = _new_run()
    log_sysmetrics(tagged)
    # the replayed machine has no RAPL zone: its ledger says so in sys.ledger
    assert "sys.ledger" in mlflow.MlflowClient().get_run(counted).data.tags
    for args in ((counted, tagged), (counted, tagged, "--all")):
        result = invoke("diff", *args)
        assert (0, f"Same hardware: runs {counted} and {tagged} have the same system tags.\n") == (
            result.exit_code,
            result.output,
        )
    assert json.loads(invoke("diff", counted, tagged, "--json").output)["differences"] == {}


def test_diff_against_an_untagged_run(local_store: str) -> None:
    """An untagged run: say so, rather than print a column of dashes."""
    tagged, untagged = _new_run(), _new_run()
    log_sysmetrics(tagged)
    result = invoke("diff", tagged, untagged)
    assert result.exit_code == 1
    assert f"run {untagged} has no system tags" in result.output


def test_show_a_multi_node_run(local_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run shared by two nodes: show prints the per-node table and says the nodes differ."""
    from mlflow.entities import RunTag

    from mlflow_sysmetrics import collect
    from mlflow_sysmetrics._shared_run import shared_run_tags
    from mlflow_sysmetrics.collectors.distributed import DistInfo

    client = mlflow.MlflowClient()
    run_id = _new_run()
    for node, machine in enumerate(("h100-vm", "cgroup-v2-nested")):
        _on_machine(monkeypatch, machine)
        info = DistInfo(rank=2 * node, local_rank=0, world_size=4, node_rank=node, nodes=2)
        written = shared_run_tags(collect(), info)
        assert written is not None
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in written.items()])
    result = invoke("show", run_id)
    assert result.exit_code == 0
    table = result.output.split("\nNodes\n", 1)[1].splitlines()
    assert table[0].split()[:3] == ["node", "cpu", "cores"]
    assert table[1].startswith(f"0     {H100['sys.cpu']}  {H100['sys.cpu_cores']}")
    assert table[2].split()[:5] == ["1", "AMD", "EPYC", "7R13", "Processor"]
    assert "8.59" in table[2]  # node 1's memory limit, not its machine's memory
    assert table[3] == "(2 nodes: nodes differ)"
    data = json.loads(invoke("show", run_id, "--json").output)
    assert data["nodes"]["1"]["cpu_available"] == "2.5"


def test_log_keeps_a_run_tagged_from_another_machine(
    local_store: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A run tagged on the H100 and logged again from a CPU pod: kept whole, nothing written, exit 1.

    Said once, in the command's words: no log line naming the Python API's overwrite=True
    beside the error (in-process and as the installed script prints it), and no snapshot.
    """
    run_id = _new_run()
    _on_machine(monkeypatch, "h100-vm")
    log_sysmetrics(run_id)
    before = mlflow.MlflowClient().get_run(run_id).data.tags
    _on_machine(monkeypatch, "cgroup-v2-nested")
    caplog.clear()
    result = invoke("log", run_id, "--snapshot")
    assert result.exit_code == 1
    assert "already carries system tags from another machine" in result.output
    assert (
        "sys.cpu is 'Intel(R) Xeon(R) Processor' on the run, 'AMD EPYC 7R13 Processor' here" in result.output
    )
    assert "--overwrite" in result.output
    assert [r.getMessage() for r in caplog.records if r.name.startswith("mlflow_sysmetrics")] == []
    assert mlflow.MlflowClient().get_run(run_id).data.tags == before
    assert mlflow.MlflowClient().list_artifacts(run_id) == []
    env = {**os.environ, "MLFLOW_SYSMETRICS_ROOT": str(fixture_root("cgroup-v2-nested"))}
    out = subprocess.run(
        [script_path("mlflow-sysmetrics"), "log", run_id],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 1
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(
        f"Error: run {run_id} already carries system tags from another machine; kept them and wrote "
        "nothing. Add --overwrite to replace them. First differences: sys.cpu is 'Intel(R) Xeon(R) "
        "Processor' on the run, 'AMD EPYC 7R13 Processor' here; "
    )
    assert "overwrite=True" not in out.stderr


def test_log_overwrite_replaces_the_whole_set(local_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """--overwrite: the new machine's tags, and none of the old machine's keys it lacks."""
    run_id = _new_run()
    _on_machine(monkeypatch, "h100-vm")
    log_sysmetrics(run_id)
    _on_machine(monkeypatch, "cgroup-v2-nested")
    result = invoke("log", run_id, "--overwrite", "--json")
    assert result.exit_code == 0, result.output
    tags = mlflow.MlflowClient().get_run(run_id).data.tags
    assert (tags["sys.cpu"], tags["sys.gpu"]) == ("AMD EPYC 7R13 Processor", "None")
    assert "sys.gpu_driver" not in tags  # the H100's driver would contradict sys.gpu None
    assert "sys.cuda_driver" not in tags


def test_log_the_same_machine_again_writes_nothing(local_store: str) -> None:
    """Logging again from the same machine: nothing written, said in a sentence."""
    run_id = _new_run()
    first = invoke("log", run_id)
    assert first.exit_code == 0
    assert first.output.startswith(f"Tagged run {run_id}:\n\nCPU\n")  # a blank line, as show has
    again = invoke("log", run_id)
    assert again.exit_code == 0
    assert "already carries this machine's system tags; nothing written" in again.output


def test_log_snapshot_on_a_run_that_has_the_tags(local_store: str, tmp_path: Path) -> None:
    """--snapshot on a run already tagged from this machine: the snapshot is written, and said."""
    client = mlflow.MlflowClient()
    run_id = _new_run()
    assert invoke("log", run_id).exit_code == 0
    assert client.list_artifacts(run_id) == []
    again = invoke("log", run_id, "--snapshot")
    assert again.exit_code == 0, again.output
    assert again.output.splitlines() == [
        f"Run {run_id} already carries this machine's system tags; no tags written.",
        "",
        "Logged the snapshot sysmetrics/system.json to the run's artifacts.",
    ]
    assert [a.path for a in client.list_artifacts(run_id, "sysmetrics")] == ["sysmetrics/system.json"]
    path = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="sysmetrics/system.json", dst_path=str(tmp_path)
    )
    with open(path) as handle:
        assert json.load(handle)["schema"] == 1
    fresh = _new_run()
    tagged = invoke("log", fresh, "--snapshot")
    assert tagged.output.startswith(f"Tagged run {fresh}:\n\nCPU\n")
    assert tagged.output.endswith("\n\nLogged the snapshot sysmetrics/system.json to the run's artifacts.\n")
    assert [a.path for a in client.list_artifacts(fresh, "sysmetrics")] == ["sysmetrics/system.json"]


def test_summary_of_two_machines(local_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """summary: one row per machine kind with counts and medians in ms; untagged runs labelled."""
    experiment_id = mlflow.set_experiment("two-machines").experiment_id
    for machine, count in (("h100-vm", 3), ("cgroup-v2-nested", 2)):
        _on_machine(monkeypatch, machine)
        for _ in range(count):
            with sysmetrics_run():
                time.sleep(0.05)
    client = mlflow.MlflowClient()
    client.set_terminated(client.create_run(experiment_id).info.run_id)
    data = json.loads(invoke("summary", "--experiment", "two-machines", "--json").output)
    rows = {(r["cpu"], r["gpu"]): r for r in data["kinds"]}
    assert rows[(H100["sys.cpu"], H100["sys.gpu"])]["runs"] == 3
    assert rows[(NESTED["sys.cpu"], "None")]["runs"] == 2
    assert rows[(None, None)] | {"median_duration_s": None} == {
        **{k: None for k in rows[(None, None)] if k not in ("tagged", "runs", "median_duration_s")},
        "tagged": False,
        "runs": 1,
        "median_duration_s": None,
    }
    heading, blank, *table = invoke("summary", "--experiment", "two-machines").output.splitlines()
    assert (heading, blank) == (f'Experiment "two-machines" (id {experiment_id}): 6 runs', "")
    # sys.frameworks is a column too when an earlier test imported a framework into this process
    assert table[0].split()[:4] == ["cpu", "cores", "memory", "GB"]
    assert " gpu " in table[0]
    assert table[0].endswith("median duration  GPU hours")  # the replayed H100 runs counted one GPU
    duration = table[1][table[0].index("median duration") :].split("  ")[0]
    assert re.fullmatch(r"\d+ ms", duration)  # a 50 ms run is not "0.0 s"
    assert re.fullmatch(r"0\.0000\d+", table[1].split()[-1])  # 3 runs of 50 ms on one GPU, no exponent
    assert table[3].startswith("(no system tags)")
    limited = json.loads(
        invoke("summary", "--experiment", "two-machines", "--max-runs", "2", "--json").output
    )
    assert limited["runs"] == 2
    filtered = invoke(
        "summary", "--experiment", "two-machines", "--filter", "tags.`sys.gpu` = 'None'", "--json"
    )
    assert [k["runs"] for k in json.loads(filtered.output)["kinds"]] == [2]


def test_read_commands_never_create_a_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No tracking URI and no store here: show/diff/summary say so and leave the folder empty."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for args in (("show", "0" * 32), ("diff", "0" * 32, "1" * 32), ("summary", "--experiment", "x")):
        result = invoke(*args)
        assert result.exit_code == 1
        assert "no tracking store here" in result.output
        assert "--tracking-uri" in result.output
    missing = invoke("show", "0" * 32, "--tracking-uri", f"sqlite:///{tmp_path / 'nope.db'}")
    assert "no tracking store at" in missing.output
    assert list(tmp_path.iterdir()) == []


def test_bad_input_gives_one_line_and_non_zero(store: str) -> None:
    """Unknown run, unknown experiment, empty run id, bad flags: a one-line error, never a traceback."""
    missing = invoke("show", "0" * 32)
    assert missing.exit_code == 1
    assert missing.output.strip().splitlines()[-1].startswith(f"Error: no run {'0' * 32} in ")
    assert "Traceback" not in missing.output
    nothing = invoke("summary", "--experiment", "no such experiment")
    assert nothing.exit_code == 1
    assert 'no experiment named "no such experiment" in ' in nothing.output
    number = invoke("summary", "--experiment", "987654")
    assert number.exit_code == 1
    assert 'no experiment named "987654" or with the id 987654 in ' in number.output
    assert invoke("diff", "0" * 32, "1" * 32).exit_code == 1
    assert invoke("show", "--bogus").exit_code == 2
    empty = invoke("log", "")
    assert empty.exit_code == 2
    assert "takes a run id such as" in empty.output


def test_unreachable_server_fails_fast_in_a_sentence() -> None:
    """A tracking URI nobody answers: a whole sentence (host, port, refused) within seconds."""
    port = free_port()
    started = time.monotonic()
    result = invoke("--tracking-uri", f"http://127.0.0.1:{port}", "show", "0" * 32)
    assert time.monotonic() - started < 15
    assert result.exit_code == 1
    line = result.output.strip()
    assert line == (
        f"Error: cannot reach the tracking server http://127.0.0.1:{port}: "
        f"connection refused by 127.0.0.1 on port {port}."
    )


def test_help_has_examples_with_real_run_ids() -> None:
    """--help on every subcommand, each with an example; run ids have 32 hex digits as MLflow's do."""
    for command in ("show", "log", "diff", "summary", "demo"):
        result = invoke(command, "--help")
        assert result.exit_code == 0
        assert "Example" in result.output
        assert f"mlflow-sysmetrics {command}" in result.output
        for run_id in re.findall(r"\b[0-9a-f]{16,}\b", result.output):
            assert len(run_id) == 32


def test_installed_script_and_module(tracking: Proxy, tmp_path: Any) -> None:
    """The console script and python -m are the same command, and respect MLFLOW_TRACKING_URI.

    Four processes: what each subcommand does is tested in this process (``invoke``); here,
    that the installed ways in reach it, and that its errors reach the terminal as one line.
    """
    env = dict(os.environ, MLFLOW_TRACKING_URI=tracking.url)
    run_id = _new_run()
    script = script_path("mlflow-sysmetrics")
    first = subprocess.run([script, "log", run_id], capture_output=True, text=True, env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    for command in ([script], [sys.executable, "-m", "mlflow_sysmetrics"]):
        out = subprocess.run(
            [*command, "show", run_id, "--json"], capture_output=True, text=True, env=env, timeout=120
        )
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["sys.cpu_cores"] == str(os.cpu_count())
    bad = subprocess.run([script, "show", "f" * 32], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [f"Error: no run {'f' * 32} in {tracking.url}"]


def test_demo_in_a_fresh_folder(tmp_path: Any) -> None:
    """demo: a SQLite store in the current folder, its tags printed, the UI command given."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    out = subprocess.run(
        [script_path("mlflow-sysmetrics"), "demo"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "sys.cpu" in out.stdout
    assert ' in experiment "sysmetrics-demo" (sqlite:///mlflow.db) has these system tags:\n' in out.stdout
    assert "mlflow ui --backend-store-uri sqlite:///mlflow.db" in out.stdout
    assert (tmp_path / "mlflow.db").exists()
    assert str(REPO) not in out.stdout
    # MLflow's own console lines (a new SQLite store's "Creating initial MLflow database
    # tables...") are not the command's
    assert out.stderr == ""
    assert "MLflow database tables" not in out.stdout


def test_mlflow_own_lines_do_not_come_through(tracking: Proxy, tmp_path: Path) -> None:
    """Against a server, MLflow prints "View run ... at" when a run ends: not from the commands.

    demo says where its run is itself; under run, the program's output is its own, its own
    MLflow's lines included (its run ended once, by the program: one link, not two), and
    the logger levels the command held MLflow's INFO lines back with are put back after it.
    """
    import logging

    level = logging.getLogger("mlflow").level
    demo = invoke("demo")
    assert demo.exit_code == 0, demo.output
    assert "View run" not in demo.output
    assert "View experiment" not in demo.output
    assert level == logging.getLogger("mlflow").level
    program = "import mlflow\nprint('step 1')\nwith mlflow.start_run():\n    pass\nprint('step 2')"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_SYSMETRICS")}
    done = subprocess.run(
        [script_path("mlflow-sysmetrics"), "run", "--", sys.executable, "-c", program],
        env=dict(env, MLFLOW_TRACKING_URI=tracking.url),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line for line in lines if line.startswith("step")] == ["step 1", "step 2"]
    assert sum("View run" in line for line in lines) == 1  # the program's
    assert sum("View experiment" in line for line in lines) == 1
    assert done.stderr.splitlines()[-1].startswith("mlflow-sysmetrics: run ")


def _one_line(result: Any) -> str:
    """The error a command printed: exactly one line, no traceback."""
    assert result.exit_code == 1, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("Error: ")
    return str(line)


def test_a_mistyped_scheme_is_one_line_naming_the_schemes(
    local_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """htp:// on the command line or in MLFLOW_TRACKING_URI: one line, the scheme, those MLflow takes."""
    from mlflow.tracking._tracking_service.utils import _tracking_store_registry

    port = free_port()
    run_id = _new_run()
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    for args in (
        ("--tracking-uri", f"htp://127.0.0.1:{port}", "show", run_id),
        ("log", run_id, "--tracking-uri", f"htp://127.0.0.1:{port}"),
        ("--tracking-uri", f"htp://127.0.0.1:{port}", "summary"),
        ("--tracking-uri", f"htp://127.0.0.1:{port}", "demo"),
    ):
        line = _one_line(invoke(*args))
        assert line.startswith(
            f'Error: --tracking-uri htp://127.0.0.1:{port}: MLflow has no tracking store for the scheme "htp". Did you mean http://127.0.0.1:{port}? It takes http, https, sqlite, file, '
        )
        # every scheme MLflow's tracking store registry has, and nothing else
        takes = line.split(" It takes ", 1)[1].removesuffix(".").removesuffix(", or a path").split(", ")
        assert set(takes) == set(_tracking_store_registry._registry) - {""}
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"htp://127.0.0.1:{port}")
    line = _one_line(invoke("show", run_id))
    assert line.startswith(f"Error: MLFLOW_TRACKING_URI=htp://127.0.0.1:{port}: MLflow has no tracking store")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlit:///mlflow.db")
    assert "Did you mean sqlite:///mlflow.db?" in _one_line(invoke("summary"))
    # A server's address without http://, which MLflow would read as a path or a scheme.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"127.0.0.1:{port}")
    hint = f"A server's address starts with http://: did you mean http://127.0.0.1:{port}?"
    if sys.version_info >= (3, 11):  # a path to MLflow, as to urllib
        assert _one_line(invoke("show", run_id)) == (f"Error: no tracking store at 127.0.0.1:{port}. {hint}")
    else:  # Python 3.10's urllib reads "127.0.0.1" as the scheme, and so does MLflow there
        assert _one_line(invoke("show", run_id)) == (
            f'Error: MLFLOW_TRACKING_URI=127.0.0.1:{port}: MLflow has no tracking store for the scheme "127.0.0.1". '
            f"{hint} It takes {', '.join(s for s in _store.tracking_schemes() or [] if s)}, or a path."
        )
    for command in (("show", run_id), ("demo",)):
        line = _one_line(invoke("--tracking-uri", f"localhost:{port}", *command))
        assert f"did you mean http://localhost:{port}?" in line
    assert not Path(f"127.0.0.1:{port}").exists()  # demo made no store named after the address


def test_the_installed_script_says_a_bad_scheme_in_one_line(tmp_path: Path) -> None:
    """The script a user runs: one line on standard error, where MLflow printed a traceback."""
    env = dict(os.environ, MLFLOW_TRACKING_URI="htp://127.0.0.1:5000")
    out = subprocess.run(
        [script_path("mlflow-sysmetrics"), "summary"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "Error: MLFLOW_TRACKING_URI=htp://127.0.0.1:5000: MLflow has no tracking store for the scheme "
        '"htp". Did you mean http://127.0.0.1:5000? It takes http, https, sqlite, file, postgresql, mysql, '
        "mssql, databricks, databricks-uc, uc, or a path."
    ]


#: Addresses that reach no store (made from the server's address, host and port and a run id),
#: and the line every command answers each with (``named``: the URI as the user gave it).
BAD_STORES = [
    pytest.param(
        "{url}/wrongpath",
        "{uri}: the server answered 404 with a web page, not as MLflow's tracking API: the path is "
        "wrong. An MLflow server serves its API from its root, as in {url}.",
        id="wrong-path",
    ),
    pytest.param(
        "{url}/#/experiments/0/runs/{run}",
        "{uri}: the server answered with a web page, not as MLflow's tracking API: the path is wrong. "
        "An MLflow server serves its API from its root, as in {url}.",
        id="ui-page",
    ),
    pytest.param(
        "{host}:{port}",
        # Python 3.10's urllib reads the host as a scheme: then the line names it, as for htp://
        "A server's address starts with http://: did you mean http://{host}:{port}?",
        id="no-scheme",
    ),
    pytest.param(
        "htp://{host}:{port}",
        '{named}: MLflow has no tracking store for the scheme "htp". Did you mean http://{host}:{port}?',
        id="mistyped-scheme",
    ),
]


@pytest.mark.parametrize("given", ["option", "variable"])
@pytest.mark.parametrize(("address", "expected"), BAD_STORES)
def test_every_command_says_a_bad_store_in_the_same_line(
    tracking: Proxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    address: str,
    expected: str,
    given: str,
) -> None:
    """show, log, diff, summary, demo and run: one line, the same for each, before anything is written.

    ``run`` says it before its program starts (the program would leave a file), and no
    command leaves a run or an experiment in the real server behind it.
    """
    client = mlflow.MlflowClient()
    run_id = _new_run()
    parts = urlsplit(tracking.url)
    uri = address.format(url=tracking.url, host=parts.hostname, port=parts.port, run=run_id)
    named = f"--tracking-uri {uri}" if given == "option" else f"MLFLOW_TRACKING_URI={uri}"
    before = _everything(client)
    monkeypatch.chdir(tmp_path)
    if given == "variable":
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    options = ("--tracking-uri", uri) if given == "option" else ()
    lines = {
        _one_line(invoke(*options, *command))
        for command in (
            ("show", run_id),
            ("log", run_id),
            ("diff", run_id, run_id),
            ("summary",),
            ("demo",),
            ("run", "--", sys.executable, "-c", "open('program-ran', 'w')"),
        )
    }
    (line,) = lines
    assert (
        expected.format(uri=uri, named=named, url=tracking.url, host=parts.hostname, port=parts.port) in line
    )
    assert list(tmp_path.iterdir()) == []  # no store made, and the program never ran
    assert before == _everything(client)


def _everything(client: mlflow.MlflowClient) -> tuple[list[str], list[tuple[str, str]]]:
    """Every experiment and every run in the store (deleted ones too), each run with its status."""
    from mlflow.entities import ViewType

    experiments = sorted(e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL))
    runs = client.search_runs(experiments, run_view_type=ViewType.ALL, max_results=50000)
    return experiments, sorted((r.info.run_id, r.info.status) for r in runs)


def test_a_server_that_is_not_mlflow(tmp_path: Path) -> None:
    """Another service on the port (a plain web server): it answered, but it is not MLflow."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass  # its request log would land in the command's captured output

    handler = functools.partial(Quiet, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert _one_line(invoke("--tracking-uri", url, "show", "0" * 32)) == (
            f"Error: {url}: the server answered 404 with a web page, but not as an MLflow tracking "
            "server does. Is it one, and is this its port?"
        )
    finally:
        server.shutdown()
        server.server_close()


def _summarised(*args: str) -> dict[str, Any]:
    result = invoke("summary", *args, "--json")
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.output)
    return data


def test_summary_takes_names_and_ids_and_defaults_to_every_experiment(
    local_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--experiment takes a name or an id (a name wins); without it, the variables, else every live experiment."""
    client = mlflow.MlflowClient()
    ids = {}
    for name, runs in (("a", 1), ("b", 2), ("gone", 4)):
        ids[name] = client.create_experiment(name)
        for _ in range(runs):
            client.set_terminated(client.create_run(ids[name]).info.run_id)
    client.delete_experiment(ids["gone"])
    ids["digits"] = client.create_experiment(ids["a"])  # named like experiment "a"'s id
    client.set_terminated(client.create_run(ids["digits"]).info.run_id)

    every = _summarised()
    assert every["experiment"] is None
    assert sorted(e["name"] for e in every["experiments"]) == sorted(["Default", "a", "b", ids["a"]])
    assert every["runs"] == 4  # not the deleted experiment's
    heading = invoke("summary").output.splitlines()[0]
    assert heading == f'All experiments (4: "{ids["a"]}", "Default", "a", "b"): 4 runs'

    default = _summarised("--experiment", "0")
    assert (default["experiment"], default["experiments"]) == ("Default", [{"id": "0", "name": "Default"}])
    assert _summarised("--experiment", ids["b"])["runs"] == 2
    assert _summarised("--experiment", "b")["runs"] == 2
    # Both the name of one experiment and the id of another: the name, and a note says so.
    both = invoke("summary", "--experiment", ids["a"])
    assert both.exit_code == 0
    assert both.stdout.splitlines()[0] == f'Experiment "{ids["a"]}" (id {ids["digits"]}): 1 run'
    assert both.stderr.splitlines() == [
        f'Note: "{ids["a"]}" is the name of experiment {ids["digits"]} and the id of experiment "a"; '
        f'summarising the one named "{ids["a"]}" (--experiment "a" for the other).'
    ]

    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "b")
    assert _summarised()["experiments"] == [{"id": ids["b"], "name": "b"}]
    assert invoke("summary").output.startswith(
        f'Experiment "b" (id {ids["b"]}, MLFLOW_EXPERIMENT_NAME): 2 runs\n'
    )
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", ids["a"])
    assert _one_line(invoke("summary")) == (
        f"Error: MLFLOW_EXPERIMENT_NAME=b is experiment {ids['b']}, but MLFLOW_EXPERIMENT_ID={ids['a']}; "
        "unset one, or name the experiment with --experiment."
    )
    assert _summarised("--experiment", "Default")["experiment"] == "Default"  # the option wins
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME")
    assert _summarised()["experiments"] == [{"id": ids["a"], "name": "a"}]
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "never made")
    assert (
        _one_line(invoke("summary"))
        == f"Error: MLFLOW_EXPERIMENT_NAME=never made names no experiment in {local_store}"
    )
    assert client.get_experiment_by_name("never made") is None  # a read creates nothing


def test_help_documents_the_experiment_default() -> None:
    """The summary help says what --experiment takes and what its absence means."""
    text = " ".join(invoke("summary", "--help").output.split())
    assert "--experiment NAME_OR_ID" in text
    assert "a name wins over an equal id" in text
    assert (
        "Default: MLFLOW_EXPERIMENT_NAME or MLFLOW_EXPERIMENT_ID when set, else every experiment that is not deleted."
        in text
    )
