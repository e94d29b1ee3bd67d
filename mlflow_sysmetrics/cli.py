"""The ``mlflow-sysmetrics`` command: see, record and compare what runs ran on.

``python -m mlflow_sysmetrics`` is the same command. The click wiring is here; what is
printed is made by :mod:`._format`. Called in-process (a notebook, click's test runner), the
command changes nothing of the process: the tracking URI goes to the client it makes, never
into the environment or MLflow's global state.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit

import click

from . import _format
from . import tags as T

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

F = TypeVar("F", bound=Callable[..., Any])

#: A run id as MLflow makes them (32 hex digits), for the help texts.
EXAMPLE_RUN = "3f2a9c1e0b7d4e5f8a6b1c2d3e4f5a6b"
OTHER_RUN = "91c0d2e3f4a5b6c7d8e9f0a1b2c3d4e5"
#: Seconds a tracking server has to accept a connection before the command gives up.
CONNECT_TIMEOUT = 5.0
URI_HELP = "Tracking store or server (default: MLFLOW_TRACKING_URI, else a store in this folder)."


def _fail(message: str) -> click.ClickException:
    """One line, cut (if at all) at a word, never mid-word."""
    text = " ".join(message.split()) or "failed"
    if len(text) > 300:
        text = text[:300].rsplit(" ", 1)[0] + " ..."
    return click.ClickException(text)


def _tracking_uri_option(command: F) -> F:
    return click.option("--tracking-uri", "tracking_uri", default=None, help=URI_HELP)(command)


def _uri(ctx: click.Context, given: str | None) -> str | None:
    """The store named on the subcommand, else on the command, else by MLFLOW_TRACKING_URI."""
    return given or ctx.obj.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI") or None


def _local_path(uri: str) -> str | None:
    """The file or folder a ``sqlite:///`` or ``file:`` URI (or a bare path) points at."""
    parts = urlsplit(uri)
    if parts.scheme == "sqlite":
        path = unquote(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else ""
        return path if path and path != ":memory:" else None
    if parts.scheme == "file":
        return unquote(parts.path)
    if parts.scheme == "" or (len(parts.scheme) == 1 and sys.platform == "win32"):
        return uri
    return None


def _reach(uri: str) -> None:
    """Fail in seconds, with a whole sentence, when an http(s) tracking server cannot be reached."""
    parts = urlsplit(uri)
    host = parts.hostname or "localhost"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT):
            return
    except socket.gaierror:
        reason = f"the host name {host} is not known"
    except ConnectionRefusedError:
        reason = f"connection refused by {host} on port {port}"
    except TimeoutError:
        reason = f"{host} did not answer on port {port} within {CONNECT_TIMEOUT:g} s"
    except OSError as exc:
        reason = f"{exc.strerror or exc} ({host}, port {port})"
    raise _fail(f"cannot reach the tracking server {uri}: {reason}.")


def _existing_store(ctx: click.Context, given: str | None) -> str:
    """The store a read command reads; it must exist (a read never creates one)."""
    uri = _uri(ctx, given)
    if uri is None:
        if os.path.isfile("mlflow.db"):
            return f"sqlite:///{os.path.abspath('mlflow.db')}"
        if os.path.isdir("mlruns"):
            return os.path.abspath("mlruns")
        raise _fail(
            "no tracking store here: MLFLOW_TRACKING_URI is not set and this folder has no "
            "mlflow.db or mlruns; point at one with --tracking-uri sqlite:///path/to/mlflow.db "
            "or --tracking-uri http://host:5000."
        )
    path = _local_path(uri)
    if path is not None and not os.path.exists(path):
        raise _fail(f"no tracking store at {path} ({uri}); reading never creates one.")
    if urlsplit(uri).scheme in ("http", "https"):
        _reach(uri)
    return uri


def _client(uri: str) -> MlflowClient:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _get_run(client: MlflowClient, uri: str, run_id: str) -> Run:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        code = str(getattr(exc, "error_code", ""))
        if "RESOURCE_DOES_NOT_EXIST" in code or "not found" in str(exc).lower():
            raise _fail(f"no run {run_id} in {uri}") from None
        raise _fail(f"could not read run {run_id} from {uri}: {exc}") from None
    except Exception as exc:  # a bad URI, a server that fails
        raise _fail(f"could not read run {run_id} from {uri}: {exc}") from None


def _system_tags(run: Run) -> dict[str, str]:
    return _format.ordered({k: v for k, v in run.data.tags.items() if T.is_system_key(k)})


def _run_id(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not value or not value.strip():
        raise click.BadParameter(f"takes a run id such as {EXAMPLE_RUN}, not an empty string")
    return value.strip()


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--tracking-uri", "tracking_uri", default=None, help=URI_HELP)
@click.version_option(package_name="mlflow-sysmetrics")
@click.pass_context
def main(ctx: click.Context, tracking_uri: str | None) -> None:
    """Tag MLflow runs with what they ran on, and see, compare and summarise those tags.

    \b
    Examples:
      mlflow-sysmetrics show                 what would be tagged here
      mlflow-sysmetrics demo                 tag a run in a local store and show it
      mlflow-sysmetrics diff RUN_A RUN_B     what differs between two runs' machines
    """
    ctx.obj = {"tracking_uri": tracking_uri}


@main.command()
@click.argument("run_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_tracking_uri_option
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
    if run_id is None:
        from ._engine import collect

        tags = _format.ordered(collect())
    else:
        uri = _existing_store(ctx, tracking_uri)
        client = _client(uri)
        run = _get_run(client, uri, run_id)
        tags = _system_tags(run)
        heading = f"Run {run_id}{_run_label(client, run)}\n\n"
    nodes = _format.nodes_of(tags)
    if as_json:
        _emit_json({"tags": tags, "nodes": nodes} if nodes else tags)
        return
    if run_id is not None and not tags:
        click.echo(f"{heading}has no system tags; tag it with: mlflow-sysmetrics log {run_id}")
        return
    text = heading + _format.format_table(tags)
    if nodes:
        text += "\n\nNodes\n" + _format.format_nodes(nodes)
    click.echo(text)


def _run_label(client: MlflowClient, run: Run) -> str:
    """`` ("name") in experiment "x"`` for a heading; what cannot be read is left out."""
    name = f' ("{run.info.run_name}")' if run.info.run_name else ""
    try:
        experiment = client.get_experiment(run.info.experiment_id).name
    except Exception:  # the heading is a courtesy: never fail the command for it
        experiment = run.info.experiment_id
    return f'{name} in experiment "{experiment}"'


@main.command()
@click.argument("run_id", callback=_run_id)
@click.option("--snapshot", is_flag=True, help="Also log sysmetrics/system.json, the full detail.")
@click.option(
    "--overwrite", is_flag=True, help="Replace system tags the run already carries from another machine."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_tracking_uri_option
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

    \b
    Example:
      mlflow-sysmetrics log 3f2a9c1e0b7d4e5f8a6b1c2d3e4f5a6b --snapshot
    """
    uri = _existing_store(ctx, tracking_uri)
    client = _client(uri)
    _get_run(client, uri, run_id)  # a clear error for a run that does not exist
    from .runs import tag_run

    try:
        outcome = tag_run(run_id, client, snapshot=snapshot, overwrite=overwrite)
    except Exception as exc:
        raise _fail(f"could not tag run {run_id}: {exc}") from None
    if outcome.kept:
        first = "; ".join(
            f"{key} is {run!r} on the run, {here!r} here"
            for key, (run, here) in list(outcome.kept.items())[:3]
        )
        raise _fail(
            f"run {run_id} already carries system tags from another machine ({first}); kept them. "
            "Add --overwrite to replace them."
        )
    written = _format.ordered(outcome.written)
    if as_json:
        _emit_json(written)
    elif written:
        click.echo(f"Tagged run {run_id}:\n" + _format.format_table(written))
    else:
        click.echo(f"Run {run_id} already carries this machine's system tags; nothing written.")


@main.command()
@click.argument("run_a")
@click.argument("run_b")
@click.option("--all", "include_volatile", is_flag=True, help="Also compare free disk space.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_tracking_uri_option
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
    uri = _existing_store(ctx, tracking_uri)
    client = _client(uri)
    tags = []
    for run_id in (run_a, run_b):
        found = _system_tags(_get_run(client, uri, run_id))
        if not found:
            raise _fail(f"run {run_id} has no system tags; tag it with: mlflow-sysmetrics log {run_id}")
        tags.append(found)
    rows = _format.differences(tags[0], tags[1], include_volatile)
    if as_json:
        differences = {k: {"a": a, "b": b} for k, (a, b) in rows.items()}
        _emit_json({"run_a": run_a, "run_b": run_b, "same_hardware": not rows, "differences": differences})
        return
    if not rows:
        click.echo(f"Same hardware: runs {run_a} and {run_b} have the same system tags.")
        return
    table = [["tag", run_a, run_b]] + [[key, a or "-", b or "-"] for key, (a, b) in rows.items()]
    click.echo(_format.aligned(table))


@main.command()
@click.option("--experiment", "experiment_name", required=True, help="Name of the experiment.")
@click.option(
    "--filter",
    "filter_string",
    default="",
    help="MLflow search filter, e.g. \"attributes.status = 'FINISHED'\".",
)
@click.option(
    "--max-runs", type=click.IntRange(min=1), default=None, help="Read at most this many runs (newest first)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_tracking_uri_option
@click.pass_context
def summary(
    ctx: click.Context,
    *,
    experiment_name: str,
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

    \b
    Examples:
      mlflow-sysmetrics summary --experiment training
      mlflow-sysmetrics summary --experiment training --filter "params.lr = '0.01'" --max-runs 5000
    """
    uri = _existing_store(ctx, tracking_uri)
    client = _client(uri)
    try:
        experiment = client.get_experiment_by_name(experiment_name)
    except Exception as exc:
        raise _fail(f"could not read experiments from {uri}: {exc}") from None
    if experiment is None:
        raise _fail(f"no experiment named {experiment_name!r} in {uri}")
    try:
        runs = list(_runs(client, experiment.experiment_id, filter_string, max_runs))
    except Exception as exc:
        raise _fail(f"could not read the runs of {experiment_name!r} from {uri}: {exc}") from None
    rows = _format.summarize(runs)
    if as_json:
        _emit_json({"experiment": experiment_name, "runs": len(runs), "kinds": rows})
        return
    click.echo(_format.format_summary(rows))


def _runs(
    client: MlflowClient, experiment_id: str, filter_string: str, max_runs: int | None
) -> Iterator[Any]:
    """The experiment's runs, page by page, with a count on standard error when it is a terminal."""
    progress = sys.stderr.isatty()
    token = None
    seen = 0
    while True:
        want = 1000 if max_runs is None else min(1000, max_runs - seen)
        page = client.search_runs([experiment_id], filter_string, max_results=want, page_token=token)
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


@main.command()
@click.option("--experiment", "experiment_name", default="sysmetrics-demo", show_default=True)
@_tracking_uri_option
@click.pass_context
def demo(ctx: click.Context, experiment_name: str, tracking_uri: str | None) -> None:
    """Tag a run in a local store, print its tags, and say how to see them in the MLflow UI.

    Uses --tracking-uri or MLFLOW_TRACKING_URI when set, else a SQLite store (mlflow.db) in
    the current folder, which it creates.

    \b
    Example:
      mlflow-sysmetrics demo
    """
    uri = _uri(ctx, tracking_uri) or "sqlite:///mlflow.db"
    if urlsplit(uri).scheme in ("http", "https"):
        _reach(uri)
    from .runs import log_sysmetrics

    try:
        client = _client(uri)
        found = client.get_experiment_by_name(experiment_name)
        experiment_id = found.experiment_id if found else client.create_experiment(experiment_name)
        run = client.create_run(experiment_id, run_name="sysmetrics-demo")
        log_sysmetrics(run.info.run_id, client=client)
        client.log_param(run.info.run_id, "demo", "true")
        client.log_metric(run.info.run_id, "answer", 42.0)
        client.set_terminated(run.info.run_id)
    except ModuleNotFoundError as exc:
        raise _fail(
            f"the local store needs the full MLflow package ({exc.name} is missing): "
            "pip install 'mlflow-sysmetrics[mlflow]'"
        ) from None
    except Exception as exc:
        raise _fail(f"could not write a run to {uri}: {exc}") from None
    tags = _system_tags(_get_run(client, uri, run.info.run_id))
    click.echo(f"Run {run.info.run_id} in experiment {experiment_name!r} ({uri}) has these system tags:\n")
    click.echo(_format.format_table(tags))
    if uri.startswith("sqlite:"):
        ui = f"mlflow ui --backend-store-uri {uri}"
        link = f"http://127.0.0.1:5000/#/experiments/{experiment_id}/runs/{run.info.run_id}"
        click.echo(f"\nSee them in the MLflow UI:\n  {ui}\n  then open {link}")
    click.echo("\nTag every run implicitly with: export MLFLOW_RUN_CONTEXT_PROVIDER=sysmetrics")


@main.command(name="run", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option(
    "--experiment",
    default=None,
    help="Experiment name or id (default: MLFLOW_EXPERIMENT_NAME or MLFLOW_EXPERIMENT_ID, else Default).",
)
@click.option("--run-name", default=None, help="Name of the run it starts.")
@_tracking_uri_option
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
    import mlflow

    uri = _uri(ctx, tracking_uri) or mlflow.get_tracking_uri()
    if urlsplit(uri).scheme in ("http", "https"):
        _reach(uri)
    from ._run_command import run_program

    try:
        run_id, code = run_program(command, _client(uri), experiment=experiment, run_name=run_name)
    except FileNotFoundError as exc:
        raise _fail(f"cannot run {command[0]!r}: {exc.strerror or exc}") from None
    except PermissionError as exc:
        raise _fail(f"cannot run {command[0]!r}: {exc.strerror or exc}") from None
    except Exception as exc:
        raise _fail(f"could not run {command[0]!r} in a run at {uri}: {exc}") from None
    click.echo(f"mlflow-sysmetrics: run {run_id} ({uri}); {command[0]} exited with {code}", err=True)
    ctx.exit(code)


def script() -> None:
    """The ``mlflow-sysmetrics`` program: :func:`main` in a process of its own.

    A server that accepts a connection but does not answer should fail the command in
    seconds, not after MLflow's retries with back-off (minutes): in its own process the
    command may set MLflow's HTTP settings, which it never does when called in-process.
    """
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    main(prog_name="mlflow-sysmetrics")
