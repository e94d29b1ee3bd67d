"""The collection: caching, the deadline, failure isolation, include/exclude, limits, fork."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mlflow_sysmetrics import _collection, collect, snapshot
from mlflow_sysmetrics import tags as T
from mlflow_sysmetrics._value import gb
from tests.conftest import FakeCommands, Replay, expected, fixture_root, nvidia_smi_stand_in, release_helpers


def _copy(tmp_path: Path, name: str) -> Path:
    root = tmp_path / name
    shutil.copytree(fixture_root(name), root, symlinks=True)
    return root


def _counting_nvidia_smi(tmp_path: Path, fake_commands: FakeCommands) -> Path:
    counter = tmp_path / "nvidia-smi-calls"
    description = fixture_root("h100-vm") / "commands" / "nvidia-smi.json"
    fake_commands(scripts={"nvidia-smi": nvidia_smi_stand_in(description, f"echo call >> {counter}")})
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
    assert first["sys.gpu_memory_gb"] == expected("h100-vm")["sys.gpu_memory_gb"]
    assert runs_for_first_call >= 2  # the query, and the CUDA version
    assert counter.read_text().count("call") == runs_for_first_call


def test_disk_is_read_on_every_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Free space can change: it follows the working directory on every call."""
    other = "/proc"  # a file system of its own, whose statvfs says 0 bytes
    assert shutil.disk_usage(other).total != shutil.disk_usage(tmp_path).total  # two that differ
    monkeypatch.chdir(tmp_path)
    before = collect()["sys.disk_total_gb"]
    monkeypatch.chdir(other)
    after = collect()["sys.disk_total_gb"]
    assert (before, after) == (gb(shutil.disk_usage(tmp_path).total), gb(shutil.disk_usage(other).total))
    assert before != after


def test_a_stuck_network_mount_costs_one_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """A statvfs on a mount that is not local runs under the deadline; stuck, it is not tried again."""
    released = threading.Event()
    calls: list[str] = []

    def hung_statvfs(path: str) -> object:  # a dead NFS server: the call never returns
        calls.append(threading.current_thread().name)
        released.wait(10)
        raise OSError("released")

    monkeypatch.chdir("/proc")  # not a local file system type, so statvfs is guarded
    monkeypatch.setattr(os, "statvfs", hung_statvfs)
    monkeypatch.setenv("MLFLOW_SYSMETRICS_TIMEOUT", "0.3")
    started = time.monotonic()
    tags = collect()
    assert time.monotonic() - started < 5  # the deadline, not the 10 s the call hangs
    assert "disk: TimeoutError: statvfs gave no answer before the deadline" in tags["sysmetrics.error"]
    assert "sys.disk_free_gb" not in tags
    assert tags["sys.cpu_cores"] == str(os.cpu_count())
    again = collect()  # not tried again (the calls below): no second deadline
    assert "statvfs is still stuck from an earlier call" in again["sysmetrics.error"]
    release_helpers(released, "statvfs")
    assert calls == ["mlflow-sysmetrics-statvfs"]


def test_a_local_file_system_is_read_in_the_callers_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A local mount (per mountinfo) answers at once: no helper thread is started for it."""
    real = os.statvfs
    threads: list[str] = []

    def recording(path: str) -> object:
        threads.append(threading.current_thread().name)
        return real(path)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(os, "statvfs", recording)
    assert "sys.disk_free_gb" in collect()
    assert threads == [threading.current_thread().name]


def test_exclude_skips_the_collector_entirely(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_commands: FakeCommands
) -> None:
    """Excluding every GPU key means nvidia-smi is never started."""
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(fixture_root("h100-vm")))
    monkeypatch.setenv("MLFLOW_SYSMETRICS_EXCLUDE", "sys.gpu*, sys.cuda_driver")
    counter = _counting_nvidia_smi(tmp_path, fake_commands)
    tags = collect()
    assert not any(key.startswith(("sys.gpu", "sys.cuda")) for key in tags)
    assert tags["sys.cpu"] == expected("h100-vm")["sys.cpu"]
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
    assert tags["sys.cpu"] == expected("h100-vm")["sys.cpu"]


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
    assert time.monotonic() - started < 5  # the deadline: the read itself never ends
    assert tags["sysmetrics.error"] == "cpu: TimeoutError: no answer in 0.3 s"
    assert tags["sys.memory_gb"] == expected("h100-vm")["sys.memory_gb"]
    assert tags["sys.gpu"] == expected("h100-vm")["sys.gpu"]


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
        "system: ValueError: sys.os cannot be true (it is 20000 characters long); left out"
        in tags["sysmetrics.error"]
    )
    assert len(tags["sysmetrics.error"]) <= T.MAX_ERROR_LENGTH
    assert tags["sys.cpu"] == expected("h100-vm")["sys.cpu"]


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
    _collection.clear_cache()
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


def _in_a_forked_child(work: Callable[[], object]) -> object:
    """``work()``'s JSON-ready result, computed in a forked child that must end within 20 s."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave at once
        try:
            os.write(write_end, json.dumps(work()).encode())
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
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung")
    with os.fdopen(read_end) as pipe:
        return json.loads(pipe.read())


def _lasting(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if "disk" not in k}


def test_fork_child_collects_without_hanging(replay: Replay) -> None:
    """collect() in a parent, fork, collect() in the child (as DataLoader workers do): the same facts."""
    replay("h100-vm")
    parent = collect()
    child = _in_a_forked_child(collect)
    assert child == {**parent, **{k: v for k, v in child.items() if "disk" in k}}
    assert len(_lasting(parent)) >= 15


def test_fork_while_a_collector_is_stuck(
    monkeypatch: pytest.MonkeyPatch, replay: Replay, fake_commands: FakeCommands
) -> None:
    """A fork while the parent still waits on a wedged tool: the child starts afresh, other facts intact."""
    replay("h100-vm", commands=False)
    fake_commands(scripts={"nvidia-smi": "sleep 5"})
    monkeypatch.setenv("MLFLOW_SYSMETRICS_TIMEOUT", "0.2")
    parent = collect()  # leaves the gpu collector waiting in its thread
    child = _in_a_forked_child(collect)
    assert isinstance(child, dict)
    assert "gpu: TimeoutError" in child["sysmetrics.error"]  # tried again in the child, and timed out again
    unchanged = {k: v for k, v in _lasting(parent).items() if k != "sysmetrics.error"}
    assert {k: child[k] for k in unchanged} == unchanged
    assert {"sys.cpu", "sys.memory_gb", "sys.os", "sys.container"} <= set(unchanged)


def test_no_thread_to_be_had_fails_the_guarded_call_and_blocks_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The process can start no more threads: the guarded call fails at once, and is tried again later."""
    from mlflow_sysmetrics._context import Context
    from mlflow_sysmetrics._files import Root

    def refused(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    ran: list[int] = []
    with monkeypatch.context() as patch:
        patch.setattr(threading.Thread, "start", refused)
        with pytest.raises(RuntimeError, match="no thread could be started to run statvfs"):
            Context(Root(), time.monotonic() + 5).within_deadline(lambda: ran.append(1), "statvfs")
    assert ran == []  # not run in the caller's thread, where it could block past the deadline
    assert Context(Root(), time.monotonic() + 5).within_deadline(lambda: 42, "statvfs") == 42


def test_fork_while_a_statvfs_is_stuck(monkeypatch: pytest.MonkeyPatch) -> None:
    """A child forked while the parent's statvfs hangs does not inherit "still stuck": it tries itself."""
    from mlflow_sysmetrics._context import Context
    from mlflow_sysmetrics._files import Root

    released = threading.Event()
    with pytest.raises(TimeoutError):
        Context(Root(), time.monotonic() + 0.1).within_deadline(lambda: released.wait(10), "statvfs")
    with pytest.raises(TimeoutError, match="still stuck"):
        Context(Root(), time.monotonic() + 0.1).within_deadline(lambda: 1, "statvfs")
    child = _in_a_forked_child(
        lambda: Context(Root(), time.monotonic() + 5).within_deadline(lambda: 42, "statvfs")
    )
    release_helpers(released, "statvfs")
    assert child == 42


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
