"""``mlflow-sysmetrics diff RUN_A RUN_B``: the system tags that differ between two runs."""

from __future__ import annotations

import click

from .. import _format
from . import _store
from ._output import emit, fail, json_option


@click.command()
@click.argument("run_a")
@click.argument("run_b")
@click.option("--all", "include_volatile", is_flag=True, help="Also compare free disk space.")
@json_option
@_store.tracking_uri_option
@click.pass_context
def diff(
    ctx: click.Context,
    *,
    run_a: str,
    run_b: str,
    include_volatile: bool,
    as_json: bool,
    tracking_uri: str | None,
) -> None:
    """Show the system tags that differ between runs RUN_A and RUN_B.

    The facts that most often explain a slower run (framework versions, GPU power limit and
    links, network fabric) come first. Free disk space differs between any two runs and is
    left out unless --all is given.

    \b
    Example:
      mlflow-sysmetrics diff 3f2a9c1e0b7d4e5f8a6b1c2d3e4f5a6b 91c0d2e3f4a5b6c7d8e9f0a1b2c3d4e5
    """
    store = _store.existing(ctx, tracking_uri)
    tags = []
    for run_id in (run_a, run_b):
        found = _store.system_tags(_store.get_run(store, run_id))
        if not found:
            raise fail(f"run {run_id} has no system tags; tag it with: mlflow-sysmetrics log {run_id}")
        tags.append(found)
    rows = _format.differences(tags[0], tags[1], include_volatile)
    differences = {k: {"a": a, "b": b} for k, (a, b) in rows.items()}
    data = {"run_a": run_a, "run_b": run_b, "same_hardware": not rows, "differences": differences}
    if rows:
        table = [["tag", run_a, run_b]] + [[key, a or "-", b or "-"] for key, (a, b) in rows.items()]
        text = _format.aligned(table)
    else:
        text = f"Same hardware: runs {run_a} and {run_b} have the same system tags."
    emit(as_json, data, text)
