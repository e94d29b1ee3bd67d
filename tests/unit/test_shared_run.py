"""Who writes which keys on a run that a multi-node job shares: node 0 plain keys, node k sys.node<k>.*."""

from __future__ import annotations

from mlflow_sysmetrics import _shared_run
from mlflow_sysmetrics.collectors import distributed


def test_the_multi_node_scheme_covers_the_new_facts() -> None:
    """Node 1 writes its fabric and link as sys.node1.network and sys.node1.gpu_link."""
    tags = {"sys.network": "8x 400 Gb/sec InfiniBand", "sys.gpu_link": "PCIe Gen5 x16"}
    info = distributed.DistInfo(rank=8, local_rank=0, world_size=16, node_rank=1, nodes=2)
    assert _shared_run.shared_run_tags(tags, info) == {
        "sys.node1.network": "8x 400 Gb/sec InfiniBand",
        "sys.node1.gpu_link": "PCIe Gen5 x16",
    }


def test_shared_run_without_node_index_has_one_writer() -> None:
    """Open MPI: nodes cannot be named, so only rank 0 writes (as node 0); no two writers share a key."""
    from mlflow_sysmetrics._shared_run import shared_run_tags

    tags = {"sys.cpu": "X", "sys.dist.world_size": "4"}
    writers = [
        shared_run_tags(tags, distributed.DistInfo(rank=rank, local_rank=rank // 2, world_size=4))
        for rank in range(4)
    ]
    assert writers == [{"sys.cpu": "X", "sys.dist.world_size": "4"}, None, None, None]


def test_shared_run_keys_per_node() -> None:
    """On a run shared by a job: node 0 writes plain keys, node k sys.node<k>.*, others nothing."""
    from mlflow_sysmetrics._shared_run import shared_run_tags
    from mlflow_sysmetrics.tags import node_key

    tags = {"sys.cpu": "X", "sys.dist.rank": "5", "sys.dist.world_size": "8", "sysmetrics.error": "gpu: boom"}
    node0 = shared_run_tags(tags, distributed.DistInfo(rank=0, local_rank=0, world_size=8, node_rank=0))
    node2 = shared_run_tags(tags, distributed.DistInfo(rank=4, local_rank=0, world_size=8, node_rank=2))
    other = shared_run_tags(tags, distributed.DistInfo(rank=5, local_rank=1, world_size=8, node_rank=2))
    assert node0 == {"sys.cpu": "X", "sys.dist.world_size": "8", "sysmetrics.error": "gpu: boom"}
    assert node2 == {"sys.node2.cpu": "X", "sysmetrics.node2.error": "gpu: boom"}
    assert other is None
    assert node_key("sys.gpu", 0) == "sys.gpu"


def test_placement_is_the_launchers_own_elsewhere() -> None:
    """Only TorchDistributor's tasks are placed by machine; torchrun's nodes are its own."""
    info = distributed.DistInfo(rank=3, local_rank=1, world_size=4, node_rank=1, nodes=2, launcher="torchrun")
    assert _shared_run.placed(info) is info
    assert not _shared_run.replaces_creators_facts(info)
    assert _shared_run.replaces_creators_facts(info._replace(launcher=distributed.TORCH_DISTRIBUTOR))
