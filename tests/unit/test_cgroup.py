"""Cgroups: where this process's cgroup is mounted, and its CPU and memory limits."""

from __future__ import annotations

from mlflow_sysmetrics._files import Root
from mlflow_sysmetrics.collectors import _cgroup


def test_mountinfo_escapes_and_hybrid_hosts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Octal escapes in mount points; a hybrid host's v2 mount that lacks the cpu controller."""
    mounts = _cgroup.parse_mountinfo("40 31 0:37 / /sys/fs/cgroup/my\\040dir rw - cgroup2 cgroup2 rw\n")
    assert mounts[0].mount_point == "/sys/fs/cgroup/my dir"

    for name, text in {
        "proc/self/cgroup": "1:cpu:/\n0::/\n",
        "proc/self/mountinfo": (
            "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"
            "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
        ),
        "sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n",
        "sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
        "sys/fs/cgroup/unified/cgroup.controllers": "hugetlb\n",
        "sys/fs/cgroup/unified/memory.max": "1000\n",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    root = Root(str(tmp_path))
    assert _cgroup.cpu_quota(root) is None  # -1: no quota
    assert _cgroup.memory_limit(root) is None  # the v2 mount does not hold memory here
