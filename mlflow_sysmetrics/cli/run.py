"""``mlflow-sysmetrics run -- CMD ...``: run a program you do not edit inside a counted run.

What happens to the program is :mod:`mlflow_sysmetrics._run_command`'s; this module reaches
the store and picks the experiment first, so that a bad store or experiment is one line
before the program starts, and no run is left behind.
"""

from __future__ import annotations

import os

import click

from . import _store
from ._output import fail


@click.command(
    name="run", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@click.option(
    "--experiment",
    default=None,
    metavar="NAME_OR_ID",
    help="The experiment's name, or its id; a name wins over an equal id, and a name no experiment has "
    "is made. Default: MLFLOW_EXPERIMENT_NAME or MLFLOW_EXPERIMENT_ID when set, else Default.",
)
@click.option("--run-name", default=None, help="Name of the run it starts.")
@_store.tracking_uri_option
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def run_command(
    ctx: click.Context,
    *,
    experiment: str | None,
    run_name: str | None,
    tracking_uri: str | None,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND inside a run that counts what it used; exit with COMMAND's code.

    Starts a run tagged with this machine's facts (or joins the one MLFLOW_RUN_ID names),
    gives COMMAND MLFLOW_RUN_ID so that its own MLflow calls log into that run, passes
    signals on, and when COMMAND exits writes what it and its children used (energy,
    peak memory, GPU hours: the run's ledger) and ends the run it started.

    \b
    Example:
      mlflow-sysmetrics run -- python train.py --epochs 3
    """
    store = _store.writable(ctx, tracking_uri, _default_uri)
    from .._run_command import NotStarted, resolve, run_program

    try:  # a program that cannot start: said as a shell says it, before any experiment or run is made
        program = resolve(command[0], os.environ.get("PATH"))
    except NotStarted as exc:
        click.echo(f"mlflow-sysmetrics: {exc}", err=True)
        ctx.exit(exc.code)
    joined = os.environ.get("MLFLOW_RUN_ID")
    experiment_id = None
    if joined:
        _store.get_run(store, joined)  # a run that is not there: said before the program starts
    else:
        chosen = _store.experiment(store, experiment, create=True, doing="running in")
        if chosen is None:
            default = _store.by_experiment_id(store, _store.DEFAULT_EXPERIMENT_ID)
            if default is None:
                raise fail(
                    f"{store.uri} has no Default experiment (id {_store.DEFAULT_EXPERIMENT_ID}); "
                    "name one with --experiment."
                )
            experiment_id = default.experiment_id
        else:
            experiment_id = chosen.experiment.experiment_id
    try:
        run_id, code = run_program(
            command,
            store.client,
            experiment_id=experiment_id,
            run_name=run_name,
            program=program,
            environment={k: v for k, v in os.environ.items() if k not in _store.SET_FOR_THE_COMMAND},
        )
    except NotStarted as exc:  # as a shell says it, and its code: 127 not found, 126 not executable
        ran = f" (run {exc.run_id})" if exc.run_id else ""
        click.echo(f"mlflow-sysmetrics: {exc}{ran}", err=True)
        ctx.exit(exc.code)
    except Exception as exc:
        raise _store.store_error(store, exc, f"could not run {command[0]!r} in a run at") from None
    click.echo(f"mlflow-sysmetrics: run {run_id} ({store.uri}); {command[0]} exited with {code}", err=True)
    ctx.exit(code)


def _default_uri() -> str:
    """The store MLflow itself would use here (``mlflow.set_tracking_uri``'s, else its default)."""
    import mlflow

    return str(mlflow.get_tracking_uri())
