"""``/proc/self/mountinfo``: the mounts this process sees, parsed once for every reader.

Each line (``Documentation/filesystems/proc.rst``, "/proc/<pid>/mountinfo") is: mount id,
parent id, major:minor, root of the mount within its file system, mount point, mount
options, optional fields, a ``-`` separator, file-system type, source, super options. Paths
are written with octal escapes for space, tab, newline and backslash.
"""

from __future__ import annotations

from .._files import Root, once_per_root
from .._value import Record

#: File system types whose reads (and ``statvfs``) answer without asking a server.
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


class Mount(Record):
    """One line of ``/proc/self/mountinfo``: what is mounted where, and how."""

    root: str
    mount_point: str
    fstype: str
    super_options: tuple[str, ...]

    @property
    def cgroup_version(self) -> int | None:
        """1 or 2 for a cgroup hierarchy, ``None`` for any other file system."""
        return {"cgroup": 1, "cgroup2": 2}.get(self.fstype)


def unescape(field: str) -> str:
    """A mountinfo field with its octal escapes (a space is written as backslash 040) undone."""
    if "\\" not in field:
        return field
    out = []
    i = 0
    while i < len(field):
        digits = field[i + 1 : i + 4]
        if field[i] == "\\" and len(digits) == 3 and digits.isascii() and digits.isdigit():
            try:
                out.append(chr(int(digits, 8)))
                i += 4
                continue
            except ValueError:
                pass
        out.append(field[i])
        i += 1
    return "".join(out)


def parse(text: str) -> list[Mount]:
    """Every well-formed line of ``/proc/self/mountinfo``; malformed lines are skipped."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        try:
            dash = fields.index("-")
        except ValueError:
            continue
        if dash < 5 or len(fields) < dash + 2:
            continue
        options = tuple(fields[dash + 3].split(",")) if len(fields) > dash + 3 else ()
        mounts.append(Mount(unescape(fields[3]), unescape(fields[4]), fields[dash + 1], options))
    return mounts


def holding(mounts: list[Mount], path: str) -> Mount | None:
    """The mount that holds ``path``: the longest mount point above it (the last one mounted wins)."""
    best: Mount | None = None
    for mount in mounts:
        point = mount.mount_point
        inside = point in ("/", path) or path.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best.mount_point)):
            best = mount
    return best


@once_per_root
def mounts(root: Root) -> list[Mount]:
    """The mounts of ``/proc/self/mountinfo`` under ``root``, read once per process.

    The CPU, memory and disk collectors all look them up.
    """
    return parse(root.read("/proc/self/mountinfo") or "")


def is_local(root: Root, path: str) -> bool:
    """Whether the file system holding ``path`` (a real path) is a local one (False if unknown)."""
    mount = holding(mounts(root), path)
    return mount is not None and mount.fstype in LOCAL_TYPES
