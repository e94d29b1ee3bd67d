"""Bytes over the RDMA ports ``sys.network`` counts: the ports' own data counters.

RDMA verbs traffic (InfiniBand, RoCE) goes from user space to the adapter and never
through the kernel's network stack, so ``/proc/net/dev`` does not see it (:mod:`.network`).
The ports are the ones of ``sys.network`` (:func:`~..collectors.network.fabric`: active,
hardware, usable by this process, a shared physical port once); the counters are the
ports', so every process using a port counts, the run's or not (another job on the node,
storage over RDMA, IP over InfiniBand).

- A port whose driver answers the InfiniBand performance management class (mlx4, mlx5,
  hfi1, ...) has ``ports/<n>/counters/port_rcv_data`` and ``port_xmit_data``
  (``drivers/infiniband/core/sysfs.c``, ``Documentation/ABI/stable/sysfs-class-infiniband``):
  data octets divided by 4 (the InfiniBand specification's PortRcvData and PortXmitData;
  ConnectX's ``mlx5`` shifts its octet counts right by 2), except on Omni-Path, whose
  ``hfi1`` answers with its flit counts, 8 bytes a flit (``drivers/infiniband/hw/hfi1/mad.c``).
  Where the adapter has the extended counters they are 64-bit; the legacy ones are 32-bit
  and stop at 0xFFFFFFFF rather than wrap (17 GB, a third of a second at 400 Gb/s): a
  counter found there is not a count, and the figure is left out with the reason.
- An EFA port (AWS) has no such counters; its ``ports/1/hw_counters/rx_bytes`` and
  ``tx_bytes`` (``drivers/infiniband/hw/efa/efa_verbs.c``, the device's basic statistics)
  count bytes.
- A port with neither (iWARP adapters: ``irdma``, ``cxgb4`` answer no performance
  management queries) makes the figure unknown, with the reason.

A machine without a fabric (no ``sys.network``) writes no RDMA figure and says nothing of it.
"""

from __future__ import annotations

from .. import _platform
from .. import tags as T
from .._files import Root, count, once_per_root
from .._value import Record
from ._meter import Book, Meter, read_text

#: A legacy 32-bit port counter's value once it has saturated (InfiniBand PortCounters).
SATURATED_32 = 0xFFFFFFFF

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    #: Each port's received and transmitted counts (a number, or why there is none).
    Reading = list[tuple[int | str, int | str]]


class Port(Record):
    """One counted port: its name, its two counters' files, and how many bytes a count is."""

    label: str
    received: str
    sent: str
    unit: int


@once_per_root
def counted_ports(root: Root) -> tuple[Port, ...]:
    """The ports ``sys.network`` counts, with their counters (read once per process, as the tag is)."""
    from ..collectors import network

    found = []
    for port in network.fabric(network.ports(root)):
        folder = f"{network.BASE}/{port.device}/ports/{port.port}"
        label = f"{port.device} port {port.port}"
        if port.kind == "EFA":
            found.append(Port(label, f"{folder}/hw_counters/rx_bytes", f"{folder}/hw_counters/tx_bytes", 1))
        else:
            unit = 8 if port.kind == "Omni-Path" else 4
            found.append(
                Port(label, f"{folder}/counters/port_rcv_data", f"{folder}/counters/port_xmit_data", unit)
            )
    return tuple(found)


def read_counter(root: Root, label: str, path: str) -> int | str:
    """A port counter's value, or why it is not one."""
    name = path.rsplit("/", 2)
    shown = f"{name[-2]}/{name[-1]}"
    try:
        text = read_text(root, path, whole=True)
    except FileNotFoundError:
        return f"{label} keeps no byte counters ({shown} is missing)"
    except OSError as exc:
        return f"{label}: {shown} cannot be read ({exc.strerror or exc})"
    value = count(text)
    if value is None:
        return f"{label}: {shown} holds no counter ({text.strip()[:20]!r})"
    if value == SATURATED_32:
        return f"{label}: {shown} stopped at its 32-bit maximum (legacy counters saturate)"
    return value


class RdmaMeter(Meter):
    """Bytes received and sent over the fabric's ports (see the module)."""

    name = "rdma"

    def __init__(self, ports: tuple[Port, ...], root: Root) -> None:
        self.ports = ports
        self.root = root

    def read(self) -> Reading:
        """Each port's two counters now."""
        return [
            (read_counter(self.root, p.label, p.received), read_counter(self.root, p.label, p.sent))
            for p in self.ports
        ]

    def figures(self, first: Reading, last: Reading, seconds: float, book: Book) -> None:
        """``sys.rdma_rx_gb``, ``sys.rdma_tx_gb``: each only where every port counted it."""
        for side, key in enumerate((T.RDMA_RX_GB, T.RDMA_TX_GB)):
            total = 0
            for port, before, after in zip(self.ports, first, last, strict=True):
                start, end = before[side], after[side]
                if isinstance(start, str) or isinstance(end, str):
                    book.lacks(self.name, start if isinstance(start, str) else str(end))
                    break
                if end < start:
                    book.lacks(self.name, f"{port.label}'s counters went backwards (they were reset)")
                    break
                total += (end - start) * port.unit
            else:
                book.add(key, round(total / 1e9, 9))


def meter(root: Root) -> RdmaMeter | None:
    """The meter of this machine's fabric; ``None`` where there is none."""
    ports = counted_ports(root) if _platform.LINUX else ()
    return RdmaMeter(ports, root) if ports else None
