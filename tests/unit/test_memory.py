"""Memory: /proc/meminfo's total."""

from __future__ import annotations

from mlflow_sysmetrics.collectors import memory


def test_meminfo_total() -> None:
    """MemTotal in kB to bytes."""
    assert memory.meminfo_total("MemFree: 1 kB\nMemTotal:  131981020 kB\n") == 135148564480
    assert memory.meminfo_total("MemTotal: lots\n") is None
