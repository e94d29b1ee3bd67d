"""``mlflow-sysmetrics summary``: the hardware an experiment's runs used, one row per machine kind."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import click

from .. import _format
from . import _store
from ._output import emit, json_option, quote

#: Experiment names the heading lists before it says "...".
SHOWN_EXPERIMENTS = 5


@click.command()
@click.option(
    "--experiment",
    "experiment",
    default=None,
    metavar="NAME_OR_ID",
    help="The experiment's name, or its id (the number the UI shows); a name wins over an equal id. "
    "Default: MLFLOW_EXPERIMENT_NAME or MLFLOW_EXPERIMENT_ID when set, else every experiment "
    "that is not deleted.",
)
@click.option(
    "--filter",
    "filter_string",
    default="",
    help="MLflow search filter, e.g. \"attributes.status = 'FINISHED'\".",
)
@click.option(
    "--max-runs", type=click.IntRange(min=1), default=None, help="Read at most this many runs (newest first)."
)
@json_option
@_store.tracking_uri_option
@click.pass_context
def summary(
    ctx: click.Context,
    *,
    experiment: str | None,
    filter_string: str,
    max_runs: int | None,
    as_json: bool,
    tracking_uri: str | None,
) -> None:
    """Show the hardware an experiment's runs used: one row per machine kind.

    A kind is the CPU, the cores and memory the runs could use (a container's quota and
    limit where one was set), the GPU, its count, power limit and links, the network fabric
    and the frameworks; each row gives how many runs used it and their median duration
    (finished runs). Runs without system tags have a row of their own.

    --experiment takes a name or an id. A value that is both (an experiment named "3" in a
    store that also has an experiment with id 3) means the name: every experiment can be
    named by its name, and the note on standard error names the other. Without
    --experiment: the one MLFLOW_EXPERIMENT_NAME or MLFLOW_EXPERIMENT_ID names (as MLflow
    reads them), else every experiment that is not deleted. The first line says which.

    \b
    Examples:
      mlflow-sysmetrics summary
      mlflow-sysmetrics summary --experiment training
      mlflow-sysmetrics summary --experiment 0
      mlflow-sysmetrics summary --experiment training --filter "params.lr = '0.01'" --max-runs 5000
    """
    store = _store.existing(ctx, tracking_uri)
    chosen = _store.experiment(store, experiment, doing="summarising")
    if chosen is not None:
        experiments = [chosen.experiment]
        why = "" if chosen.by == "--experiment" else f", {chosen.by}"
        heading = f"Experiment {quote(chosen.experiment.name)} (id {chosen.experiment.experiment_id}{why})"
    else:
        experiments = _store.every_experiment(store)
        names = ", ".join(quote(e.name) for e in experiments[:SHOWN_EXPERIMENTS])
        more = ", ..." if len(experiments) > SHOWN_EXPERIMENTS else ""
        heading = f"All experiments ({len(experiments)}: {names}{more})"
    try:
        ids = [e.experiment_id for e in experiments]
        runs = list(_runs(store, ids, filter_string, max_runs)) if ids else []
    except Exception as exc:
        raise _store.store_error(store, exc, "could not read the runs from") from None
    rows = _format.summarize(runs)
    data = {
        "experiment": experiments[0].name if len(experiments) == 1 else None,
        "experiments": [{"id": e.experiment_id, "name": e.name} for e in experiments],
        "runs": len(runs),
        "kinds": rows,
    }
    count = f"{len(runs)} run" + ("" if len(runs) == 1 else "s")
    emit(as_json, data, f"{heading}: {count}\n\n" + _format.format_summary(rows))


def _runs(
    store: _store.Store, experiment_ids: list[str], filter_string: str, max_runs: int | None
) -> Iterator[Any]:
    """The experiments' runs, page by page, with a count on standard error when it is a terminal."""
    progress = sys.stderr.isatty()
    token = None
    seen = 0
    while True:
        want = 1000 if max_runs is None else min(1000, max_runs - seen)
        page = store.client.search_runs(experiment_ids, filter_string, max_results=want, page_token=token)
        for run in page:
            seen += 1
            yield run
        if progress:
            click.echo(f"\rread {seen} runs", err=True, nl=False)
        token = page.token
        if not token or (max_runs is not None and seen >= max_runs):
            break
    if progress:
        click.echo("", err=True)
