"""What the command line prints, made from plain tags and runs (no MLflow needed)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from mlflow_sysmetrics import _format
from mlflow_sysmetrics import tags as T

H100 = {
    "sys.gpu": "NVIDIA H100 80GB HBM3",
    "sys.cpu": "Intel(R) Xeon(R) Processor",
    "sys.disk_free_gb": "68.7",
    "sys.cpu_cores": "16",
    "sysmetrics.error": "gpu: TimeoutError: ...",
}


def _run(
    tags: dict[str, str],
    seconds: float | None = 1.0,
    status: str = "FINISHED",
    metrics: dict[str, float] | None = None,
) -> Any:
    info = SimpleNamespace(
        start_time=1_000, end_time=None if seconds is None else 1_000 + int(seconds * 1000), status=status
    )
    return SimpleNamespace(info=info, data=SimpleNamespace(tags=tags, metrics=metrics or {}))


def test_keys_in_the_readmes_order_node_keys_after() -> None:
    """One order everywhere: the tag table's, node 1's keys after node 0's, unknown keys last."""
    keys = ["sys.node1.gpu", "zzz.other", "sys.gpu", "sys.node1.cpu", "sys.cpu", "sysmetrics.error"]
    assert T.order(keys) == [
        "sys.cpu",
        "sys.gpu",
        "sysmetrics.error",
        "sys.node1.cpu",
        "sys.node1.gpu",
        "zzz.other",
    ]
    assert list(_format.ordered(H100)) == [k for k in T.ALL_KEYS if k in H100]


def test_table_groups_keys_under_headings() -> None:
    """A heading per group, in order, keys aligned; node keys are left to the nodes table."""
    text = _format.format_table({**H100, "sys.node1.cpu": "AMD"})
    assert text.splitlines() == [
        "CPU",
        "  sys.cpu           Intel(R) Xeon(R) Processor",
        "  sys.cpu_cores     16",
        "",
        "Disk",
        "  sys.disk_free_gb  68.7",
        "",
        "GPU",
        "  sys.gpu           NVIDIA H100 80GB HBM3",
        "",
        "Errors",
        "  sysmetrics.error  gpu: TimeoutError: ...",
    ]
    assert _format.format_table({}) == "(no system tags)"


def test_nodes_table_says_whether_nodes_differ() -> None:
    """Node 0's plain keys and node k's sys.node<k>.*; memory is the limit where one was set."""
    tags = {"sys.cpu": "X", "sys.memory_gb": "100", "sys.node1.cpu": "Y", "sys.node1.memory_limit_gb": "8.59"}
    nodes = _format.nodes_of(tags)
    assert nodes == {0: {"cpu": "X", "memory_gb": "100"}, 1: {"cpu": "Y", "memory_limit_gb": "8.59"}}
    assert _format.format_nodes(nodes).splitlines() == [
        "node  cpu  memory GB",
        "0     X    100",
        "1     Y    8.59",
        "(2 nodes: nodes differ)",
    ]
    assert _format.nodes_of({"sys.cpu": "X"}) == {}


def test_differences_put_the_likeliest_causes_first() -> None:
    """Frameworks, power, links, network first; free disk space only when asked; equal keys out."""
    a = {"sys.cpu": "X", "sys.gpu_link": "PCIe Gen5 x16", "sys.disk_free_gb": "1", "sys.os": "U"}
    b = {"sys.cpu": "Y", "sys.gpu_link": "PCIe Gen4 x8", "sys.disk_free_gb": "2", "sys.os": "U"}
    assert list(_format.differences(a, b)) == ["sys.gpu_link", "sys.cpu"]
    assert list(_format.differences(a, b, include_volatile=True)) == [
        "sys.gpu_link",
        "sys.cpu",
        "sys.disk_free_gb",
    ]
    assert _format.differences(a, a) == {}
    assert _format.differences({"sys.cpu": "X"}, {})["sys.cpu"] == ("X", None)


def test_a_ledger_is_no_difference_of_hardware() -> None:
    """One run with a ledger, one without (or two ledgers, each node's): no difference, even with --all."""
    machine = {"sys.cpu": "X", "sys.gpu": "None"}
    counted = {**machine, "sys.ledger": "cpu energy: no RAPL package zone", "sys.node1.ledger": "gpu: none"}
    assert _format.differences(machine, counted, include_volatile=True) == {}
    assert _format.differences(counted, {**machine, "sys.ledger": "gpu: no GPU"}) == {}


def test_durations_read_for_people() -> None:
    """Milliseconds below a second, then seconds, minutes, hours."""
    assert [_format.format_duration(s) for s in (0.04, 1.25, 252.0, 5400.0, None)] == [
        "40 ms",
        "1.2 s",
        "4.2 min",
        "1.5 h",
        "-",
    ]


def test_summary_groups_by_machine_and_labels_untagged_runs() -> None:
    """Most used kind first; untagged runs last under their own label; columns nobody has are dropped."""
    runs = [
        _run(
            {"sys.cpu": "X", "sys.gpu": "G", "sys.cpu_available": "2"}, 0.04, metrics={"sys.gpu_hours": 0.5}
        ),
        _run(  # a two-node run: its nodes' ledgers add up
            {"sys.cpu": "X", "sys.gpu": "G", "sys.cpu_available": "2"},
            0.06,
            metrics={
                "sys.node0.gpu_hours": 0.25,
                "sys.node1.gpu_hours": 0.25,
                "sys.node1.gpu_energy_wh": 12.5,
            },
        ),
        _run({"sys.cpu": "Y", "sys.gpu": "None", "sys.cpu_available": "4", "sys.memory_limit_gb": "8"}, None),
        _run({"mlflow.user": "me"}, 3.0),
    ]
    rows = _format.summarize(runs)
    assert [(r["cpu"], r["runs"], r["median_duration_s"], r["tagged"]) for r in rows] == [
        ("X", 2, 0.05, True),
        ("Y", 1, None, True),
        (None, 1, 3.0, False),
    ]
    assert rows[1]["memory_gb"] == "8"  # the container's limit stands for memory
    assert (rows[0]["gpu_hours"], rows[0]["gpu_energy_wh"], rows[1]["gpu_hours"]) == (1.0, 12.5, None)
    assert _format.format_summary(rows).splitlines() == [
        "cpu               cores  memory GB  gpu   runs  median duration  GPU hours  GPU energy Wh",
        "X                 2      -          G     2     50 ms            1          12.5",
        "Y                 4      8          None  1     -                -          -",
        "(no system tags)  -      -          -     1     3.0 s            -          -",
    ]
    assert _format.format_summary([]) == "(no runs)"


def test_aligned_columns() -> None:
    """Left-aligned columns two spaces apart, no trailing blanks."""
    assert _format.aligned([["a", "bb"], ["ccc", "d"]]) == "a    bb\nccc  d"


def test_numbers_of_the_ledger_are_plain() -> None:
    """Three significant digits, never an exponent a reader must decode."""
    assert [_format.plain_number(v) for v in (4.5e-05, 0.7821, 1.0, 12.345, 1234.5, 0.0, 250000.0)] == [
        "0.000045",
        "0.782",
        "1",
        "12.3",
        "1234",
        "0",
        "250000",
    ]
