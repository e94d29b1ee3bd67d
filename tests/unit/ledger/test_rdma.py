"""RDMA bytes from the replayed fabrics' port counters, which the tests move as the adapters would.

The trees (their READMEs name the documents): a DGX H100 (eight InfiniBand ports, two RoCE,
one down), a pod given two of a DGX's eight HCAs, an AWS p5 (32 EFA ports, counting bytes),
an Omni-Path node (counting flits), iWARP adapters (no port data counters), a VM with the
software stacks only (no fabric).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlflow_sysmetrics import ledger
from tests.conftest import FIXTURES

INFINIBAND = "sys/class/infiniband"


def _machine(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "machine"
    shutil.copytree(FIXTURES / name, root, symlinks=True)
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(root))
    return root / INFINIBAND


def _add(counter: Path, amount: int) -> None:
    counter.write_text(f"{int(counter.read_text()) + amount}\n")


def _move(devices: Path, names: list[str], received: int, sent: int, folder: str = "counters") -> None:
    """Each named device's port 1 receives ``received`` and sends ``sent`` more counts."""
    rx, tx = ("rx_bytes", "tx_bytes") if folder == "hw_counters" else ("port_rcv_data", "port_xmit_data")
    for name in names:
        _add(devices / name / "ports/1" / folder / rx, received)
        _add(devices / name / "ports/1" / folder / tx, sent)


def test_infiniband_and_roce_ports_count_four_bytes_a_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DGX: 1 GB received (250e6 counts of 4 octets) and 0.5 GB sent on each of the 10 active ports.

    The port that is down moves too (its counters are the port's, whatever its state) but is
    not one of sys.network's ports: not counted.
    """
    devices = _machine("dgx-h100-8x", tmp_path, monkeypatch)
    span = ledger.Span()
    _move(devices, [f"mlx5_{i}" for i in range(10)], 250_000_000, 125_000_000)
    _move(devices, ["mlx5_10"], 10**12, 10**12)
    counted = span.finish()
    assert counted.metrics["sys.rdma_rx_gb"] == 10.0
    assert counted.metrics["sys.rdma_tx_gb"] == 5.0
    assert "rdma" not in counted.text


def test_only_the_hcas_a_pod_can_open_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pod given mlx5_2 and mlx5_5: the other six HCAs' traffic (another pod's) is not its figure."""
    devices = _machine("k8s-pod-two-hcas", tmp_path, monkeypatch)
    span = ledger.Span()
    _move(devices, ["mlx5_2", "mlx5_5"], 500_000_000, 250_000_000)
    _move(devices, ["mlx5_0", "mlx5_1", "mlx5_3", "mlx5_4", "mlx5_6", "mlx5_7"], 10**12, 10**12)
    counted = span.finish()
    assert counted.metrics["sys.rdma_rx_gb"] == 4.0
    assert counted.metrics["sys.rdma_tx_gb"] == 2.0


@pytest.mark.parametrize(
    ("machine", "devices_moved", "folder", "received", "sent", "rx_gb", "tx_gb"),
    [
        # p5.48xlarge: each of the 32 EFA ports' hw_counters receives 1 GB and sends 2 GB.
        ("aws-p5-efa", "*", "hw_counters", 10**9, 2 * 10**9, 32.0, 64.0),
        # hfi1 answers PortCountersExtended with flits: 125e6 flits received are 1 GB, not 0.5.
        ("opa-hfi1", "hfi1_0", "counters", 125_000_000, 250_000_000, 1.0, 2.0),
    ],
    ids=["efa-counts-bytes", "omni-path-counts-flits-of-eight-bytes"],
)
def test_a_fabrics_own_unit_is_read_as_bytes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    machine: str,
    devices_moved: str,
    folder: str,
    received: int,
    sent: int,
    rx_gb: float,
    tx_gb: float,
) -> None:
    """EFA's hw_counters count bytes (not four-byte words), Omni-Path's counters flits of eight bytes."""
    devices = _machine(machine, tmp_path, monkeypatch)
    span = ledger.Span()
    _move(devices, sorted(p.name for p in devices.glob(devices_moved)), received, sent, folder=folder)
    counted = span.finish()
    assert counted.metrics["sys.rdma_rx_gb"] == rx_gb
    assert counted.metrics["sys.rdma_tx_gb"] == tx_gb


def test_a_port_without_data_counters_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """IWARP (irdma) answers no performance management query: no counters, so no figure, and why."""
    _machine("rdma-iwarp", tmp_path, monkeypatch)
    counted = ledger.Span().finish()
    assert "sys.rdma_rx_gb" not in counted.metrics
    assert "sys.rdma_tx_gb" not in counted.metrics
    assert (
        "rdma: iwp152s0f0 port 1 keeps no byte counters (counters/port_rcv_data is missing)" in counted.text
    )


def test_no_fabric_no_figure_and_no_word(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Soft-RoCE and Soft-iWARP are no fabric (no sys.network): nothing written, nothing said."""
    _machine("vm-soft-rdma", tmp_path, monkeypatch)
    counted = ledger.Span().finish()
    assert not {"sys.rdma_rx_gb", "sys.rdma_tx_gb"} & set(counted.metrics)
    assert "rdma" not in counted.text


def test_a_saturated_legacy_counter_is_no_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 32-bit PortRcvData stops at 0xFFFFFFFF: the received figure is unknown; the sent one stands."""
    devices = _machine("dgx-h100-8x", tmp_path, monkeypatch)
    span = ledger.Span()
    _move(devices, [f"mlx5_{i}" for i in range(10)], 250_000_000, 125_000_000)
    (devices / "mlx5_3/ports/1/counters/port_rcv_data").write_text("4294967295\n")
    counted = span.finish()
    assert "sys.rdma_rx_gb" not in counted.metrics
    assert counted.metrics["sys.rdma_tx_gb"] == 5.0
    assert (
        "rdma: mlx5_3 port 1: counters/port_rcv_data stopped at its 32-bit maximum (legacy counters saturate)"
        in counted.text
    )


def test_counters_that_went_backwards_are_no_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Counters cleared during the run (perfquery -x -R, a driver reload): neither figure, and why."""
    devices = _machine("dgx-h100-8x", tmp_path, monkeypatch)
    span = ledger.Span()
    for name in ("port_rcv_data", "port_xmit_data"):
        (devices / "mlx5_0/ports/1/counters" / name).write_text("12\n")
    counted = span.finish()
    assert not {"sys.rdma_rx_gb", "sys.rdma_tx_gb"} & set(counted.metrics)
    assert "rdma: mlx5_0 port 1's counters went backwards (they were reset)" in counted.text


def test_no_traffic_is_a_real_zero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Counters that did not move: 0 GB is what the ports say, so it is written."""
    _machine("k8s-pod-two-hcas", tmp_path, monkeypatch)
    counted = ledger.Span().finish()
    assert counted.metrics["sys.rdma_rx_gb"] == 0.0
    assert counted.metrics["sys.rdma_tx_gb"] == 0.0
