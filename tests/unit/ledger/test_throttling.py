"""How often the CPU quota held the run back: replayed cgroups whose cpu.stat the tests move.

Three machines: a container that sets its own quota on cgroup v2
(``cgroup-v2-training-container``), a Kubernetes pod whose limit sits on the pod's group
above the container's (``cgroup-v2-nested``), and a Docker container on cgroup v1
(``cgroup-v1``). The figures are shares and sums of the counters, whatever the span's length.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from mlflow_sysmetrics import _files, ledger
from mlflow_sysmetrics import tags as T
from mlflow_sysmetrics.collectors import _cgroup
from tests.conftest import FIXTURES

POD = "sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f3c.slice"


def _machine(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "machine"
    shutil.copytree(FIXTURES / name, root, symlinks=True)
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(root))
    return root


def _add(stat: Path, **grown: int) -> None:
    """Add to the named counters of a flat-keyed cpu.stat, as the scheduler would."""
    lines = []
    for line in stat.read_text().splitlines():
        key, value = line.split(" ", 1)
        lines.append(f"{key} {int(value) + grown.get(key, 0)}")
    stat.write_text("\n".join(lines) + "\n")


def test_a_containers_own_quota_on_cgroup_v2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """cpu.max 200000 100000 on the container: 410 of 1000 periods throttled, 9 min 20 s held."""
    root = _machine("cgroup-v2-training-container", tmp_path, monkeypatch)
    span = ledger.Span()
    _add(root / "sys/fs/cgroup/cpu.stat", nr_periods=1000, nr_throttled=410, throttled_usec=560_000_000)
    counted = span.finish()
    assert (counted.metrics[T.CPU_THROTTLED_PCT], counted.metrics[T.CPU_THROTTLED_S]) == (41.0, 560.0)
    assert "cpu throttling" not in counted.text


def test_a_pods_limit_is_counted_on_the_pods_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The container scope sets no quota (cpu.max max, its counts stay 0): the pod slice's cpu.stat counts.

    ``sys.ledger`` names the pod's group, whose counts are every container's of the pod.
    """
    root = _machine("cgroup-v2-nested", tmp_path, monkeypatch)
    span = ledger.Span()
    _add(root / POD / "cpu.stat", nr_periods=3000, nr_throttled=750, throttled_usec=42_500_000)
    _add(root / POD / "cri-containerd-5d2e.scope/cpu.stat", usage_usec=90_000_000)
    counted = span.finish()
    assert (counted.metrics[T.CPU_THROTTLED_PCT], counted.metrics[T.CPU_THROTTLED_S]) == (25.0, 42.5)
    assert (
        "cpu throttling: of kubepods-burstable-pod0f3c.slice, a group above the run's that sets the quota, "
        "for all its processes" in counted.text
    )


def test_cgroup_v1_throttled_time_is_in_nanoseconds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """cpu.cfs_quota_us 50000 on the container: 50 of 200 periods throttled, throttled_time 3e9 ns is 3 s."""
    root = _machine("cgroup-v1", tmp_path, monkeypatch)
    span = ledger.Span()
    _add(
        root / "sys/fs/cgroup/cpu,cpuacct/cpu.stat",
        nr_periods=200,
        nr_throttled=50,
        throttled_time=3_000_000_000,
    )
    counted = span.finish()
    assert (counted.metrics[T.CPU_THROTTLED_PCT], counted.metrics[T.CPU_THROTTLED_S]) == (25.0, 3.0)


def test_a_span_in_no_period_of_the_quota_was_not_throttled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No period ran during the span (an idle run): none was throttled, 0 % and 0 s (a fact, not a gap)."""
    _machine("cgroup-v2-training-container", tmp_path, monkeypatch)
    counted = ledger.Span().finish()
    assert (counted.metrics[T.CPU_THROTTLED_PCT], counted.metrics[T.CPU_THROTTLED_S]) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("fixture", "quota_file", "none"),
    [
        ("cgroup-v2-training-container", "sys/fs/cgroup/cpu.max", "max 100000\n"),
        ("cgroup-v1", "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n"),
    ],
    ids=["v2", "v1"],
)
def test_no_quota_anywhere_is_said_not_written_as_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fixture: str, quota_file: str, none: str
) -> None:
    """No group on the way up sets a quota: the run could not be throttled; absent, and said so."""
    root = _machine(fixture, tmp_path, monkeypatch)
    (root / quota_file).write_text(none)
    counted = ledger.Span().finish()
    assert T.CPU_THROTTLED_PCT not in counted.metrics
    assert T.CPU_THROTTLED_S not in counted.metrics
    assert "cpu throttling: no CPU quota on this cgroup" in counted.text


def test_counters_that_went_backwards_are_not_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The group was made anew during the span (its counters start again from 0): absent with the reason."""
    root = _machine("cgroup-v2-training-container", tmp_path, monkeypatch)
    span = ledger.Span()
    (root / "sys/fs/cgroup/cpu.stat").write_text(
        "usage_usec 5000\nnr_periods 3\nnr_throttled 1\nthrottled_usec 2000\n"
    )
    counted = span.finish()
    assert T.CPU_THROTTLED_PCT not in counted.metrics
    assert "cpu throttling: the cgroup's cpu.stat counters went backwards" in counted.text


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="cgroups are Linux's")
def test_this_machines_own_cgroup() -> None:
    """The cpu.stat of this machine read for real: a share within 0-100 and a time held, or no quota said so.

    Whether the process has a quota is what the collection's ``sys.cpu_available`` reads.
    """
    counted = ledger.Span().finish()
    if _cgroup.cpu_quota(_files.Root("/")) is None:
        assert "cpu throttling: no CPU quota on this cgroup" in counted.text
    else:
        assert 0 <= counted.metrics[T.CPU_THROTTLED_PCT] <= 100
        assert counted.metrics[T.CPU_THROTTLED_S] >= 0
