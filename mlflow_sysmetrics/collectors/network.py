"""The RDMA fabric a multi-node job talks over: InfiniBand, RoCE, iWARP, Omni-Path, EFA, usNIC.

Read from ``/sys/class/infiniband/<device>/`` under the root, as the kernel's
``Documentation/ABI/stable/sysfs-class-infiniband`` describes it. A port's kind is decided in
one place (:func:`kind`), by what the kernel says the device is, not by its link layer alone:

- ``node_type`` (``drivers/infiniband/core/sysfs.c``): ``4: RNIC`` is iWARP, whose link
  layer the kernel reports as ``Ethernet`` (Intel X722, E810 in iWARP mode, Chelsio
  ``iw_cxgb4``); ``5: usNIC`` and ``6: usNIC UDP`` are Cisco's usNIC, not RoCE; ``1: CA``
  is InfiniBand or, over Ethernet, RoCE;
- the driver: ``efa`` (AWS's Elastic Fabric Adapter, ``7: unspecified``, link layer
  ``Unknown``) and ``hfi1`` (Intel Omni-Path, whose link layer reads ``InfiniBand``);
- software stacks are not a fabric: Soft-RoCE (``rxe``, node description ``rxe``) and
  Soft-iWARP (``siw``, node description ``Software iWARP stack``, the prefix rdma-core's
  own provider matches on) run over any NIC and are left out of the tag.

A port counts only when it is active and this process can open its device: rdma-core's
``libibverbs`` skips a device whose ``/dev/infiniband/uverbs<N>`` it cannot reach (the
``uverbs<N>`` of a device is named in ``/sys/class/infiniband_verbs/uverbs<N>/ibdev``), so
a container started without ``/dev/infiniband`` has no fabric, whatever sysfs shows of the
host's. (A replayed tree that captured no ``/dev`` is not filtered.) A virtual function of
SR-IOV shares its physical function's port: where both are usable, the port counts once.
Every port is listed in the snapshot.
"""

from __future__ import annotations

from .. import tags as T
from .._context import Context
from .._files import Root
from .._value import Record

BASE = "/sys/class/infiniband"
VERBS = "/sys/class/infiniband_verbs"
#: rdma-core's ``RDMA_CDEV_DIR``: where the verbs device nodes are.
DEVICE_NODES = "/dev/infiniband"

#: ``enum rdma_node_type`` (``include/rdma/ib_verbs.h``), as ``node_type`` prints it.
NODE_CA = 1
NODE_RNIC = 4
NODE_USNIC = 5
NODE_USNIC_UDP = 6
#: Node descriptions the kernel's software RDMA drivers give their devices.
SOFTWARE_DESCRIPTIONS = {"rxe": "Soft-RoCE", "Software iWARP stack": "Soft-iWARP"}
#: Drivers whose devices are their own kind, whatever the link layer says.
DRIVER_KINDS = {"efa": "EFA", "hfi1": "Omni-Path"}


class Port(Record):
    """One port of an RDMA device: its kind, rate, and whether this process can use it."""

    device: str
    port: str
    kind: str
    rate: str | None
    active: bool
    software: bool = False
    usable: bool = True
    #: The physical port behind it (``<PCI function>/<port>``; a virtual function names its
    #: physical function's), so that a port seen twice counts once.
    physical: str | None = None

    def as_dict(self) -> dict[str, object]:
        """The port for the snapshot document."""
        return {
            name: getattr(self, name)
            for name in ("device", "port", "kind", "rate", "active", "software", "usable")
        }


def _node_type(text: str | None) -> int | None:
    """``4`` from ``4: RNIC``; ``None`` when the file is missing or unreadable."""
    try:
        return int((text or "").split(":", 1)[0])
    except ValueError:
        return None


def kind(node_type: int | None, driver: str | None, link_layer: str | None, description: str | None) -> str:
    """The fabric kind of a port: ``InfiniBand``, ``RoCE``, ``iWARP``, ``Omni-Path``, ``EFA``, ...

    ``description`` is the device's ``node_desc``: the software stacks name themselves there
    (:data:`SOFTWARE_DESCRIPTIONS`).
    """
    for prefix, name in SOFTWARE_DESCRIPTIONS.items():
        if (description or "").startswith(prefix):
            return name
    if driver in DRIVER_KINDS:
        return DRIVER_KINDS[driver]
    if node_type == NODE_RNIC:
        return "iWARP"
    if node_type in (NODE_USNIC, NODE_USNIC_UDP):
        return "usNIC"
    layer = (link_layer or "").strip().lower()
    if node_type in (None, NODE_CA):
        if layer == "infiniband":
            return "InfiniBand"
        if layer == "ethernet":
            return "RoCE"
    return "RDMA"


def _verbs_nodes(root: Root) -> dict[str, str]:
    """Each RDMA device's verbs device node name (``mlx5_0`` -> ``uverbs0``)."""
    found: dict[str, str] = {}
    for name in root.listdir(VERBS):
        device = root.read_line(f"{VERBS}/{name}/ibdev")
        if device:
            found.setdefault(device, name)
    return found


def ports(root: Root) -> list[Port]:
    """Every port of every RDMA device under the root, in name order."""
    devices = root.listdir(BASE)
    if not devices:
        return []
    filter_by_node = root.exists("/dev")
    nodes = _verbs_nodes(root) if filter_by_node else {}
    found = []
    for device in devices:
        base = f"{BASE}/{device}"
        description = root.read_line(f"{base}/node_desc")
        driver = root.link_name(f"{base}/device/driver")
        node_type = _node_type(root.read_line(f"{base}/node_type"))
        software = any((description or "").startswith(p) for p in SOFTWARE_DESCRIPTIONS)
        node = nodes.get(device)
        usable = not filter_by_node or (node is not None and root.exists(f"{DEVICE_NODES}/{node}"))
        function = root.link_name(f"{base}/device/physfn") or root.link_name(f"{base}/device")
        for port in root.listdir(f"{base}/ports"):
            folder = f"{base}/ports/{port}"
            state = root.read_line(f"{folder}/state") or ""
            rate = (root.read_line(f"{folder}/rate") or "").split(" (")[0].strip() or None
            found.append(
                Port(
                    device,
                    port,
                    kind(node_type, driver, root.read_line(f"{folder}/link_layer"), description),
                    rate,
                    state.split(":")[-1].strip().upper() == "ACTIVE",
                    software=software,
                    usable=usable,
                    physical=f"{function}/{port}" if function else None,
                )
            )
    return found


def fabric(found: list[Port]) -> list[Port]:
    """The ports that make the fabric: active, hardware, usable here, each physical port once."""
    counted: list[Port] = []
    seen: set[str] = set()
    for port in found:
        if not (port.active and port.usable) or port.software:
            continue
        if port.physical is not None:
            if port.physical in seen:
                continue
            seen.add(port.physical)
        counted.append(port)
    return counted


def describe(counted: list[Port]) -> str | None:
    """``8x 400 Gb/sec InfiniBand, 2x 200 Gb/sec RoCE``, ``32x EFA``: ports by rate and kind."""
    groups: dict[str, int] = {}
    for port in counted:
        label = port.kind if port.kind == "EFA" or not port.rate else f"{port.rate} {port.kind}"
        groups[label] = groups.get(label, 0) + 1
    return ", ".join(f"{count}x {label}" for label, count in groups.items()) or None


def collect_linux(ctx: Context) -> dict[str, str]:
    """``sys.network``: the fabric's ports; nothing when there are none."""
    found = ports(ctx.root)
    if found:
        ctx.details["rdma_ports"] = [p.as_dict() for p in found]
    text = describe(fabric(found))
    return {T.NETWORK: text} if text else {}
