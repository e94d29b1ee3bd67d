"""The RDMA fabric a multi-node job talks over: InfiniBand, RoCE and EFA ports.

Read from ``/sys/class/infiniband/<device>/ports/<n>/`` under the root, as the kernel's
``Documentation/ABI/stable/sysfs-class-infiniband`` describes it: ``state`` (``4: ACTIVE``),
``rate`` (``400 Gb/sec (4X NDR)``), ``link_layer`` (``InfiniBand``, or ``Ethernet`` for RoCE).
AWS's Elastic Fabric Adapter registers as an RDMA device bound to the ``efa`` driver. Only
active ports count; every port is listed in the snapshot.
"""

from __future__ import annotations

from .. import tags as T
from .._context import Context
from .._files import Root

BASE = "/sys/class/infiniband"


class Port:
    """One port of an RDMA device."""

    __slots__ = ("active", "device", "kind", "port", "rate")

    def __init__(self, device: str, port: str, kind: str, rate: str | None, active: bool) -> None:
        self.device = device
        self.port = port
        self.kind = kind
        self.rate = rate
        self.active = active

    def as_dict(self) -> dict[str, object]:
        """The port for the snapshot document."""
        return {name: getattr(self, name) for name in ("device", "port", "kind", "rate", "active")}


def _kind(root: Root, device: str, link_layer: str | None) -> str:
    if root.link_name(f"{BASE}/{device}/device/driver") == "efa":
        return "EFA"
    if (link_layer or "").lower() == "ethernet":
        return "RoCE"
    if (link_layer or "").lower() == "infiniband":
        return "InfiniBand"
    return link_layer or "RDMA"


def ports(root: Root) -> list[Port]:
    """Every port of every RDMA device under the root, in name order."""
    found = []
    for device in root.listdir(BASE):
        for port in root.listdir(f"{BASE}/{device}/ports"):
            base = f"{BASE}/{device}/ports/{port}"
            state = root.read_line(f"{base}/state") or ""
            rate = (root.read_line(f"{base}/rate") or "").split(" (")[0].strip() or None
            kind = _kind(root, device, root.read_line(f"{base}/link_layer"))
            found.append(Port(device, port, kind, rate, state.split(":")[-1].strip().upper() == "ACTIVE"))
    return found


def describe(active: list[Port]) -> str | None:
    """``8x 400 Gb/sec InfiniBand, 2x 200 Gb/sec RoCE``, ``32x EFA``: active ports by rate and kind."""
    groups: dict[str, int] = {}
    for port in active:
        label = port.kind if port.kind == "EFA" or not port.rate else f"{port.rate} {port.kind}"
        groups[label] = groups.get(label, 0) + 1
    return ", ".join(f"{count}x {label}" for label, count in groups.items()) or None


def collect_linux(ctx: Context) -> dict[str, str]:
    """``sys.network``: the active RDMA ports; nothing when there are none."""
    found = ports(ctx.root)
    if found:
        ctx.details["rdma_ports"] = [p.as_dict() for p in found]
    text = describe([p for p in found if p.active])
    return {T.NETWORK: text} if text else {}
