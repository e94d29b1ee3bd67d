"""``mlflow-sysmetrics show [RUN_ID]``: the system tags of this machine, or of a run."""

from __future__ import annotations

import click

from .. import _format
from . import _store
from ._output import emit, json_option


@click.command()
@click.argument("run_id", required=False)
@json_option
@_store.tracking_uri_option
@click.pass_context
def show(ctx: click.Context, *, run_id: str | None, as_json: bool, tracking_uri: str | None) -> None:
    """Show the system tags of this machine, or of run RUN_ID.

    \b
    Examples:
      mlflow-sysmetrics show
      mlflow-sysmetrics show --json
      mlflow-sysmetrics show 3f2a9c1e0b7d4e5f8a6b1c2d3e4f5a6b
    """
    heading = ""
    ledger: dict[str, float] = {}
    if run_id is None:
        from .._collection import collect

        tags = _format.ordered(collect())
    else:
        store = _store.existing(ctx, tracking_uri)
        run = _store.get_run(store, run_id)
        tags = _store.system_tags(run)
        ledger = _format.ledger_of(run.data.metrics)
        heading = f"Run {run_id}{_store.run_label(store, run)}\n\n"
    nodes = _format.nodes_of(tags)
    extra = {**({"nodes": nodes} if nodes else {}), **({"ledger": ledger} if ledger else {})}
    data = {"tags": tags, **extra} if extra else tags
    if run_id is not None and not tags:
        text = f"{heading}has no system tags; tag it with: mlflow-sysmetrics log {run_id}"
    else:
        text = heading + _format.format_table(tags, ledger)
        if nodes:
            text += "\n\nNodes\n" + _format.format_nodes(nodes)
    emit(as_json, data, text)
