"""Network bytes from ``/proc/net/dev``: a replayed pod and host whose counters the tests move, and this machine's.

The pod (``pod-proc-counters``, its README names the documents) has ``lo``, ``eth0`` and
``net1`` in a network namespace of its own; the host (``container-host-network``) has three
ports, a bond of two of them, a VLAN on it, a bridge and a container's veth in the initial
namespace. The tests rewrite ``/proc/net/dev`` with the kernel's format string, and the
namespace links, as the kernel would show them.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from mlflow_sysmetrics import ledger
from mlflow_sysmetrics._files import Root
from mlflow_sysmetrics.ledger import network
from tests.conftest import FIXTURES

#: ``dev_seq_printf_stats``' format (``net/core/net-procfs.c``), and ``dev_seq_show``'s header.
LINE = "%6s: %7u %7u %4u %4u %4u %5u %10u %9u %8u %7u %4u %4u %4u %5u %7u %10u\n"
HEADER = (
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
    "drop fifo colls carrier compressed\n"
)
#: The pod's counters at the start (its ``proc/net/dev``): received and sent bytes.
START = {
    "lo": (734003200, 734003200),
    "eth0": (91827364551, 7261524130),
    "net1": (412345678901, 398765432109),
}


#: The host's counters at the start (its ``proc/net/dev``): received and sent bytes.
HOST_START = {
    "lo": (2147483648, 2147483648),
    "eno1": (5368709120, 1073741824),
    "ens1f0": (300000000000, 40000000000),
    "ens1f1": (280000000000, 38000000000),
    "bond0": (580000000000, 78000000000),
    "bond0.100": (560000000000, 75000000000),
    "docker0": (120000000000, 20000000000),
    "veth3f2a1b0": (20000000000, 120000000000),
}
HOST_NOTE = (
    "network: the host's network namespace (every process on the machine counts), "
    "its physical interfaces only (bridges, veths, bonds and VLANs carry the same bytes again)"
)


def _replayed(machine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / machine
    shutil.copytree(FIXTURES / machine, root, symlinks=True)
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(root))
    return root


def _pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return _replayed("pod-proc-counters", tmp_path, monkeypatch)


def _host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return _replayed("container-host-network", tmp_path, monkeypatch)


def _grown(
    start: dict[str, tuple[int, int]], growth: dict[str, tuple[int, int]]
) -> dict[str, tuple[int, int]]:
    """``start`` with each interface of ``growth`` grown by its received and sent bytes."""
    return {
        name: (rx + growth.get(name, (0, 0))[0], tx + growth.get(name, (0, 0))[1])
        for name, (rx, tx) in start.items()
    }


def _write(root: Path, counters: dict[str, tuple[int, int]]) -> None:
    """``/proc/net/dev`` with these interfaces' bytes (packets and the rest zero)."""
    lines = [
        LINE % (name, rx, 0, 0, 0, 0, 0, 0, 0, tx, 0, 0, 0, 0, 0, 0, 0) for name, (rx, tx) in counters.items()
    ]
    (root / "proc/net/dev").write_text(HEADER + "".join(lines))


def _counted_while(root: Path, counters: dict[str, tuple[int, int]]) -> ledger.Ledger:
    """What a span counts while ``/proc/net/dev`` moves from what it holds to ``counters``."""
    span = ledger.Span()
    _write(root, counters)
    return span.finish()


def _link(root: Path, path: str, target: str) -> None:
    link = root / path
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink():
        link.unlink()
    link.symlink_to(target)


def test_the_pods_interfaces_count_and_loopback_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """eth0 receives 2 GB and sends 0.5 GB, net1 receives 1 GB and sends 3 GB; lo moves 50 GB, not counted."""
    counted = _counted_while(
        _pod(tmp_path, monkeypatch),
        {
            "lo": (START["lo"][0] + 5 * 10**10, START["lo"][1] + 5 * 10**10),
            "eth0": (START["eth0"][0] + 2 * 10**9, START["eth0"][1] + 5 * 10**8),
            "net1": (START["net1"][0] + 10**9, START["net1"][1] + 3 * 10**9),
        },
    )
    assert counted.metrics["sys.net_rx_gb"] == 3.0
    assert counted.metrics["sys.net_tx_gb"] == 3.5
    assert "network" not in counted.text  # the pod's own namespace: nothing to say


def test_an_interface_that_came_or_went_is_named_not_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """net1 detached and net2 attached during the run: only eth0, in both readings, counts."""
    counted = _counted_while(
        _pod(tmp_path, monkeypatch),
        {
            "lo": START["lo"],
            "eth0": (START["eth0"][0] + 10**9, START["eth0"][1] + 10**9),
            "net2": (7 * 10**9, 7 * 10**9),
        },
    )
    assert counted.metrics["sys.net_rx_gb"] == 1.0
    assert counted.metrics["sys.net_tx_gb"] == 1.0
    assert "network: not counted, came or went during the run: net1, net2" in counted.text


def test_a_counter_that_went_backwards_is_no_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """net1 deleted and made again under its name: its counters start over; neither figure, and why."""
    counted = _counted_while(
        _pod(tmp_path, monkeypatch), {"lo": START["lo"], "eth0": START["eth0"], "net1": (4096, 2048)}
    )
    assert not {"sys.net_rx_gb", "sys.net_tx_gb"} & set(counted.metrics)
    assert "network: net1's counters went backwards (the interface was reset)" in counted.text


def test_the_hosts_namespace_is_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process in the initial network namespace (Linux 6.18+: inode 0xEFFFFFF9): the whole machine counts."""
    _host(tmp_path, monkeypatch)
    counted = ledger.Span().finish()
    assert HOST_NOTE in counted.text


def test_on_the_host_only_the_physical_interfaces_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the three ports have a device link: 4.01 GB received, 0.002 GB sent (all but lo: 20.01, 4.002).

    4 GB from the network to a container: 2.5 GB on ens1f0 and 1.5 on ens1f1, then the same 4 GB on
    bond0, bond0.100, docker0 and the veth (sent to the container); eno1 receives 0.01 GB and sends 0.002.
    """
    root = _host(tmp_path, monkeypatch)
    counted = _counted_while(
        root,
        _grown(
            HOST_START,
            {
                "lo": (10**10, 10**10),
                "eno1": (10**7, 2 * 10**6),
                "ens1f0": (25 * 10**8, 0),
                "ens1f1": (15 * 10**8, 0),
                "bond0": (4 * 10**9, 0),
                "bond0.100": (4 * 10**9, 0),
                "docker0": (0, 4 * 10**9),
                "veth3f2a1b0": (0, 4 * 10**9),
            },
        ),
    )
    assert counted.metrics["sys.net_rx_gb"] == 4.01
    assert counted.metrics["sys.net_tx_gb"] == 0.002
    assert HOST_NOTE in counted.text


def test_on_the_host_a_veth_that_came_or_went_is_not_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A container started and another stopped during the run: their veths never counted, nothing to say."""
    root = _host(tmp_path, monkeypatch)
    last = _grown(HOST_START, {"eno1": (10**9, 10**9)})
    del last["veth3f2a1b0"]
    last["veth9c8d7e6"] = (10**9, 10**9)
    counted = _counted_while(root, last)
    assert counted.metrics["sys.net_rx_gb"] == 1.0
    assert counted.metrics["sys.net_tx_gb"] == 1.0
    assert "came or went" not in counted.text


def test_on_the_host_without_sysfs_neither_figure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No /sys/class/net: the ports cannot be told from the bond, the bridge and the veth; no figure, and why."""
    root = _host(tmp_path, monkeypatch)
    shutil.rmtree(root / "sys/class/net")
    counted = _counted_while(root, _grown(HOST_START, {"eno1": (10**9, 10**9)}))
    assert not {"sys.net_rx_gb", "sys.net_tx_gb"} & set(counted.metrics)
    assert (
        "network: the host's network namespace, and no /sys/class/net to tell its physical interfaces "
        "from the virtual ones that count the same bytes again"
    ) in counted.text


def test_in_a_pod_every_interface_but_lo_counts_without_sysfs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pod's eth0 is a veth (no device link) and its tree has no /sys: it counts, its own namespace's."""
    root = _pod(tmp_path, monkeypatch)
    assert not (root / "sys").exists()
    counted = _counted_while(root, _grown(START, {"eth0": (10**9, 10**9)}))
    assert counted.metrics["sys.net_rx_gb"] == 1.0
    assert counted.metrics["sys.net_tx_gb"] == 1.0


@pytest.mark.parametrize(
    ("own", "pid_namespace", "init", "host"),
    [
        (
            "net:[4026531992]",
            "pid:[4026531836]",
            "net:[4026531992]",
            True,
        ),  # the initial PID namespace's PID 1
        ("net:[4026532551]", "pid:[4026531836]", "net:[4026531992]", False),  # its own namespace
        ("net:[4026531992]", "pid:[4026531836]", None, None),  # PID 1's link is root's to read
        ("net:[4026531992]", "pid:[4026532553]", "net:[4026531992]", None),  # PID 1 is a container's init
    ],
)
def test_before_linux_6_18_the_host_is_told_by_pid_1(
    tmp_path: Path, own: str, pid_namespace: str, init: str | None, host: bool | None
) -> None:
    """Before 6.18 the initial namespace has no fixed inode: the same as PID 1's, where PID 1 is the machine's."""
    root = tmp_path / "machine"
    _link(root, "proc/self/ns/net", own)
    _link(root, "proc/self/ns/pid", pid_namespace)
    if init is not None:
        _link(root, "proc/1/ns/net", init)
    assert host is network.host_namespace(Root(str(root)))


def test_a_host_with_many_interfaces_is_read_to_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node with 600 veths (80 KB of /proc/net/dev, more than one read gives): every one counts."""
    root = _pod(tmp_path, monkeypatch)
    veths = {f"veth{i:05x}": (10**6 * i, 10**6 * i) for i in range(600)}
    _write(root, veths)
    assert (root / "proc/net/dev").stat().st_size > 65536
    counted = _counted_while(root, {name: (rx + 10**6, tx + 2 * 10**6) for name, (rx, tx) in veths.items()})
    assert counted.metrics["sys.net_rx_gb"] == 0.6
    assert counted.metrics["sys.net_tx_gb"] == 1.2


def test_the_old_format_without_a_space_after_the_colon() -> None:
    """Linux 2.6 printed ``%6s:%8lu``: a long name runs into its first counter, and still parses."""
    text = HEADER + "enp94s0f0:123456789012 9000 0 0 0 0 0 0 987654321 8000 0 0 0 0 0 0\n"
    assert network.interfaces(text) == {"enp94s0f0": (123456789012, 987654321)}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/net/dev is Linux's")
def test_this_machines_own_file() -> None:
    """The live /proc/net/dev is read at both ends; what it counted is this machine's, 0 or more."""
    counted = ledger.Span().finish()
    assert counted.metrics["sys.net_rx_gb"] >= 0
    assert counted.metrics["sys.net_tx_gb"] >= 0
    host = os.readlink("/proc/self/ns/net") == "net:[4026531833]"  # NET_NS_INIT_INO, Linux 6.18+
    if host:
        assert HOST_NOTE in counted.text
