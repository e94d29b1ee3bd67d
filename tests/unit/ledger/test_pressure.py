"""Stalls: PSI files of replayed cgroups and hosts whose totals the tests move, and this machine's own.

``cgroup-v2-training-container`` has the group's own PSI files and the host's, and holds the
container's init (``tini``) beside the trainer, whose place this process takes; ``cgroup-v1``
has only the host's ``/proc/pressure``. A kernel with PSI off is replayed both ways it shows:
the files missing, or there and failing to be read with ``EOPNOTSUPP``.
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from mlflow_sysmetrics import ledger
from mlflow_sysmetrics import tags as T
from mlflow_sysmetrics._files import Root
from mlflow_sysmetrics.ledger._meter import Book
from mlflow_sysmetrics.ledger.pressure import PressureMeter
from tests.conftest import FIXTURES

KEYS = (T.STALL_CPU_PCT, T.STALL_IO_PCT, T.STALL_MEMORY_PCT)
TRAINER = 7  # the trainer's process id in the replayed container


def _machine(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "machine"
    shutil.copytree(FIXTURES / name, root, symlinks=True)
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(root))
    return root


def _container(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, init: bool) -> Path:
    """The training container with this process in the trainer's place; ``init``: tini (process 1) stays in the group."""
    root = _machine("cgroup-v2-training-container", tmp_path, monkeypatch)
    pid = os.getpid()
    (root / f"proc/{TRAINER}/task/{TRAINER}").rename(root / f"proc/{TRAINER}/task/{pid}")
    (root / f"proc/{TRAINER}").rename(root / f"proc/{pid}")
    procs = root / "sys/fs/cgroup/cgroup.procs"
    members = [str(pid) if p == str(TRAINER) else p for p in procs.read_text().split()]
    procs.write_text("".join(f"{p}\n" for p in members if init or p != "1"))
    return root


def _stall(path: Path, microseconds: int) -> None:
    """Add to the ``some`` line's total of a PSI file (the ``full`` line moves less, and is not read)."""
    lines = path.read_text().splitlines()
    head, total = lines[0].rsplit("total=", 1)
    lines[0] = f"{head}total={int(total) + microseconds}"
    path.write_text("\n".join(lines) + "\n")


def _figures(root: Path, move: dict[str, int], seconds: float) -> tuple[dict[str, float], str]:
    meter = PressureMeter(Root(str(root)))
    first = meter.read()
    for path, microseconds in move.items():
        _stall(root / path, microseconds)
    book = Book()
    meter.figures(first, meter.read(), seconds, book)
    return book.metrics, book.text()


def test_the_cgroups_own_stalls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over 10 s the group's tasks waited 2.5 s for CPU, 0.4 s for I/O, none for memory: 25, 4 and 0 %.

    The host's /proc/pressure moves far more, and is not read while the group has its own; the
    run (the trainer, its workers and their child) is alone in the group: nothing to say.
    """
    root = _container(tmp_path, monkeypatch, init=False)
    group = "sys/fs/cgroup"
    move = {
        f"{group}/cpu.pressure": 2_500_000,
        f"{group}/io.pressure": 400_000,
        "proc/pressure/cpu": 9_000_000,
    }
    metrics, text = _figures(root, move, 10.0)
    assert metrics == {T.STALL_CPU_PCT: 25.0, T.STALL_IO_PCT: 4.0, T.STALL_MEMORY_PCT: 0.0}
    assert text == "everything counted"


def test_a_cgroup_that_holds_other_processes_is_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tini shares the group with the run: the group's stalls count its tasks too, and sys.ledger says so once."""
    root = _container(tmp_path, monkeypatch, init=True)
    metrics, text = _figures(root, {"sys/fs/cgroup/io.pressure": 3_000_000}, 10.0)
    assert metrics == {T.STALL_CPU_PCT: 0.0, T.STALL_IO_PCT: 30.0, T.STALL_MEMORY_PCT: 0.0}
    assert text == "stalls: the cgroup's, other processes in it included"


def test_a_process_that_joins_the_group_during_the_run_is_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run is alone in the group at the start and a stranger (process 4242) joins it: the note, at the end."""
    root = _container(tmp_path, monkeypatch, init=False)
    meter = PressureMeter(Root(str(root)))
    first = meter.read()
    procs = root / "sys/fs/cgroup/cgroup.procs"
    procs.write_text(procs.read_text() + "4242\n")
    book = Book()
    meter.figures(first, meter.read(), 10.0, book)
    assert book.text() == T.LEDGER_CGROUP_STALLS


def test_the_hosts_stalls_are_said_to_be_the_hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cgroup v1 machine has no PSI files of its groups: /proc/pressure's, every task of the host's, and sys.ledger says so."""
    root = _machine("cgroup-v1", tmp_path, monkeypatch)
    move = {"proc/pressure/cpu": 1_000_000, "proc/pressure/io": 3_000_000, "proc/pressure/memory": 500_000}
    metrics, text = _figures(root, move, 20.0)
    assert metrics == {T.STALL_CPU_PCT: 5.0, T.STALL_IO_PCT: 15.0, T.STALL_MEMORY_PCT: 2.5}
    assert text == "stalls: the whole host's (/proc/pressure), not the run's cgroup's"


def test_psi_off_with_the_files_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither the group's nor the host's PSI files (psi=0 on a kernel that then makes none): absent, said so."""
    root = _machine("cgroup-v2-training-container", tmp_path, monkeypatch)
    shutil.rmtree(root / "proc/pressure")
    for name in ("cpu", "io", "memory"):
        (root / f"sys/fs/cgroup/{name}.pressure").unlink()
    counted = ledger.Span().finish()
    assert [key for key in KEYS if key in counted.metrics] == []
    assert (
        "stalls: no pressure stall information (PSI is off, or the kernel is older than 4.20)" in counted.text
    )


def test_psi_off_with_files_that_refuse_to_be_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The files are there, and reading them fails with EOPNOTSUPP (a kernel booted with psi=0): absent, said so."""
    _machine("cgroup-v2-training-container", tmp_path, monkeypatch)
    real_open, real_read = os.open, os.read
    refusing: set[int] = set()

    def psi_off_open(path: Any, *args: Any, **kwargs: Any) -> int:
        handle = real_open(path, *args, **kwargs)  # the open itself succeeds, as the kernel's does
        if str(path).endswith(".pressure") or "/proc/pressure/" in str(path):
            refusing.add(handle)
        else:
            refusing.discard(handle)
        return handle

    def psi_off_read(handle: int, size: int) -> bytes:
        if handle in refusing:
            raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))
        return real_read(handle, size)

    monkeypatch.setattr(os, "open", psi_off_open)
    monkeypatch.setattr(os, "read", psi_off_read)
    counted = ledger.Span().finish()
    monkeypatch.undo()
    assert [key for key in KEYS if key in counted.metrics] == []
    assert "stalls: PSI is off in this kernel (booted with psi=0" in counted.text


def test_a_total_that_went_backwards_is_not_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The I/O total falls (not a counter of this group any more): that one absent with the reason, the others counted."""
    root = _container(tmp_path, monkeypatch, init=False)
    metrics, text = _figures(root, {"sys/fs/cgroup/io.pressure": -1_000_000}, 10.0)
    assert metrics == {T.STALL_CPU_PCT: 0.0, T.STALL_MEMORY_PCT: 0.0}
    assert text == "io stalls: the PSI counter went backwards"


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or not Path("/proc/pressure/cpu").exists(),
    reason="this machine's kernel keeps no PSI",
)
def test_this_machines_own_stalls() -> None:
    """The PSI files of this machine read for real over a span that does some work: each share within 0-100."""
    span = ledger.Span()
    sum(range(3_000_000))
    counted = span.finish()
    for key in KEYS:
        assert 0 <= counted.metrics[key] <= 100
