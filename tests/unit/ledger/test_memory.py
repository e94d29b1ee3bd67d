"""The run's peak resident memory: real processes that touch what they claim, and replayed cgroups.

``getrusage`` is read for real (fresh interpreters, whose peaks are their own); the cgroup's
``memory.peak`` comes from the replayed container ``cgroup-v2-memory-peak``, whose counter
the tests move as the kernel would.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mlflow_sysmetrics import ledger
from tests.conftest import FIXTURES
from tests.fresh import fresh_python

TOUCH = "b = bytearray({size}); b[::4096] = b'x' * len(b[::4096])"

CHILD = """
import json, subprocess, sys
from mlflow_sysmetrics import ledger
{before}
span = ledger.start()
subprocess.run([sys.executable, "-c", {child!r}], check=True)
counted = span.finish()
print(json.dumps([counted.metrics, counted.text]))
"""


def test_a_childs_memory_peak() -> None:
    """A small process's child that touches 600 MB: the span's memory peak is at least 0.6 GB.

    In a fresh process: getrusage's peak of children is the largest child ever, so a child
    counts only above the children the process had before the span.
    """
    metrics, _ = fresh_python(CHILD.format(before="", child=TOUCH.format(size=600_000_000))).value
    assert metrics["sys.memory_peak_gb"] >= 0.6


def test_a_child_below_the_processs_own_peak_is_not_claimed() -> None:
    """A process that reached 400 MB before the span runs a child that touches 50 MB.

    The child's mark starts at the 400 MB of the process it was spawned from (execve keeps
    the old address space's high-water mark, subprocess spawns with vfork): the child's
    peak cannot be told from it, and neither figure is the span's, so none is written.
    """
    before = TOUCH.format(size=400_000_000) + "; del b"
    metrics, text = fresh_python(CHILD.format(before=before, child=TOUCH.format(size=50_000_000))).value
    assert "sys.memory_peak_gb" not in metrics
    assert "memory peak: a child's peak is not above this process's own" in text
    assert "cannot be told (an exec'd child starts at its parent's mark)" in text


def test_the_mark_of_what_this_process_was_execd_from_is_not_its_own() -> None:
    """A process exec'd from one that had reached 700 MB (a test runner, a shell) runs a 600 MB child.

    Its ``ru_maxrss`` starts at 700 MB (execve keeps the old address space's mark), but its own
    address space never held that much: the child's 600 MB are above this process's own
    peak, so they are the span's.
    """
    span = CHILD.format(before="", child=TOUCH.format(size=600_000_000))
    execs = (
        "import os, sys\n" + TOUCH.format(size=700_000_000) + "\n"
        f"os.execv(sys.executable, [sys.executable, '-c', {span!r}])"
    )
    metrics, text = fresh_python(execs).value
    assert metrics["sys.memory_peak_gb"] >= 0.6, text
    assert metrics["sys.memory_peak_gb"] < 0.7


def test_a_peak_reached_before_the_span_is_not_the_spans() -> None:
    """No process or child grew past its earlier peak during the span: named, not written."""
    code = (
        "import json\nfrom mlflow_sysmetrics import ledger\n" + TOUCH.format(size=100_000_000) + "; del b\n"
    )
    code += "counted = ledger.start().finish()\nprint(json.dumps([counted.metrics, counted.text]))"
    metrics, text = fresh_python(code).value
    assert "sys.memory_peak_gb" not in metrics
    assert "memory peak: not above the process's peak before the run began" in text


def _container(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "machine"
    shutil.copytree(FIXTURES / "cgroup-v2-memory-peak", root, symlinks=True)
    cgroup = root / "sys/fs/cgroup"
    (cgroup / "cgroup.procs").write_text(f"{os.getpid()}\n")
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(root))
    return cgroup


def test_a_cgroup_peak_from_before_the_span_is_not_the_spans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """memory.peak was 8 GB before the span and never grew: it is not the span's peak."""
    _container(tmp_path, monkeypatch)
    counted = ledger.Span().finish()
    assert counted.metrics.get("sys.memory_peak_gb", 0) < 8
    assert "memory.peak" not in counted.text


def test_a_cgroup_peak_that_rose_during_the_span(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """memory.peak rose from 8 to 9.5 GB during the span: 9.5 GB, said to be the cgroup's (cache included)."""
    cgroup = _container(tmp_path, monkeypatch)
    span = ledger.Span()
    (cgroup / "memory.peak").write_text("9500000000\n")
    counted = span.finish()
    assert counted.metrics["sys.memory_peak_gb"] == 9.5
    assert "memory peak: the cgroup's memory.peak (page cache included)" in counted.text


@pytest.mark.parametrize(
    ("file", "content"),
    [("cgroup.stat", "nr_descendants 1\nnr_dying_descendants 0\n"), ("cgroup.procs", "{pid}\n1\n")],
    ids=["a child group", "another process"],
)
def test_a_cgroup_that_holds_more_than_the_run_is_not_its_peak(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file: str, content: str
) -> None:
    """A child group, or a process that is neither this one nor its descendant: memory.peak is not read."""
    cgroup = _container(tmp_path, monkeypatch)
    (cgroup / file).write_text(content.format(pid=os.getpid()))
    span = ledger.Span()
    (cgroup / "memory.peak").write_text("9500000000\n")
    counted = span.finish()
    assert counted.metrics.get("sys.memory_peak_gb", 0) < 9
    assert "memory.peak" not in counted.text
