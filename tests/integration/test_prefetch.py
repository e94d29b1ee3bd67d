"""Gathering ahead: with implicit tagging on, the facts are gathered at ``import mlflow``.

The first run then finds them waiting. Each test runs a fresh interpreter, as a user's
script would, with real MLflow; GPU tools are fake programs on PATH replaying a captured
H100 machine.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import FakeCommands, expected, fixture_root, nvidia_smi_stand_in, without_free_space
from tests.fresh import fresh_python
from tests.integration.conftest import Server

#: What a fresh interpreter prints, as JSON, about our threads and modules.
REPORT = """
import json, sys, threading
def ours():
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("mlflow-sysmetrics-"))
def report(**extra):
    print(json.dumps({"threads": ours(), "collection": "mlflow_sysmetrics._collection" in sys.modules, **extra}))
def join_prefetch():
    for thread in threading.enumerate():
        if thread.name == "mlflow-sysmetrics-prefetch":
            thread.join(10)
"""


def _python(code: str, *flags: str, **env: str) -> dict[str, object]:
    """``code`` after :data:`REPORT` in a fresh interpreter (bytecode written, as a user's is)."""
    ran = fresh_python(
        REPORT + code, *flags, env=env, scrub=("MLFLOW_RUN_CONTEXT_PROVIDER", "PYTHONDONTWRITEBYTECODE")
    )
    result: dict[str, object] = ran.value
    result["stderr"] = ran.stderr
    return result


def _counting_nvidia_smi(fake_commands: FakeCommands, log: Path, delay: float = 0.0) -> None:
    """A fake nvidia-smi answering as the H100 machine's, noting each start in ``log``."""
    description = fixture_root("h100-vm") / "commands" / "nvidia-smi.json"
    fake_commands(
        scripts={"nvidia-smi": nvidia_smi_stand_in(description, f'echo "$*" >> "{log}"\nsleep {delay}')}
    )


def test_without_the_variable_nothing_of_ours_runs_at_import() -> None:
    """No thread, no collection, no file or process opened from our code during `import mlflow`."""
    code = """
import os
touched = []
def hook(event, args):
    if event in ("open", "os.listdir", "os.scandir", "subprocess.Popen", "os.posix_spawn"):
        frame = sys._getframe(1)
        while frame is not None:
            name = frame.f_code.co_filename
            if name.startswith("<frozen importlib"):
                break  # Python's import system finding and loading a module
            if "mlflow_sysmetrics" in name:
                touched.append(f"{event} {args[0] if args else ''}")
                break
            frame = frame.f_back
sys.addaudithook(hook)
import mlflow
import time; time.sleep(0.2)
report(touched=touched)
"""
    result = _python(code)
    assert result["threads"] == []
    assert result["collection"] is False
    assert result["touched"] == []


def test_facts_gathered_ahead_leave_nothing_running(fake_commands: FakeCommands, tmp_path: Path) -> None:
    """Variable on: the gathering ends on its own, runs nvidia-smi once, leaves no thread or child."""
    log = tmp_path / "nvidia-smi.log"
    _counting_nvidia_smi(fake_commands, log)
    code = """
import os, time
import mlflow
started = ours()
join_prefetch()
time.sleep(0.2)  # the tool's own threads wind down after the answer
from mlflow.tracking.context.registry import _run_context_provider_registry as registry
provider = next(p for p in registry if type(p).__name__ == "SysMetricsRunContextProvider")
opened = []
main = threading.get_ident()
def hook(event, args):  # what the run's own thread opens (MLflow's threads go on meanwhile)
    if event in ("open", "subprocess.Popen") and threading.get_ident() == main:
        opened.append(str(args[0]))
sys.addaudithook(hook)
tags = provider.tags()
seen = list(opened)
import psutil
report(started=started, tags=tags, opened=seen, children=len(psutil.Process().children()))
"""
    result = _python(
        code, MLFLOW_RUN_CONTEXT_PROVIDER="sysmetrics", MLFLOW_SYSMETRICS_ROOT=str(fixture_root("h100-vm"))
    )
    assert result["started"] == ["mlflow-sysmetrics-prefetch"]
    assert result["threads"] == []
    assert result["children"] == 0
    assert result["opened"] == []  # the first run read nothing: the facts were waiting
    tags = result["tags"]
    assert isinstance(tags, dict)
    assert tags["sys.gpu"] == expected("h100-vm")["sys.gpu"]
    assert "sysmetrics.error" not in tags
    first = log.read_text().splitlines()
    assert first
    assert len(first) == len(set(first))


def test_a_run_started_at_once_joins_the_gathering(
    fake_commands: FakeCommands, tmp_path: Path, mlflow_server: Server
) -> None:
    """start_run right after import, while a slow nvidia-smi runs: joined, never asked twice."""
    log = tmp_path / "nvidia-smi.log"
    _counting_nvidia_smi(fake_commands, log, delay=0.2)
    code = """
import mlflow
with mlflow.start_run() as run:
    pass
tags = mlflow.MlflowClient().get_run(run.info.run_id).data.tags
report(tags={k: v for k, v in tags.items() if k.startswith(("sys.", "sysmetrics."))})
"""
    env = {
        "MLFLOW_TRACKING_URI": mlflow_server.url,
        "MLFLOW_SYSMETRICS_ROOT": str(fixture_root("h100-vm")),
        "MLFLOW_SYSMETRICS_TIMEOUT": "10",
    }
    gathered = _python(code, MLFLOW_RUN_CONTEXT_PROVIDER="sysmetrics", **env)
    with_prefetch = log.read_text().splitlines()
    log.unlink()
    plain = _python(code, MLFLOW_RUN_CONTEXT_PROVIDER="sysmetrics", MLFLOW_SYSMETRICS_PREFETCH="0", **env)
    without = log.read_text().splitlines()
    assert sorted(with_prefetch) == sorted(without)  # the same questions, each once
    assert "sys.disk_free_gb" in gathered["tags"]  # type: ignore[operator]
    assert without_free_space(gathered["tags"]) == without_free_space(plain["tags"])  # type: ignore[arg-type]
    assert gathered["tags"]["sys.gpu"] == expected("h100-vm")["sys.gpu"]  # type: ignore[index]


def test_a_fork_while_gathering_redoes_the_work_in_the_child(
    fake_commands: FakeCommands, tmp_path: Path
) -> None:
    """fork() while nvidia-smi runs for the gathering: the child asks again and gets every fact."""
    _counting_nvidia_smi(fake_commands, tmp_path / "nvidia-smi.log", delay=0.5)
    code = """
import os, signal, time
import mlflow
time.sleep(0.2)  # the gathering is waiting on nvidia-smi now
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    signal.alarm(20)
    from mlflow_sysmetrics import collect
    os.write(write, json.dumps(collect()).encode())
    os._exit(0)
os.close(write)
child = json.loads(os.read(read, 1 << 20))
os.waitpid(pid, 0)
from mlflow_sysmetrics import collect
report(child=child, parent=collect())
"""
    result = _python(
        code,
        MLFLOW_RUN_CONTEXT_PROVIDER="sysmetrics",
        MLFLOW_SYSMETRICS_ROOT=str(fixture_root("h100-vm")),
        MLFLOW_SYSMETRICS_TIMEOUT="10",
    )
    child, parent = result["child"], result["parent"]
    assert isinstance(child, dict)
    assert isinstance(parent, dict)
    assert child["sys.gpu"] == parent["sys.gpu"] == expected("h100-vm")["sys.gpu"]
    lasting = {k: v for k, v in parent.items() if "disk" not in k}
    assert {k: child.get(k) for k in lasting} == lasting


def test_a_fork_while_our_thread_imports_does_not_hang_the_child() -> None:
    """A child forked while the gathering imports one of our modules imports it afresh.

    A module being imported holds an import lock owned by the importing thread; in a
    child of fork() that thread does not exist, and importing the module would wait
    forever. The import is slowed here (a finder in front of the real one) to make the
    moment certain.
    """
    code = """
import importlib.abc, importlib.machinery, os, signal, threading, time
SLOW = "mlflow_sysmetrics.collectors.cpu"
class Slow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != SLOW or threading.current_thread() is threading.main_thread():
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        real = spec.loader.exec_module
        def exec_module(module):
            time.sleep(0.6)
            real(module)
        spec.loader.exec_module = exec_module
        return spec
sys.meta_path.insert(0, Slow())
from mlflow_sysmetrics import SysMetricsRunContextProvider
SysMetricsRunContextProvider()  # MLflow is not imported: the gathering starts at once
time.sleep(0.3)
busy = SLOW in sys.modules  # half imported, by our thread
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    signal.alarm(10)  # a hung child dies here instead of hanging the test
    from mlflow_sysmetrics import collect
    os.write(write, json.dumps(collect()).encode())
    os._exit(0)
os.close(write)
data = os.read(read, 1 << 20)
_, status = os.waitpid(pid, 0)
report(busy=busy, status=status, child=json.loads(data) if data else None)
"""
    result = _python(code, MLFLOW_RUN_CONTEXT_PROVIDER="sysmetrics")
    assert result["busy"] is True  # the fork came while our module was half imported
    assert result["status"] == 0
    child = result["child"]
    assert isinstance(child, dict)
    assert child["sys.cpu_cores"] == str(os.cpu_count())


def test_either_import_order_with_the_variable_on(mlflow_server: Server) -> None:
    """`import mlflow_sysmetrics; import mlflow` and the reverse: no deadlock, no warning, tags."""
    run = """
with mlflow.start_run() as run:
    pass
join_prefetch()
tags = mlflow.MlflowClient().get_run(run.info.run_id).data.tags
report(tagged="sys.cpu" in tags)
"""
    for order in ("import mlflow_sysmetrics, mlflow\n", "import mlflow, mlflow_sysmetrics\n"):
        result = _python(
            order + run,
            "-W",
            "error",
            MLFLOW_RUN_CONTEXT_PROVIDER="sysmetrics",
            MLFLOW_TRACKING_URI=mlflow_server.url,
        )
        assert result["tagged"] is True, order
        assert result["threads"] == []


def test_prefetch_can_be_switched_off() -> None:
    """MLFLOW_SYSMETRICS_PREFETCH=0: no thread and no collection at import; a bad value warns and gathers."""
    code = "import mlflow, time\ntime.sleep(0.2)\nreport()\n"
    off = _python(code, MLFLOW_RUN_CONTEXT_PROVIDER="sysmetrics", MLFLOW_SYSMETRICS_PREFETCH="0")
    assert off["threads"] == []
    assert off["collection"] is False
    bad = _python(code, MLFLOW_RUN_CONTEXT_PROVIDER="sysmetrics", MLFLOW_SYSMETRICS_PREFETCH="sometimes")
    assert bad["collection"] is True  # gathered anyway: the default
    assert str(bad["stderr"]).count("MLFLOW_SYSMETRICS_PREFETCH='sometimes'") == 1
