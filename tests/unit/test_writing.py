"""Writing to a run: the rules that need no store.

Which keys a replacement deletes, the wording of kept facts, which node writes. Writing to a
real store is tested in tests/integration/test_runs.py.
"""

from __future__ import annotations

from mlflow_sysmetrics import _writing
from mlflow_sysmetrics.collectors.distributed import DistInfo


def test_a_replacement_deletes_the_table_facts_the_new_set_lacks() -> None:
    """Any node's fact the new set lacks goes; the ledger's tag, a user's tag and an unknown sys key stay."""
    carried = [
        "sys.gpu",
        "sys.node1.gpu",
        "sys.cpu",
        "sys.ledger",
        "sys.node1.ledger",
        "sys.my_own_tag",
        "team",
        "sysmetrics.error",
    ]
    assert _writing.stale_keys(carried, {"sys.cpu": "x"}) == ["sys.gpu", "sys.node1.gpu", "sysmetrics.error"]


def test_kept_facts_are_worded_once_for_every_door() -> None:
    """The first three kept facts, each with the run's value and this machine's."""
    kept = {
        "sys.cpu": ("Intel(R) Xeon(R) Processor", "AMD EPYC 7R13 Processor"),
        "sys.gpu": (None, "None"),
        "sys.os": ("a", "b"),
        "sys.python": ("3.11.7", "3.12.1"),
    }
    expected = (
        "sys.cpu is 'Intel(R) Xeon(R) Processor' on the run, 'AMD EPYC 7R13 Processor' here; "
        "sys.gpu is None on the run, 'None' here; sys.os is 'a' on the run, 'b' here"
    )
    assert expected == _writing.kept_summary(kept)


def test_which_node_writes_on_a_shared_run() -> None:
    """Alone: node 0, every key. Node 1's local rank 0: node 1's keys. Its local rank 1: nothing."""
    tags = {"sys.gpu": "NVIDIA H100 80GB HBM3", "sys.dist.rank": "5"}
    assert (tags, 0) == _writing.node_tags(tags, DistInfo())
    writer = DistInfo(rank=4, local_rank=0, world_size=8, node_rank=1, nodes=2)
    assert _writing.node_tags(tags, writer) == ({"sys.node1.gpu": "NVIDIA H100 80GB HBM3"}, 1)
    other = writer._replace(rank=5, local_rank=1)
    assert _writing.node_tags(tags, other) == ({"sys.node1.gpu": "NVIDIA H100 80GB HBM3"}, None)
