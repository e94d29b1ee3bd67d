"""Disk: free and total space of the file system holding the working directory.

Read on every call (free space changes). ``statvfs`` on a local file system answers in
microseconds; on a network one (NFS, SMB, Lustre, FUSE ...) a dead server can block it
indefinitely, so there it runs under the deadline in a helper thread. The kind of file
system is looked up once per working directory in ``/proc/self/mountinfo``; where that
cannot be read (macOS, Windows) every read is guarded.
"""

from __future__ import annotations

import os

from .. import _platform, _state
from .. import tags as T
from .._context import Context
from .._files import Root
from .._value import gb
from . import _mountinfo

# shutil is imported on Windows only (os.statvfs answers elsewhere).

_is_local: dict[str, bool] = _state.memo()


def is_local(path: str) -> bool:
    """Whether ``path`` is on a local file system (remembered per path)."""
    known = _is_local.get(path)
    if known is None:
        local = _platform.LINUX and _mountinfo.is_local(Root(), os.path.realpath(path))
        known = _is_local[path] = local
    return known


def collect(ctx: Context) -> dict[str, str]:
    """``sys.disk_free_gb`` and ``sys.disk_total_gb`` of the working directory."""
    cwd = os.getcwd()
    if is_local(cwd):
        free, total = space(cwd)
    else:
        free, total = ctx.within_deadline(lambda: space(cwd), "statvfs")
    return {T.DISK_FREE_GB: gb(free), T.DISK_TOTAL_GB: gb(total)}


def space(path: str) -> tuple[int, int]:
    """Bytes free to an unprivileged user, and in all, on the file system holding ``path``.

    What :func:`shutil.disk_usage` answers (``f_bavail`` and ``f_blocks`` in fragment
    units, from ``statvfs``), without importing ``shutil`` where ``os.statvfs`` exists.
    """
    if hasattr(os, "statvfs"):
        st = os.statvfs(path)
        return st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
    import shutil

    usage = shutil.disk_usage(path)
    return usage.free, usage.total
