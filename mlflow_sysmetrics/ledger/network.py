"""Bytes over the network namespace's interfaces: ``/proc/net/dev``, less those that count bytes twice.

``/proc/net/dev`` lists the interfaces of the reading process's network namespace, one line
each, as ``dev_seq_printf_stats`` (``net/core/net-procfs.c``) prints them: the name, a
colon, then eight receive fields (bytes first) and eight transmit fields (bytes first).
The counters are the interfaces', not the process's: every process in the namespace counts
(the other containers of a Kubernetes pod; on a bare host, or in a container on the host's
network, the whole machine). Where the namespace is known to be the host's, ``sys.ledger``
says so: its inode is ``NET_NS_INIT_INO`` (fixed since Linux 6.18), or, in the initial PID
namespace (whose inode has been fixed since Linux 3.8), it is the one of PID 1.

Which interfaces count: in a namespace of its own (a container's, whose ``eth0`` is one end
of a ``veth`` pair), every one but ``lo``. In the host's, a byte crosses several: a
container's traffic passes its ``veth``, a bridge (``docker0``, ``cni0``) and the port
(``eth0``); a bond and its ports, a VLAN and its parent, an ``ifb`` mirroring a port's
ingress all count the same bytes again. There only the physical interfaces count: those
with a ``device`` link in ``/sys/class/net/<name>/`` (a PCI, virtio or other bus device;
``Documentation/ABI/testing/sysfs-class-net``), which virtual interfaces have not, and
``sys.ledger`` says so. An interface gone from ``/sys/class/net`` by the time it is looked
up was removed: no physical one. Where ``/sys/class/net`` is not there to tell, neither figure
is counted.

An interface counts where it is in both readings: one that appeared or vanished during the
run (a container's ``veth`` started or stopped) is named in ``sys.ledger`` and its bytes
left out. A counter that went backwards (an interface reset or re-created under the same
name) makes both figures unknown. Traffic that bypasses the kernel's stack (RDMA verbs over
InfiniBand or RoCE) is not here: see :mod:`.rdma`; IP over InfiniBand (``ib0``) is.
"""

from __future__ import annotations

from .. import _platform
from .. import tags as T
from .._files import Root, once_per_root
from ._meter import Book, Meter, Uncountable, read_text

DEV = "/proc/net/dev"
#: ``NET_NS_INIT_INO`` (``include/uapi/linux/nsfs.h``): the initial network namespace's
#: inode since Linux 6.18 (a namespace made later gets one from 0xF0000000 up).
INIT_NET_INO = 0xEFFFFFF9
#: ``PROC_PID_INIT_INO`` (``include/linux/proc_ns.h``, since Linux 3.8): the initial PID namespace's.
INIT_PID_INO = 0xEFFFFFFC
#: Most interfaces named in ``sys.ledger`` as having come or gone.
NAMED = 3
#: Where each interface of the namespace sysfs was mounted in has a folder (a link to it).
CLASS_NET = "/sys/class/net"
#: ``sys.ledger``'s note where the namespace is the host's.
HOST_NOTE = (
    "network: the host's network namespace (every process on the machine counts), "
    "its physical interfaces only (bridges, veths, bonds and VLANs carry the same bytes again)"
)

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    #: received and transmitted bytes by interface
    Reading = dict[str, tuple[int, int]]


def interfaces(text: str) -> Reading:
    """Received and transmitted bytes of each interface of ``/proc/net/dev`` but ``lo``."""
    found: dict[str, tuple[int, int]] = {}
    for line in text.splitlines():
        name, colon, rest = line.partition(":")
        fields = rest.split()
        if not colon or len(fields) < 9 or "|" in name:
            continue
        name = name.strip()
        try:
            received, sent = int(fields[0]), int(fields[8])
        except ValueError:
            continue
        if name != "lo":
            found[name] = (received, sent)
    return found


def _inode(link: str | None) -> int | None:
    """``4026531833`` from a namespace link's target ``net:[4026531833]``."""
    digits = (link or "").partition("[")[2].rstrip("]")
    return int(digits) if digits.isdigit() else None


@once_per_root
def host_namespace(root: Root) -> bool | None:
    """Whether this process's network namespace is the host's; ``None`` when that cannot be told.

    Read once per process: a process that moves to another namespace (``setns``) keeps the answer.
    """
    own = _inode(root.link_name("/proc/self/ns/net"))
    if own is None:
        return None
    if own == INIT_NET_INO:
        return True
    if _inode(root.link_name("/proc/self/ns/pid")) != INIT_PID_INO:
        return None  # PID 1 is a container's init, whatever network it has
    init = _inode(root.link_name("/proc/1/ns/net"))  # root only, outside a user namespace
    return None if init is None else own == init


class NetworkMeter(Meter):
    """Bytes received and sent over the namespace's interfaces (the host's: physical ones; see the module)."""

    name = "network"

    def __init__(self, root: Root) -> None:
        if not _platform.LINUX:
            raise Uncountable("no /proc/net/dev on this platform")
        self.root = root
        self.host = host_namespace(root)

    def read(self) -> Reading:
        """Each interface's received and transmitted bytes now."""
        try:
            found = interfaces(read_text(self.root, DEV))
        except OSError as exc:
            raise Uncountable(f"{DEV} cannot be read ({exc.strerror or exc})") from None
        return physical(self.root, found) if self.host else found

    def figures(self, first: Reading, last: Reading, seconds: float, book: Book) -> None:
        """``sys.net_rx_gb``, ``sys.net_tx_gb``."""
        received = sent = 0
        for name in sorted(first.keys() & last.keys()):
            (rx0, tx0), (rx1, tx1) = first[name], last[name]
            if rx1 < rx0 or tx1 < tx0:
                raise Uncountable(f"{name}'s counters went backwards (the interface was reset)")
            received, sent = received + rx1 - rx0, sent + tx1 - tx0
        book.add(T.NET_RX_GB, round(received / 1e9, 9))
        book.add(T.NET_TX_GB, round(sent / 1e9, 9))
        changed = sorted(first.keys() ^ last.keys())
        if changed:
            names = ", ".join(changed[:NAMED]) + (
                f" and {len(changed) - NAMED} more" if len(changed) > NAMED else ""
            )
            book.note(f"network: not counted, came or went during the run: {names}")
        if self.host:
            book.note(HOST_NOTE)


def physical(root: Root, found: Reading) -> Reading:
    """The interfaces of ``found`` that have a device (``/sys/class/net/<name>/device``): no virtual ones."""
    if not root.exists(CLASS_NET):
        raise Uncountable(
            f"the host's network namespace, and no {CLASS_NET} to tell its physical interfaces "
            "from the virtual ones that count the same bytes again"
        )
    return {name: counts for name, counts in found.items() if root.exists(f"{CLASS_NET}/{name}/device")}
