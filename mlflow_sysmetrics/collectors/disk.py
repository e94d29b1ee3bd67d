"""Disk: free and total space of the file system holding the working directory.

Read on every call (free space changes). ``statvfs`` on a local file system answers in
microseconds; on a network one (NFS, SMB, Lustre, FUSE ...) a dead server can block it
indefinitely, so there it runs under the deadline in a helper thread. The kind of file
system is looked up once per working directory in ``/proc/self/mountinfo``; where that
cannot be read (macOS, Windows) every read is guarded.
"""

from __future__ import annotations

import os
import shutil

from .. import _platform, _state
from .. import tags as T
from .._context import Context
from .._files import Root
from . import _mountinfo

#: File system types whose ``statvfs`` answers without asking a server.
LOCAL_TYPES = frozenset(
    {
        "ext2",
        "ext3",
        "ext4",
        "xfs",
        "btrfs",
        "zfs",
        "f2fs",
        "overlay",
        "tmpfs",
        "ramfs",
        "devtmpfs",
        "squashfs",
        "vfat",
        "exfat",
        "ntfs",
        "ntfs3",
        "bcachefs",
        "jfs",
        "reiserfs",
    }
)

_is_local: dict[str, bool] = {}
_state.register(reset=_is_local.clear)


def mount_type(mountinfo: str, path: str) -> str | None:
    """File system type of the mount holding ``path`` (the longest mount point above it)."""
    mount = _mountinfo.holding(_mountinfo.parse(mountinfo), path)
    return mount.fstype if mount else None


def is_local(path: str) -> bool:
    """Whether ``path`` is on a local file system (remembered per path)."""
    known = _is_local.get(path)
    if known is None:
        kind = None
        if _platform.LINUX:
            kind = mount_type(Root().read("/proc/self/mountinfo") or "", os.path.realpath(path))
        known = _is_local[path] = kind in LOCAL_TYPES
    return known


def collect(ctx: Context) -> dict[str, str]:
    """``sys.disk_free_gb`` and ``sys.disk_total_gb`` of the working directory."""
    cwd = os.getcwd()
    if is_local(cwd):
        usage = shutil.disk_usage(cwd)
    else:
        usage = ctx.within_deadline(lambda: shutil.disk_usage(cwd), "statvfs")
    return {T.DISK_FREE_GB: T.gb(usage.free), T.DISK_TOTAL_GB: T.gb(usage.total)}
