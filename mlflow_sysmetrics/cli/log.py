"""``mlflow-sysmetrics log RUN_ID``: tag an existing run with this machine's system tags."""

from __future__ import annotations

import click

from .. import _format
from . import _store
from ._output import emit, fail, json_option


@click.command()
@click.argument("run_id", callback=_store.checked_run_id)
@click.option("--snapshot", is_flag=True, help="Also log sysmetrics/system.json, the full detail.")
@click.option(
    "--overwrite", is_flag=True, help="Replace system tags the run already carries from another machine."
)
@json_option
@_store.tracking_uri_option
@click.pass_context
def log(
    ctx: click.Context,
    *,
    run_id: str,
    snapshot: bool,
    overwrite: bool,
    as_json: bool,
    tracking_uri: str | None,
) -> None:
    """Tag the existing run RUN_ID with this machine's system tags.

    A run that already carries system tags keeps them: the same ones are not written again,
    and different ones (from another machine) are kept unless --overwrite is given.
    --snapshot logs the snapshot whenever the run's tags are this machine's, also when they
    were there already.

    \b
    Example:
      mlflow-sysmetrics log 3f2a9c1e0b7d4e5f8a6b1c2d3e4f5a6b --snapshot
    """
    store = _store.existing(ctx, tracking_uri)
    _store.get_run(store, run_id)  # a clear error for a run that does not exist
    from .._writing import kept_summary, tag_run

    try:
        # warn=False: the kept facts are said below, once, in the command's words
        # (tag_run's own warning names the Python API's overwrite=True).
        outcome = tag_run(run_id, store.client, snapshot=snapshot, overwrite=overwrite, warn=False)
    except Exception as exc:
        raise _store.store_error(store, exc, f"could not tag run {run_id} in") from None
    if outcome.kept:
        # What to do comes before the differences: a long list is cut at the line's end.
        raise fail(
            f"run {run_id} already carries system tags from another machine; kept them and wrote "
            f"nothing. Add --overwrite to replace them. First differences: {kept_summary(outcome.kept)}"
        )
    written = _format.ordered(outcome.written)
    if written:
        text = f"Tagged run {run_id}:\n\n" + _format.format_table(written)
    elif outcome.snapshot:
        text = f"Run {run_id} already carries this machine's system tags; no tags written."
    else:
        text = f"Run {run_id} already carries this machine's system tags; nothing written."
    if outcome.snapshot:
        text += f"\n\nLogged the snapshot {outcome.snapshot} to the run's artifacts."
    emit(as_json, written, text)
