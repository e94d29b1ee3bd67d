"""``mlflow-sysmetrics demo``: tag a run in a local store and show it."""

from __future__ import annotations

import click

from .. import _format
from . import _store
from ._output import quote

#: The store ``demo`` makes when none is named: MLflow's SQLite store in this folder.
LOCAL_STORE = "sqlite:///mlflow.db"


@click.command()
@click.option("--experiment", "experiment_name", default="sysmetrics-demo", show_default=True)
@_store.tracking_uri_option
@click.pass_context
def demo(ctx: click.Context, experiment_name: str, tracking_uri: str | None) -> None:
    """Tag a run in a local store, print its tags, and say how to see them in the MLflow UI.

    Uses --tracking-uri or MLFLOW_TRACKING_URI when set, else a SQLite store (mlflow.db) in
    the current folder, which it creates.

    \b
    Example:
      mlflow-sysmetrics demo
    """
    store = _store.writable(ctx, tracking_uri, lambda: LOCAL_STORE)
    experiment = _store.experiment(store, experiment_name, create=True, doing="writing to")
    assert experiment is not None  # a value is always given: the option has a default
    experiment_id = experiment.experiment.experiment_id
    from ..runs import log_sysmetrics

    client = store.client
    try:
        run = client.create_run(experiment_id, run_name="sysmetrics-demo")
        log_sysmetrics(run.info.run_id, client=client)
        client.log_param(run.info.run_id, "demo", "true")
        client.log_metric(run.info.run_id, "answer", 42.0)
        client.set_terminated(run.info.run_id)
    except Exception as exc:
        raise _store.store_error(store, exc, "could not write a run to") from None
    tags = _store.system_tags(_store.get_run(store, run.info.run_id))
    click.echo(
        f"Run {run.info.run_id} in experiment {quote(experiment.experiment.name)} ({store.uri}) "
        "has these system tags:\n"
    )
    click.echo(_format.format_table(tags))
    if store.uri.startswith("sqlite:"):
        ui = f"mlflow ui --backend-store-uri {store.uri}"
        link = f"http://127.0.0.1:5000/#/experiments/{experiment_id}/runs/{run.info.run_id}"
        click.echo(f"\nSee them in the MLflow UI:\n  {ui}\n  then open {link}")
    click.echo("\nTag every run implicitly with: export MLFLOW_RUN_CONTEXT_PROVIDER=sysmetrics")
