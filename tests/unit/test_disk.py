"""Disk space: statvfs's figures, as shutil reads them."""

from __future__ import annotations

import shutil
from pathlib import Path

from mlflow_sysmetrics.collectors import disk


def test_disk_space_is_what_shutil_says(tmp_path: Path) -> None:
    """Free and total bytes from statvfs as shutil.disk_usage computes them."""
    usage = shutil.disk_usage(tmp_path)
    free, total = disk.space(str(tmp_path))
    assert total == usage.total
    assert abs(free - usage.free) < 64 * 1024 * 1024  # other processes write meanwhile
