"""The ``mlflow-sysmetrics`` command: see, record and compare what runs ran on.

``python -m mlflow_sysmetrics`` is the same command. Each subcommand is a module of this
package, registered below in one line; what they share is in :mod:`._store` (the tracking
store: reaching it, one line for a bad one, the experiment rule, reading a run) and
:mod:`._output` (JSON or text, errors); the text itself is made by
:mod:`mlflow_sysmetrics._format`.

Called in-process (a notebook, click's test runner), the command changes nothing of the
process: the tracking URI goes to the client it makes, never into the environment or
MLflow's global state.
"""

from __future__ import annotations

import os

import click

from . import _store
from .demo import demo
from .diff import diff
from .log import log
from .run import run_command
from .show import show
from .summary import summary
from .why import why

__all__ = ["main", "script"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--tracking-uri", "tracking_uri", default=None, help=_store.URI_HELP)
@click.version_option(package_name="mlflow-sysmetrics")
@click.pass_context
def main(ctx: click.Context, tracking_uri: str | None) -> None:
    """Tag MLflow runs with what they ran on, and see, compare and summarise those tags.

    \b
    Examples:
      mlflow-sysmetrics show                 what would be tagged here
      mlflow-sysmetrics demo                 tag a run in a local store and show it
      mlflow-sysmetrics diff RUN_A RUN_B     what differs between two runs' machines
      mlflow-sysmetrics why RUN              what likely held a run back
    """
    ctx.obj = {"tracking_uri": tracking_uri}


main.add_command(show)
main.add_command(log)
main.add_command(diff)
main.add_command(summary)
main.add_command(demo)
main.add_command(run_command)
main.add_command(why)


def script() -> None:
    """The ``mlflow-sysmetrics`` program: :func:`main` in a process of its own.

    A server that accepts a connection but does not answer should fail the command in
    seconds, not after MLflow's retries with back-off (minutes): in its own process the
    command may set MLflow's HTTP settings, which it never does when called in-process.
    """
    for name, value in _store.COMMAND_HTTP_SETTINGS.items():
        if name not in os.environ:
            os.environ[name] = value
            _store.SET_FOR_THE_COMMAND.add(name)
    main(prog_name="mlflow-sysmetrics")
