"""``mlflow-sysmetrics why RUN_ID [--than RUN]``: what likely held a run back, in words and numbers."""

from __future__ import annotations

import click

from .. import _why
from . import _store
from ._output import emit, json_option


@click.command()
@click.argument("run_id", callback=_store.checked_run_id)
@click.option("--than", "than", default=None, metavar="RUN", help="Explain how RUN_ID differs from run RUN.")
@json_option
@_store.tracking_uri_option
@click.pass_context
def why(
    ctx: click.Context, *, run_id: str, than: str | None, as_json: bool, tracking_uri: str | None
) -> None:
    """Say what likely held run RUN_ID back, strongest first, with the numbers and the rule behind each.

    The rules read the run's tags and its ledger (the counters read at its start and end);
    with --than, the facts that differ between the two runs come first, then the limits
    counted on one and not the other.

    \b
    Examples:
      mlflow-sysmetrics why 3f2a9c1e0b7d4e5f8a6b1c2d3e4f5a6b
      mlflow-sysmetrics why SLOW_RUN --than FAST_RUN
      mlflow-sysmetrics why SLOW_RUN --json
    """
    store = _store.existing(ctx, tracking_uri)
    run = _store.get_run(store, run_id)
    other = None
    if than is not None:
        other = _store.get_run(store, _store.checked_run_id(ctx, click.Option(["--than"]), than))
    explanation = _why.explained(run, other)
    emit(as_json, explanation.as_dict(), str(explanation))
