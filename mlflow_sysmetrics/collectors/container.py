"""Whether the process runs in a container, and which kind.

``KUBERNETES_SERVICE_HOST`` comes first (it says more than the runtime underneath), then
HPC runtimes that announce themselves, then the markers runtimes leave (``/.dockerenv``,
``/run/.containerenv``), the ``container`` variable systemd-style runtimes set, and last
the cgroup path, which names the runtime on hosts that leave no marker. As systemd's
``virt.c`` says, "some images hardcode container=oci, but OCI is not a specific container
manager": ``container=oci`` gives way to the cgroup path, and is ``oci`` only when nothing
names the manager.
"""

from __future__ import annotations

import os

from .. import tags as T
from .._context import Context

#: Environment variables whose values change the answer (part of the cache key).
ENV = (
    "KUBERNETES_SERVICE_HOST",
    "APPTAINER_CONTAINER",
    "SINGULARITY_CONTAINER",
    "container",
)

# Substrings of /proc/self/cgroup paths, most specific first.
_CGROUP_MARKERS = (
    ("kubepods", "kubernetes"),
    ("libpod", "podman"),
    ("docker", "docker"),
    ("cri-containerd", "containerd"),
    ("containerd", "containerd"),
    ("lxc", "lxc"),
    ("/ecs/", "ecs"),
)


def from_cgroup(text: str) -> str | None:
    """The runtime named by a cgroup path in ``/proc/self/cgroup``, if any."""
    for line in text.splitlines():
        path = line.split(":", 2)[-1]
        for marker, name in _CGROUP_MARKERS:
            if marker in path:
                return name
    return None


def detect(ctx: Context) -> str | None:
    """The container kind, or ``None`` when there is no sign of one."""
    env = os.environ
    root = ctx.root
    if env.get("KUBERNETES_SERVICE_HOST"):
        return "kubernetes"
    if env.get("APPTAINER_CONTAINER"):
        return "apptainer"
    if env.get("SINGULARITY_CONTAINER"):
        return "singularity"
    if root.exists("/.singularity.d"):
        return "apptainer"
    if root.exists("/.dockerenv"):
        return "docker"
    if root.exists("/run/.containerenv"):
        return "podman"
    runtime = env.get("container", "").strip()
    if runtime and runtime != "oci":
        return runtime
    return from_cgroup(root.read("/proc/self/cgroup") or "") or runtime or None


def collect(ctx: Context) -> dict[str, str]:
    """``sys.container`` when inside one."""
    kind = detect(ctx)
    return {T.CONTAINER: kind} if kind else {}
