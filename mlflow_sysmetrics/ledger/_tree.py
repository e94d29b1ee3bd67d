"""The run's process tree, and the cgroup where the run may be alone: what several meters count.

A cgroup's counters (its memory peak, its CPU time) are the run's only where the group holds
the run's processes and nothing else: this process and its live descendants, and no child
group (a child group's processes are not in the group's ``cgroup.procs``, but its counters
add up into the group's).
"""

from __future__ import annotations

import os

from .. import _platform
from .._files import Root, count

#: The most of a group's ``cgroup.procs`` read: a group whose list is longer (about 600
#: processes) holds more than a run's tree, and the root group of a host is not read whole.
PROCS_LIMIT = 4096


def descendants(root: Root, pid: int) -> set[int]:
    """The live descendants of ``pid`` (``/proc/<pid>/task/<tid>/children``, Linux 3.5+)."""
    found: set[int] = set()
    waiting = [pid]
    while waiting:
        current = waiting.pop()
        for task in root.listdir(f"/proc/{current}/task"):
            for child in (root.read(f"/proc/{current}/task/{task}/children") or "").split():
                if child.isdigit() and int(child) not in found:
                    found.add(int(child))
                    waiting.append(int(child))
    return found


def sole_cgroup(root: Root, pid: int, controller: str, counters: dict[int, str]) -> tuple[int, str] | None:
    """The cgroup version and folder of ``pid`` for ``controller``, where the run is alone in it.

    Alone: the group holds ``pid`` and its descendants only, and no child group (v2:
    ``cgroup.stat`` ``nr_descendants 0``; v1: no sub-folder). ``counters`` names, per cgroup
    version counted, the file the group must have (``{2: "memory.peak"}``); ``None`` when
    the group is not the run's alone, or has no such file.
    """
    if not _platform.LINUX:
        return None
    from ..collectors import _cgroup

    version, folders = _cgroup.controller_dirs(root, controller)
    counter = counters.get(version)
    if counter is None or not folders:
        return None
    folder = folders[0]
    if not root.exists(f"{folder}/{counter}"):
        return None
    if version == 2:
        stat = dict(
            line.split(" ", 1)
            for line in (root.read(f"{folder}/cgroup.stat") or "").splitlines()
            if " " in line
        )
        if count(stat.get("nr_descendants")) != 0:
            return None  # the group's counters would count the child groups too
    elif root.exists(f"{folder}/release_agent") or _has_child_groups(root, folder):
        # release_agent is on a v1 hierarchy's root group alone, which holds every kernel
        # thread (and whose list of processes is slow to make)
        return None
    text = root.read(f"{folder}/cgroup.procs", limit=PROCS_LIMIT)
    if text is None or len(text) >= PROCS_LIMIT:
        return None
    members = {int(p) for p in text.split() if p.isdigit()}
    if pid not in members or (len(members) > 1 and members - {pid} - descendants(root, pid)):
        return None
    return version, folder


def _has_child_groups(root: Root, folder: str) -> bool:
    """Whether a cgroup v1 folder has child groups (sub-folders); True when it cannot be listed."""
    try:
        with os.scandir(root.join(folder)) as entries:
            return any(entry.is_dir(follow_symlinks=False) for entry in entries)
    except OSError:
        return True
