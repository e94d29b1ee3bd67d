"""The device record: tags made of several GPUs' devices, one value per model or one for all."""

from __future__ import annotations

from mlflow_sysmetrics import collect, snapshot
from tests.conftest import Replay, documented


def test_mixed_models_list_power_per_model_and_say_mixed_links(replay: Replay) -> None:
    """Power limits in sys.gpu's order; links that differ are "mixed", each GPU's in the snapshot."""
    replay("mixed-a100-t4")
    tags = collect()
    assert (tags["sys.gpu_power_limit_w"], tags["sys.gpu_link"]) == documented(
        "mixed-a100-t4", "sys.gpu_power_limit_w", "sys.gpu_link"
    )
    links = [(g["name"], g["pcie_generation"], g["pcie_width"]) for g in snapshot()["gpus"]]
    assert links == [
        ("NVIDIA A100-SXM4-80GB", 4, 16),
        ("NVIDIA A100-SXM4-80GB", 4, 16),
        ("Tesla T4", 3, 16),
    ]
