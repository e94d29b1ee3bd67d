"""How busy the run's cores were: replayed process trees and cgroups, and real processes burning CPU.

The replayed trees are ``cgroup-v2-training-container`` (a trainer whose DataLoader workers
and their ``ffmpeg`` child were started before the run) and ``cgroup-v1``; the tests put
their own process in the trainer's place and move the workers' counters as the kernel would.
This process's own time (``getrusage``) is always read for real. The live tests burn CPU in
this process and in children that say how much CPU they used, and read this machine's
``/proc`` for real.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import pytest

from mlflow_sysmetrics import collect, ledger
from mlflow_sysmetrics import tags as T
from mlflow_sysmetrics._files import Root
from mlflow_sysmetrics.ledger._meter import Book
from mlflow_sysmetrics.ledger.cpu_time import CpuTimeMeter, Times, available_cores
from tests.conftest import FIXTURES

TRAINER = 7  # the trainer's process id in the replayed container
TICKS = os.sysconf("SC_CLK_TCK")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")


def _container(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fixture: str = "cgroup-v2-training-container"
) -> Path:
    """A copy of ``fixture`` with this process in the trainer's place; the replay root."""
    root = tmp_path / "machine"
    shutil.copytree(FIXTURES / fixture, root, symlinks=True)
    pid = os.getpid()
    if (root / f"proc/{TRAINER}").exists():
        (root / f"proc/{TRAINER}/task/{TRAINER}").rename(root / f"proc/{TRAINER}/task/{pid}")
        (root / f"proc/{TRAINER}").rename(root / f"proc/{pid}")
    procs = root / "sys/fs/cgroup/cgroup.procs"
    if procs.exists():
        lines = procs.read_text().split()
        procs.write_text("".join(f"{pid if p == str(TRAINER) else p}\n" for p in lines))
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(root))
    return root


def _grow(stat: Path, utime: int = 0, stime: int = 0, cutime: int = 0, cstime: int = 0) -> None:
    """Add clock ticks to fields 14-17 of a /proc/<pid>/stat (the name in parentheses may hold spaces)."""
    text = stat.read_text()
    head, tail = text[: text.rfind(")") + 1], text[text.rfind(")") + 1 :].split()
    for index, ticks in zip(range(11, 15), (utime, stime, cutime, cstime), strict=True):
        tail[index] = str(int(tail[index]) + ticks)
    stat.write_text(f"{head} {' '.join(tail)}\n")


def _ticks(stat: Path) -> tuple[int, int]:
    """The utime and stime of a /proc/<pid>/stat."""
    tail = stat.read_text().rsplit(")", 1)[1].split()
    return int(tail[11]), int(tail[12])


def _figure(meter: CpuTimeMeter, first: Times, last: Times, seconds: float) -> tuple[float | None, str]:
    book = Book()
    meter.figures(first, last, seconds, book)
    return book.metrics.get(T.CPU_UTIL_PCT), book.text()


def _own(first: Times, last: Times) -> float:
    """The CPU seconds of this process and its ended children between two readings (read for real)."""
    return last.own - first.own + last.children - first.children


@linux_only
def test_live_workers_count_only_what_they_grew(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers 58, 59 and ffmpeg 70 grow 320, 305 and 110 ticks: 7.35 s over 10 s of 2 cores.

    They held 48150, 46900 and 1500 ticks at the start (an earlier epoch): not the run's.
    tini (process 1) shares the cgroup, so the group's count is not read.
    """
    root = _container(tmp_path, monkeypatch)
    meter = CpuTimeMeter(Root(str(root)))
    first = meter.read()
    _grow(root / "proc/58/stat", utime=300, stime=20)
    _grow(root / "proc/59/stat", utime=290, stime=15)
    _grow(root / "proc/70/stat", utime=100, stime=10)
    last = meter.read()
    pct, text = _figure(meter, first, last, 10.0)
    assert pct == pytest.approx((7.35 + _own(first, last)) / (10 * 2) * 100, abs=1e-3)
    assert "cpu use" not in text


@linux_only
def test_a_grandchild_reaped_during_the_run_counts_its_growth_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ffmpeg child (70) grows 110 ticks and ends; worker 58 waits for it: its whole life moves into 58's cutime.

    Its 1500 ticks from before the run are then in 58's cutime and cstime, and were in 70's
    own count at the start: counted once, the run's figure is the same 7.35 s as when it lives.
    """
    root = _container(tmp_path, monkeypatch)
    meter = CpuTimeMeter(Root(str(root)))
    first = meter.read()
    utime, stime = _ticks(root / "proc/70/stat")
    (root / "proc/58/task/58/children").write_text("")
    shutil.rmtree(root / "proc/70")
    _grow(root / "proc/58/stat", utime=300, stime=20, cutime=utime + 100, cstime=stime + 10)
    _grow(root / "proc/59/stat", utime=290, stime=15)
    last = meter.read()
    pct, _ = _figure(meter, first, last, 10.0)
    assert pct == pytest.approx((7.35 + _own(first, last)) / (10 * 2) * 100, abs=1e-3)


@linux_only
def test_a_process_that_left_the_tree_makes_the_figure_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker 58 ends (a zombie, its times kept); its ffmpeg child, still running, is re-parented to tini.

    ffmpeg's 1500 ticks were counted at the start and are no longer in the run's tree at the
    end: the tree's time fell, and the figure is absent with the reason, never negative.
    """
    root = _container(tmp_path, monkeypatch)
    meter = CpuTimeMeter(Root(str(root)))
    first = meter.read()
    stat = root / "proc/58/stat"
    stat.write_text(stat.read_text().replace(") S 7 ", ") Z 7 ", 1))
    (root / "proc/58/task/58/children").write_text("")
    last = meter.read()
    pct, text = _figure(meter, first, last, 10.0)
    assert pct is None
    assert "cpu use: the run's processes' CPU time fell between the readings" in text


def test_a_cgroup_the_run_is_alone_in_gives_its_own_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without tini the trainer is alone with its workers: cpu.stat usage_usec grows 6 s, 30 % of 2 cores for 10 s.

    The group's count is exact: the workers' ticks (which do not move here) are not read.
    """
    root = _container(tmp_path, monkeypatch)
    procs = root / "sys/fs/cgroup/cgroup.procs"
    procs.write_text(procs.read_text().replace("1\n", "", 1))
    meter = CpuTimeMeter(Root(str(root)))
    first = meter.read()
    stat = root / "sys/fs/cgroup/cpu.stat"
    stat.write_text(stat.read_text().replace("usage_usec 9876500000", "usage_usec 9882500000"))
    last = meter.read()
    assert _figure(meter, first, last, 10.0) == (
        30.0,
        "cpu use: the cgroup's own count (the run is alone in it)",
    )


def test_cgroup_v1_cpuacct_usage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A v1 container alone in its group: cpuacct.usage grows 4e9 ns, 4 s of a 0.5-core quota for 10 s: 80 %."""
    root = _container(tmp_path, monkeypatch, "cgroup-v1")
    (root / "sys/fs/cgroup/cpu,cpuacct/cgroup.procs").write_text(f"{os.getpid()}\n")
    meter = CpuTimeMeter(Root(str(root)))
    first = meter.read()
    (root / "sys/fs/cgroup/cpu,cpuacct/cpuacct.usage").write_text("1238567890123\n")
    last = meter.read()
    assert _figure(meter, first, last, 10.0)[0] == 80.0


def test_a_v1_group_with_a_child_group_is_not_the_runs_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The v1 group has a child group (a sub-folder, whose processes its cpuacct.usage counts too): not read."""
    root = _container(tmp_path, monkeypatch, "cgroup-v1")
    group = root / "sys/fs/cgroup/cpu,cpuacct"
    (group / "cgroup.procs").write_text(f"{os.getpid()}\n")
    (group / "sidecar").mkdir()
    meter = CpuTimeMeter(Root(str(root)))
    first = meter.read()
    (group / "cpuacct.usage").write_text("1238567890123\n")
    last = meter.read()
    pct, text = _figure(meter, first, last, 10.0)
    assert pct is not None
    assert pct < 80.0
    assert "cgroup" not in text


@linux_only
def test_under_run_the_programs_time_is_counted_not_this_processs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``mlflow-sysmetrics run``: this process's own time is left out; the workers' 7.35 s and ended children's count."""
    root = _container(tmp_path, monkeypatch)
    meter = CpuTimeMeter(Root(str(root)))
    first = meter.read()
    meter.follow_program(58)
    sum(range(2_000_000))  # this process's own work, which is not the program's
    _grow(root / "proc/58/stat", utime=300, stime=20)
    _grow(root / "proc/59/stat", utime=290, stime=15)
    _grow(root / "proc/70/stat", utime=100, stime=10)
    last = meter.read()
    pct, _ = _figure(meter, first, last, 10.0)
    assert pct == pytest.approx((7.35 + last.children - first.children) / (10 * 2) * 100, abs=1e-3)


def test_under_run_the_cgroups_count_less_this_processs_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``mlflow-sysmetrics run`` alone in its group: the group's 6 s less this process's own time."""
    root = _container(tmp_path, monkeypatch)
    procs = root / "sys/fs/cgroup/cgroup.procs"
    procs.write_text(procs.read_text().replace("1\n", "", 1))
    meter = CpuTimeMeter(Root(str(root)))
    first = meter.read()
    meter.follow_program(58)
    sum(range(2_000_000))
    stat = root / "sys/fs/cgroup/cpu.stat"
    stat.write_text(stat.read_text().replace("usage_usec 9876500000", "usage_usec 9882500000"))
    last = meter.read()
    pct, _ = _figure(meter, first, last, 10.0)
    assert pct == pytest.approx((6.0 - (last.own - first.own)) / (10 * 2) * 100, abs=1e-3)


@pytest.mark.parametrize(
    ("fixture", "cores"),
    [("cgroup-v2-training-container", 2.0), ("cgroup-v2-nested", 2.5), ("cgroup-v1", 0.5)],
)
def test_the_cores_are_the_collections_cpu_available(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fixture: str, cores: float
) -> None:
    """The figure's cores are ``sys.cpu_available`` as the collection writes it (the fixture's quota)."""
    root = _container(tmp_path, monkeypatch, fixture)
    assert (cores, str(cores).removesuffix(".0")) == (
        available_cores(Root(str(root))),
        collect()[T.CPU_AVAILABLE],
    )


# A child that burns CPU, says how much it used, waits for a line, burns again, says again,
# and waits for another line before it ends.
BURNER = r"""
import resource, sys
def used():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
def burn(seconds):
    end = used() + seconds
    while used() < end:
        pass
burn(float(sys.argv[1]))
print(used(), flush=True)
sys.stdin.readline()
burn(float(sys.argv[2]))
print(used(), flush=True)
sys.stdin.readline()
"""


def _burner(before: float, during: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", BURNER, str(before), str(during)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _say(child: subprocess.Popen[str]) -> float:
    """Tell the child to go on; the CPU seconds it says it used when it next stops."""
    assert child.stdin is not None
    assert child.stdout is not None
    child.stdin.write("go\n")
    child.stdin.flush()
    return float(child.stdout.readline())


def _self_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _burn(seconds: float) -> None:
    end = _self_seconds() + seconds
    while _self_seconds() < end:
        pass


def _live_cores() -> float:
    cores = available_cores(Root("/"))
    assert cores is not None
    return cores


@linux_only
def test_a_span_over_real_work_is_plausible() -> None:
    """A span over 0.3 s of CPU burnt by this process and 0.3 s by a child: a share above 0, at most 100 % of the cores."""
    span = ledger.Span()
    child = _burner(0.3, 0.0)
    _burn(0.3)
    child.communicate("go\ngo\n")
    counted = span.finish()
    assert 0 < counted.metrics[T.CPU_UTIL_PCT] <= 101


class ChildSpan(NamedTuple):
    """A span over a live child (:func:`_span_over_a_live_child`): what it used, and what was counted."""

    #: the child's CPU seconds at the span's start, and when it stopped in it, as it says
    before: float
    after: float
    #: this process's own CPU seconds during the span
    outer: float
    first: Times
    last: Times
    #: the CPU seconds the meter's figure stands for (its share of the live cores over the span)
    used: float


def _span_over_a_live_child(reap: bool) -> ChildSpan:
    """A span in which a child that burned 0.3 s before it burns 0.3 s more.

    With ``reap`` the child ends, and is waited for, before the span's last reading; else it
    is still alive at both ends.
    """
    meter = CpuTimeMeter(Root("/"))
    child = _burner(0.3, 0.3)
    assert child.stdout is not None
    before = float(child.stdout.readline())
    outer = _self_seconds()
    first = meter.read()
    start = time.monotonic()
    after = _say(child)
    if reap:
        child.communicate("go\n")
    last = meter.read()
    seconds = time.monotonic() - start
    outer = _self_seconds() - outer
    if not reap:
        child.communicate("go\n")
    pct, _ = _figure(meter, first, last, seconds)
    assert pct is not None
    return ChildSpan(before, after, outer, first, last, pct / 100 * seconds * _live_cores())


@linux_only
def test_a_live_child_alive_at_both_ends_counts_only_what_it_grew() -> None:
    """A child that burned 0.3 s before the span and 0.3 s during it, alive at the end: about 0.3 s, not 0.6.

    Read from /proc/<pid>/stat in clock ticks, truncated: within two ticks of what it says it used.
    """
    span = _span_over_a_live_child(reap=False)
    grew = span.after - span.before
    assert grew - 2 / TICKS - 1e-3 <= span.used <= grew + span.outer + 2 / TICKS + 1e-3


@linux_only
def test_a_live_child_reaped_before_the_end_is_counted_once() -> None:
    """A child alive at the start (0.3 s already used) burns 0.3 s more and ends, waited for: about 0.3 s, not 0.6.

    At the end its whole life is in RUSAGE_CHILDREN (to the microsecond); what it had at the
    start was its own count then, and is taken off.
    """
    span = _span_over_a_live_child(reap=True)
    whole = span.last.children - span.first.children  # the child's whole life, from its wait
    grew = whole - span.before
    assert whole > 0.6
    assert grew - 2 / TICKS - 1e-3 <= span.used <= grew + span.outer + 2 / TICKS + 1e-3
