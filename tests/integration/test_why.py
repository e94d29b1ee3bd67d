"""``why`` against the real server: runs written through MLflow's client, read back and explained.

The runs' tags and metrics are logged as a run's ledger would leave them (one run's GPUs
capped at 500 W and held down by the cap, the other's at 700 W); ``why`` reads them over HTTP.
"""

from __future__ import annotations

import json

import mlflow
from mlflow.entities import Metric, RunTag

from mlflow_sysmetrics import why
from tests.integration.conftest import Proxy

FACTS = {
    "sys.gpu": "NVIDIA H100 80GB HBM3",
    "sys.gpu_count": "8",
    "sys.gpu_link": "PCIe Gen5 x16, NVLink 18 links",
    "sys.ledger": "everything counted",
}
START = 1_700_000_000_000


def _run(client: mlflow.MlflowClient, tags: dict[str, str], metrics: dict[str, float], seconds: int) -> str:
    """A finished run of ``seconds`` carrying ``tags`` and ``metrics``, written in one batch."""
    experiment = client.get_experiment_by_name("Default")
    assert experiment is not None
    run = client.create_run(experiment.experiment_id, start_time=START, run_name="why")
    client.log_batch(
        run.info.run_id,
        metrics=[Metric(k, v, START + seconds * 1000, 0) for k, v in metrics.items()],
        tags=[RunTag(k, v) for k, v in tags.items()],
    )
    client.set_terminated(run.info.run_id, end_time=START + seconds * 1000)
    return run.info.run_id


def test_why_explains_a_run_and_its_difference_from_another(tracking: Proxy) -> None:
    """The capped run's power cap is found; against the other run, the 500 W limit comes first."""
    client = mlflow.MlflowClient()
    capped = _run(
        client,
        {**FACTS, "sys.gpu_power_limit_w": "500"},
        {"sys.gpu_throttle_power_pct": 31.0, "sys.gpu_busy_pct": 92.0, "sys.gpu_hours": 10.9},
        4920,
    )
    full = _run(
        client,
        {**FACTS, "sys.gpu_power_limit_w": "700"},
        {"sys.gpu_throttle_power_pct": 0.0, "sys.gpu_busy_pct": 94.0, "sys.gpu_hours": 9.07},
        4080,
    )

    tracking.reset()
    alone = why(capped)
    assert tracking.count("GET", "/runs/get") == 1
    assert [f.rule for f in alone.findings] == ["gpu-power-cap"]
    assert str(alone).splitlines() == [
        f"Run {capped} (1.4 h)",
        "",
        "1 likely limit, strongest first:",
        "  gpu-power-cap  GPU power cap: clocks held down 31 % of the run, limit 500 W",
    ]

    tracking.reset()
    against = why(capped, than=full, tracking_uri=tracking.url)
    assert tracking.count("GET", "/runs/get") == 2
    assert against.comparison is not None
    assert against.comparison.facts == {"sys.gpu_power_limit_w": ("500", "700")}
    text = str(against)
    assert text.startswith(f"Run {capped} took 1.21x the time of run {full} (1.4 h vs 1.1 h).")
    assert text.index("sys.gpu_power_limit_w") < text.index("gpu-power-cap")
    data = json.loads(json.dumps(against.as_dict()))
    assert (data["run"], data["than"]) == (capped, full)
    assert [change["rule"] for change in data["comparison"]["limits"]] == ["gpu-power-cap"]
    assert data["comparison"]["limits"][0]["b"] is None

    untouched = why(full, client=client)
    assert untouched.findings == []
    assert str(untouched).endswith("Nothing found: no rule fired on what the run counted.")


def test_the_why_command_prints_the_same_as_the_function(tracking: Proxy) -> None:
    """``mlflow-sysmetrics why RUN [--than RUN] [--json]`` against the server: the function's text and JSON."""
    from click.testing import CliRunner

    from mlflow_sysmetrics.cli import main

    client = mlflow.MlflowClient()
    capped = _run(client, {**FACTS, "sys.gpu_power_limit_w": "500"}, {"sys.gpu_throttle_power_pct": 31.0}, 60)
    full = _run(client, {**FACTS, "sys.gpu_power_limit_w": "700"}, {"sys.gpu_throttle_power_pct": 0.0}, 50)
    runner = CliRunner()
    alone = runner.invoke(main, ["why", capped, "--tracking-uri", tracking.url], catch_exceptions=False)
    assert alone.exit_code == 0
    assert str(why(capped)) == alone.output.rstrip("\n")
    against = runner.invoke(
        main,
        ["why", capped, "--than", full, "--json", "--tracking-uri", tracking.url],
        catch_exceptions=False,
    )
    assert json.loads(against.output) == json.loads(json.dumps(why(capped, than=full).as_dict()))
    missing = runner.invoke(main, ["why", "0" * 32, "--tracking-uri", tracking.url])
    assert missing.exit_code == 1
    assert missing.output == f"Error: no run {'0' * 32} in {tracking.url}\n"
