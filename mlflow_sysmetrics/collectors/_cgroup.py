"""Linux control groups: where this process's cgroup is, and the CPU and memory limits on it.

The cgroup is found as the kernel describes it: ``/proc/self/cgroup`` gives the path inside
each hierarchy, ``/proc/self/mountinfo`` where that hierarchy is mounted and which part of it
the mount shows (a container with its own cgroup namespace sees ``0::/`` and a mount of its
own subtree; a job scheduler's process sees a nested path). Limits are taken as the
smallest along the path up to the mount, since a parent's limit binds its children.
v1 controllers win over a v2 hierarchy that does not hold them (hybrid hosts).
"""

from __future__ import annotations

import posixpath

from .._files import Root, once_per_root
from .._value import Record
from . import _mountinfo
from ._mountinfo import Mount


class Membership(Record):
    """One line of ``/proc/self/cgroup``: the controllers of a hierarchy, and the path in it."""

    controllers: tuple[str, ...]
    path: str


def parse_proc_cgroup(text: str) -> list[Membership]:
    """Lines of ``/proc/self/cgroup`` (``ID:controllers:path``); bad lines are skipped."""
    found = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3 or not parts[2].startswith("/"):
            continue
        controllers = tuple(c for c in parts[1].split(",") if c)
        found.append(Membership(controllers, parts[2]))
    return found


def parse_mountinfo(text: str) -> list[Mount]:
    """The cgroup and cgroup2 mounts in ``/proc/self/mountinfo``; other lines are skipped."""
    return [m for m in _mountinfo.parse(text) if m.cgroup_version is not None]


@once_per_root
def memberships(root: Root) -> list[Membership]:
    """The lines of ``/proc/self/cgroup`` under ``root``, read once per process."""
    return parse_proc_cgroup(root.read("/proc/self/cgroup") or "")


def controller_dirs(root: Root, controller: str) -> tuple[int, list[str]]:
    """The cgroup version, and the folders (deepest first) whose ``controller`` limits bind us.

    ``(0, [])`` when no hierarchy holds the controller.
    """
    members = memberships(root)
    mounts = [m for m in _mountinfo.mounts(root) if m.cgroup_version is not None]
    for member in members:  # v1: a hierarchy that carries this controller
        if controller in member.controllers:
            for mount in mounts:
                if mount.cgroup_version == 1 and controller in mount.super_options:
                    return 1, _chain(root, mount, member.path)
    for member in members:  # v2: the unified hierarchy, if it holds the controller
        if member.controllers:
            continue
        for mount in mounts:
            if mount.cgroup_version == 2:
                dirs = _chain(root, mount, member.path)
                enabled = root.read(posixpath.join(mount.mount_point, "cgroup.controllers"))
                if enabled is not None and controller not in enabled.split():
                    # Hybrid host: the v2 mount exists but the controller lives in v1.
                    return 0, []
                return 2, dirs
    return 0, []


def _chain(root: Root, mount: Mount, path: str) -> list[str]:
    mount_root = mount.root.rstrip("/")
    if path == mount_root or path.startswith(mount_root + "/"):
        relative = path[len(mount_root) :]
    elif mount_root in ("", "/"):
        relative = path
    else:
        relative = ""  # the mount shows a different subtree: only its top is ours to read
    relative = posixpath.normpath("/" + relative.lstrip("/"))
    if relative.startswith("/.."):
        relative = "/"
    start = posixpath.normpath(mount.mount_point + relative)
    if not root.exists(start):
        start = mount.mount_point
    dirs = []
    current = start
    while True:
        dirs.append(current)
        if current == mount.mount_point or current in ("/", ""):
            break
        current = posixpath.dirname(current)
    return dirs


def cpu_quota(root: Root) -> float | None:
    """Cores the cgroup CPU quota allows (``1.5``), or ``None`` when there is no quota."""
    quotas = []
    version, folders = controller_dirs(root, "cpu")
    for folder in folders:
        if version == 2:  # "max 100000", or "150000 100000" (cgroup-v2.rst, cpu.max)
            v2 = root.read_line(posixpath.join(folder, "cpu.max"))
            parts = v2.split() if v2 else []
            if parts and parts[0] != "max":
                period = parts[1] if len(parts) > 1 else "100000"
                quotas.append(_ratio(parts[0], period))
            continue
        quota = root.read_line(posixpath.join(folder, "cpu.cfs_quota_us"))
        period_v1 = root.read_line(posixpath.join(folder, "cpu.cfs_period_us"))
        if quota is not None and period_v1 is not None:
            quotas.append(_ratio(quota, period_v1))
    valid = [q for q in quotas if q is not None]
    return min(valid) if valid else None


def _ratio(quota: str, period: str) -> float | None:
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    if q <= 0 or p <= 0:  # -1 is "no quota" in v1
        return None
    return q / p


def memory_limit(root: Root) -> int | None:
    """Bytes the cgroup memory limit allows, or ``None`` when none is set."""
    limits = []
    version, folders = controller_dirs(root, "memory")
    name = "memory.max" if version == 2 else "memory.limit_in_bytes"
    for folder in folders:
        value = root.read_line(posixpath.join(folder, name))
        if value is None:
            continue
        try:
            number = int(value)
        except ValueError:  # "max"
            continue
        # v1 writes "no limit" as a huge page-aligned number (9223372036854771712).
        if 0 < number < 2**62:
            limits.append(number)
    return min(limits) if limits else None
