"""Network bytes from ``/proc/net/dev``: a replayed pod whose counters the tests move, and this machine's.

The pod (``pod-proc-counters``, its README names the documents) has ``lo``, ``eth0`` and
``net1`` in a network namespace of its own; the tests rewrite its ``/proc/net/dev`` with the
kernel's format string, and its namespace links, as the kernel would show them.
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


def _pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "pod"
    shutil.copytree(FIXTURES / "pod-proc-counters", root, symlinks=True)
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(root))
    return root


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
    root = _pod(tmp_path, monkeypatch)
    _link(root, "proc/self/ns/net", "net:[4026531833]")
    counted = ledger.Span().finish()
    assert "network: the host's network namespace (every process on the machine counts)" in counted.text


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
        assert "network: the host's network namespace (every process on the machine counts)" in counted.text
