"""The RDMA fabric: each port's kind from what the kernel says the device is, usable ports only."""

from __future__ import annotations

import pytest

from mlflow_sysmetrics import collect, snapshot
from mlflow_sysmetrics._files import Root
from mlflow_sysmetrics.collectors import network
from tests.conftest import Replay, expected


@pytest.mark.parametrize(
    "machine",
    [
        # iWARP's link layer reads Ethernet: node_type 4 (RNIC) decides. X722 LOM (10 GbE, iWARP only)
        # and an E810 switched to iWARP (100 GbE), both irdma.
        "rdma-iwarp",
        # Omni-Path's link layer reads InfiniBand: the hfi1 driver decides.
        "opa-hfi1",
        # Cisco usNIC (node_type 6) runs over Ethernet and is no RoCE.
        "cisco-usnic",
        # A hypervisor host: two physical ports, and two virtual functions of the first port.
        "sriov-hypervisor",
        # A pod given two of a DGX's eight HCAs: only their verbs device nodes are in /dev/infiniband.
        "k8s-pod-two-hcas",
        # The DGX itself (no /dev captured): eight InfiniBand ports, two RoCE, one down.
        "dgx-h100-8x",
        # EFA: node_type 7 (unspecified), link layer Unknown, the efa driver.
        "aws-p5-efa",
    ],
)
def test_fabric_kind_and_count(replay: Replay, machine: str) -> None:
    """Each replayed machine's fabric, as its README derives it from the kernel's documents."""
    replay(machine, commands=False)
    assert collect()["sys.network"] == expected(machine)["sys.network"]


def test_a_container_without_verbs_device_nodes_has_no_fabric(replay: Replay) -> None:
    """Sysfs shows the host's eight HCAs, but without /dev/infiniband verbs cannot open any."""
    replay("dgx-container-no-infiniband", commands=False)
    assert "sys.network" not in collect()
    ports = snapshot()["rdma_ports"]
    assert (len(ports), {p["usable"] for p in ports}) == (8, {False})


def test_software_rdma_is_no_fabric(replay: Replay) -> None:
    """Soft-RoCE and Soft-iWARP over a virtio NIC: listed in the snapshot, never tagged."""
    replay("vm-soft-rdma", commands=False)
    assert "sys.network" not in collect()
    kinds = {(p["device"], p["kind"], p["software"]) for p in snapshot()["rdma_ports"]}
    assert kinds == {("rxe0", "Soft-RoCE", True), ("siw0", "Soft-iWARP", True)}


def test_virtual_functions_share_their_physical_port(replay: Replay) -> None:
    """mlx5_2 and mlx5_3 are virtual functions of mlx5_0's port (physfn): the port counts once."""
    root = replay("sriov-hypervisor", commands=False)
    ports = network.ports(Root(str(root)))
    assert [p.physical for p in ports] == [
        "0000:3b:00.0/1",
        "0000:3b:00.1/1",
        "0000:3b:00.0/1",
        "0000:3b:00.0/1",
    ]
    assert [p.device for p in network.fabric(ports)] == ["mlx5_0", "mlx5_1"]


@pytest.mark.parametrize(
    ("node_type", "driver", "link_layer", "description", "kind"),
    [
        # Chelsio T6 (iw_cxgb4 registers node_type RNIC, node_desc "cxgb4 Chelsio Communications").
        (4, "cxgb4", "Ethernet", "cxgb4 Chelsio Communications", "iWARP"),
        # irdma in its RoCEv2 mode (the in-kernel driver's default for E810) registers a CA.
        (1, "ice", "Ethernet", None, "RoCE"),
        (1, "mlx5_core", "InfiniBand", "node01 mlx5_0", "InfiniBand"),
        (5, "enic", "Ethernet", None, "usNIC"),
        # rdma-ndd may rewrite a node description; the software stacks' own start it.
        (1, None, "Ethernet", "rxe", "Soft-RoCE"),
        (4, "virtio-pci", "Ethernet", "Software iWARP stack", "Soft-iWARP"),
        (7, "efa", "Unknown", None, "EFA"),
        (None, None, "InfiniBand", None, "InfiniBand"),  # a kernel too old to say node_type
        (3, None, "InfiniBand", None, "RDMA"),  # a router: no kind of ours
    ],
)
def test_kind_rule(
    node_type: int | None, driver: str | None, link_layer: str, description: str | None, kind: str
) -> None:
    """The one rule: software stacks, then the driver's own kinds, then node_type, then the link layer."""
    assert kind == network.kind(node_type, driver, link_layer, description)


def test_no_rdma_no_network_tag(replay: Replay) -> None:
    """Without RDMA devices there is no sys.network at all."""
    replay("h100-vm")
    assert "sys.network" not in collect()
    assert network.describe([]) is None
