"""The engine: caching, the deadline, failure isolation, include/exclude, limits, fork."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from mlflow_sysmetrics import _engine, collect, snapshot
from mlflow_sysmetrics import tags as T
from tests.conftest import FakeCommands, Replay, fixture_root


def _copy(tmp_path: Path, name: str) -> Path:
    root = tmp_path / name
    shutil.copytree(fixture_root(name), root)
    return root


def _counting_nvidia_smi(tmp_path: Path, fake_commands: FakeCommands) -> Path:
    counter = tmp_path / "nvidia-smi-calls"
    recordings = fixture_root("h100-vm") / "commands"
    fake_commands(
        scripts={
            "nvidia-smi": f'echo call >> {counter}\nkey=$(printf "%s" "$@")\ncat "{recordings}/nvidia-smi$key.txt"'
        }
    )
    return counter


def test_static_facts_are_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_commands: FakeCommands
) -> None:
    """nvidia-smi runs on the first call only; later calls reuse what it said."""
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(fixture_root("h100-vm")))
    counter = _counting_nvidia_smi(tmp_path, fake_commands)
    first = collect()
    runs_for_first_call = counter.read_text().count("call")
    for _ in range(20):
        assert collect() == first
    assert first["sys.gpu_memory_gb"] == "85.52"
    assert runs_for_first_call >= 2  # the query, and the CUDA version
    assert counter.read_text().count("call") == runs_for_first_call


def test_disk_is_read_on_every_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Free space can change: it follows the working directory on every call."""
    monkeypatch.chdir(tmp_path)
    before = collect()["sys.disk_total_gb"]
    monkeypatch.chdir("/dev/shm" if os.path.isdir("/dev/shm") else "/")
    after = collect()
    assert before == T.gb(shutil.disk_usage(tmp_path).total)
    assert after["sys.disk_total_gb"] == T.gb(shutil.disk_usage(os.getcwd()).total)


def test_exclude_skips_the_collector_entirely(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_commands: FakeCommands
) -> None:
    """Excluding every GPU key means nvidia-smi is never started."""
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(fixture_root("h100-vm")))
    monkeypatch.setenv("MLFLOW_SYSMETRICS_EXCLUDE", "sys.gpu*, sys.cuda_driver")
    counter = _counting_nvidia_smi(tmp_path, fake_commands)
    tags = collect()
    assert not any(key.startswith(("sys.gpu", "sys.cuda")) for key in tags)
    assert tags["sys.cpu"] == "Intel(R) Xeon(R) Processor"
    assert not counter.exists()


def test_host_is_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """sys.host is written only when asked for."""
    import socket

    assert "sys.host" not in collect()
    monkeypatch.setenv("MLFLOW_SYSMETRICS_INCLUDE", "sys.host")
    assert collect()["sys.host"] == socket.gethostname()


def test_a_failing_source_is_one_clause(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that is a folder, a missing file: the fact is left out, the rest stays."""
    root = _copy(tmp_path, "h100-vm")
    (root / "proc" / "meminfo").unlink()
    (root / "proc" / "meminfo").mkdir()  # reading it fails with IsADirectoryError
    (root / "etc" / "os-release").unlink()
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(root))
    tags = collect()
    assert "sys.memory_gb" not in tags
    assert "sys.os" not in tags
    assert tags["sys.cpu"] == "Intel(R) Xeon(R) Processor"


def test_non_utf8_bytes_are_decoded_safely(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bytes that are not UTF-8 in a model name become replacement characters, not errors."""
    root = _copy(tmp_path, "cgroup-v1")
    cpuinfo = root / "proc" / "cpuinfo"
    cpuinfo.write_bytes(cpuinfo.read_bytes().replace(b"E5-2686", b"E5-\xff\xfe86"))
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(root))
    tags = collect()
    assert tags["sys.cpu"] == "Intel(R) Xeon(R) CPU E5-\ufffd\ufffd86 v4 @ 2.30GHz"
    assert "sysmetrics.error" not in tags


def test_a_hanging_file_read_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A /proc file that never answers (a FIFO with no writer) costs the deadline only."""
    root = _copy(tmp_path, "h100-vm")
    (root / "proc" / "cpuinfo").unlink()
    os.mkfifo(root / "proc" / "cpuinfo")
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(root))
    monkeypatch.setenv("MLFLOW_SYSMETRICS_TIMEOUT", "0.3")
    started = time.monotonic()
    tags = collect()
    assert time.monotonic() - started < 0.9
    assert tags["sysmetrics.error"] == "cpu: TimeoutError: no answer in 0.3 s"
    assert tags["sys.memory_gb"] == "135.15"
    assert tags["sys.gpu"] == "NVIDIA H100 80GB HBM3"


def test_a_value_that_cannot_be_true_is_left_out_and_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_commands: FakeCommands
) -> None:
    """An OS name 20,000 characters long is no OS name: left out and named, never clipped and written."""
    root = _copy(tmp_path, "h100-vm")
    (root / "etc" / "os-release").write_text('PRETTY_NAME="' + "x" * 20000 + '"\n')
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(root))
    fake_commands(scripts={"nvidia-smi": "echo " + "e" * 900 + " >&2; exit 1"})
    tags = collect()
    assert "sys.os" not in tags
    assert (
        "os: ValueError: sys.os cannot be true (it is 20000 characters long); left out"
        in tags["sysmetrics.error"]
    )
    assert len(tags["sysmetrics.error"]) <= T.MAX_ERROR_LENGTH
    assert tags["sys.cpu"] == "Intel(R) Xeon(R) Processor"


def test_a_corrupt_cpu_model_is_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model name line megabytes long, or one with control characters, is no CPU model."""
    root = _copy(tmp_path, "h100-vm")
    cpuinfo = root / "proc" / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: " + "Intel" * 4_000_000 + "\n")
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(root))
    tags = collect()
    assert "sys.cpu" not in tags
    assert "cpu: ValueError: /proc/cpuinfo names a CPU model that cannot be true" in tags["sysmetrics.error"]
    assert tags["sys.cpu_cores"] == "1"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Intel\x1b[31m Xeon\n")
    _engine.clear_cache()
    tags = collect()
    assert "sys.cpu" not in tags
    assert "control characters" in tags["sysmetrics.error"]


def test_bad_root_warns_and_reads_this_machine(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A root that does not exist: one warning, and this machine's facts."""
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", "/no/such/root")
    tags = collect()
    collect()
    assert tags["sys.cpu_cores"] == str(os.cpu_count())
    assert caplog.text.count("MLFLOW_SYSMETRICS_ROOT") == 1


def test_fork_child_collects_without_hanging(replay: Replay) -> None:
    """collect() in a parent, fork, collect() in the child (as DataLoader workers do)."""
    replay("h100-vm")
    parent = collect()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave at once
        try:
            os.write(write_end, json.dumps(collect()).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done, _status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.02)
    else:
        os.kill(pid, 9)
        pytest.fail("the forked child hung in collect()")
    with os.fdopen(read_end) as pipe:
        child = json.loads(pipe.read())
    assert {k: v for k, v in child.items() if "disk" not in k} == {
        k: v for k, v in parent.items() if "disk" not in k
    }


def test_fork_while_a_collector_is_stuck(
    monkeypatch: pytest.MonkeyPatch, replay: Replay, fake_commands: FakeCommands
) -> None:
    """A fork while the parent still waits on a wedged tool: the child starts afresh."""
    replay("h100-vm", commands=False)
    fake_commands(scripts={"nvidia-smi": "sleep 5"})
    monkeypatch.setenv("MLFLOW_SYSMETRICS_TIMEOUT", "0.2")
    collect()  # leaves the gpu collector waiting in its thread
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(write_end, json.dumps(collect()).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    _, _ = os.waitpid(pid, 0)
    with os.fdopen(read_end) as pipe:
        child = json.loads(pipe.read())
    assert child["sys.cpu"] == "Intel(R) Xeon(R) Processor"


def test_snapshot_document(replay: Replay) -> None:
    """Schema-versioned, JSON-ready, with every device and each collector's time and errors."""
    replay("dgx-h100-8x")
    document = snapshot()
    assert document["schema"] == 1
    assert json.loads(json.dumps(document)) == document
    assert len(document["gpus"]) == 8
    assert {"index", "name", "uuid", "memory_bytes", "bus_id"} <= set(document["gpus"][0])
    assert {c["name"] for c in document["collectors"]} >= {"cpu", "gpu", "disk"}
    assert all(c["seconds"] is None or c["seconds"] >= 0 for c in document["collectors"])
    assert document["tags"]["sys.gpu_count"] == "8"
