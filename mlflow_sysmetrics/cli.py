"""The ``mlflow-sysmetrics`` command: see, record and compare what runs ran on.

``python -m mlflow_sysmetrics`` is the same command. The click wiring is here; what is
printed is made by :mod:`._format`. Called in-process (a notebook, click's test runner), the
command changes nothing of the process: the tracking URI goes to the client it makes, never
into the environment or MLflow's global state.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import socket
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit

import click

from . import _format
from . import tags as T

if TYPE_CHECKING:
    from mlflow.entities import Experiment, Run
    from mlflow.tracking import MlflowClient

F = TypeVar("F", bound=Callable[..., Any])

#: A run id as MLflow makes them (32 hex digits), for the help texts.
EXAMPLE_RUN = "3f2a9c1e0b7d4e5f8a6b1c2d3e4f5a6b"
OTHER_RUN = "91c0d2e3f4a5b6c7d8e9f0a1b2c3d4e5"
#: Seconds a tracking server has to accept a connection before the command gives up.
CONNECT_TIMEOUT = 5.0
URI_HELP = "Tracking store or server (default: MLFLOW_TRACKING_URI, else a store in this folder)."
#: How the error for an unknown scheme lists the ones MLflow takes: the common ones first,
#: then any other the installed MLflow registers (a plugin's), by name.
SCHEME_ORDER = (
    "http",
    "https",
    "sqlite",
    "file",
    "postgresql",
    "mysql",
    "mssql",
    "databricks",
    "databricks-uc",
    "uc",
)
#: Schemes served by MLflow's SQL store, which only the full MLflow package (SQLAlchemy) has.
SQL_SCHEMES = frozenset({"sqlite", "postgresql", "mysql", "mssql"})
#: Experiment names ``summary`` lists in its heading before it says "...".
SHOWN_EXPERIMENTS = 5
#: A server's address written without its scheme: ``localhost:5000``, ``10.0.0.7:5000/mlflow``.
_HOST_AND_PORT = re.compile(r"[A-Za-z0-9.-]+:[0-9]{1,5}(/\S*)?")


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


def _named(ctx: click.Context, given: str | None, uri: str) -> str:
    """``uri`` as the user wrote it, so that an error points at where to fix it."""
    if given or ctx.obj.get("tracking_uri"):
        return f"--tracking-uri {uri}"
    return f"MLFLOW_TRACKING_URI={uri}"


def _quote(name: str) -> str:
    """A run or experiment name in double quotes, the one style of every message."""
    return json.dumps(name, ensure_ascii=False)


def _server_hint(uri: str) -> str:
    """A hint for a server's address written without ``http://``; empty for anything else."""
    if _HOST_AND_PORT.fullmatch(uri):
        return f" A server's address starts with http://: did you mean http://{uri}?"
    return ""


def _tracking_schemes() -> list[str] | None:
    """The URI schemes the installed MLflow has a tracking store for (plugins' included).

    Read from MLflow's tracking store registry, the table MLflow itself picks a store from;
    ``None`` where an MLflow release no longer has it there.
    """
    try:
        from mlflow.tracking._tracking_service.utils import _tracking_store_registry

        registered = [str(scheme) for scheme in _tracking_store_registry._registry]
    except (ImportError, AttributeError):
        return None
    rank = {scheme: index for index, scheme in enumerate(SCHEME_ORDER)}
    return sorted(registered, key=lambda scheme: (rank.get(scheme, len(rank)), scheme))


def _check_scheme(uri: str, named: str) -> None:
    """Fail in one line when MLflow has no tracking store for the URI's scheme.

    MLflow itself would fail later, in the client's constructor, with a traceback about
    its model registry; this names the scheme and the ones that work instead.
    """
    schemes = _tracking_schemes()
    if schemes is None:
        return  # the client's constructor fails instead (see _client)
    from mlflow.utils.uri import get_uri_scheme

    try:
        scheme: str = get_uri_scheme(uri)  # type: ignore[no-untyped-call]
    except Exception as exc:  # a database URI with a malformed driver part, as MLflow says it
        raise _fail(f"{named}: {exc}") from None
    if scheme in schemes:
        return
    if scheme in SQL_SCHEMES:
        raise _fail(
            f"{named}: a {scheme} store needs the full MLflow package (SQLAlchemy): "
            "pip install 'mlflow-sysmetrics[mlflow]'"
        )
    hint = _server_hint(uri)
    close = difflib.get_close_matches(scheme, [s for s in schemes if s], n=1, cutoff=0.6)
    if not hint and close and uri.lower().startswith(f"{scheme}:"):
        hint = f" Did you mean {close[0]}{uri[len(scheme) :]}?"
    takes = ", ".join(s for s in schemes if s) + (", or a path" if "" in schemes else "")
    raise _fail(f'{named}: MLflow has no tracking store for the scheme "{scheme}".{hint} It takes {takes}.')


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
    _check_scheme(uri, _named(ctx, given, uri))
    path = _local_path(uri)
    if path is not None and not os.path.exists(path):
        named = path if path == uri else f"{path} ({uri})"
        raise _fail(f"no tracking store at {named}; reading never creates one.{_server_hint(uri)}")
    if urlsplit(uri).scheme in ("http", "https"):
        _reach(uri)
    return uri


def _client(uri: str) -> MlflowClient:
    from mlflow.tracking import MlflowClient
    from mlflow.tracking.registry import UnsupportedModelRegistryStoreURIException

    try:
        return MlflowClient(tracking_uri=uri)
    except UnsupportedModelRegistryStoreURIException as exc:  # where _check_scheme could not look
        raise _fail(f"MLflow cannot use {uri}: {exc}") from None


def _not_tracking_api(exc: BaseException) -> bool:
    """Whether the server answered, but not as MLflow's REST API answers.

    A 404 that is not MLflow's JSON error (a wrong path under the server, another service
    on that port), a success that is not JSON (a web page: the UI's address, a login page),
    or a JSON error without MLflow's ``error_code``. MLflow's own "no such run" is a JSON
    error with ``RESOURCE_DOES_NOT_EXIST``, which none of these is.
    """
    from mlflow.exceptions import MlflowException, RestException

    if isinstance(exc, RestException):
        body = getattr(exc, "json", None)
        return isinstance(body, dict) and "error_code" not in body
    if isinstance(exc, MlflowException):
        return exc.error_code == "ENDPOINT_NOT_FOUND" or "not in a valid JSON format" in exc.message
    return False


def _wrong_api(uri: str, exc: BaseException) -> click.ClickException:
    """The error for a server that answered, but not as MLflow: name the address, not the run."""
    status = re.search(r"failed with error code (\d+)", str(exc))
    page = "<html" in str(exc).lower() or "<!doctype" in str(exc).lower()
    answer = " ".join(
        ["answered", *([status.group(1)] if status else []), *(["with a web page"] if page else [])]
    )
    parts = urlsplit(uri)
    root = f"{parts.scheme}://{parts.netloc}"
    # Whatever follows the host: a path the server does not serve, a UI page's "#/...".
    extra = uri[len(root) :].rstrip("/") if uri.lower().startswith(root.lower()) else parts.path
    if extra:
        return _fail(
            f"{uri}: the server {answer}, not as MLflow's tracking API: the path is wrong. "
            f"An MLflow server serves its API from its root, as in {root}."
        )
    return _fail(
        f"{uri}: the server {answer}, but not as an MLflow tracking server does. "
        "Is it one, and is this its port?"
    )


def _store_error(uri: str, exc: BaseException, doing: str) -> click.ClickException:
    """One line for a store that failed while ``doing``: a wrong server first, else MLflow's words."""
    if _not_tracking_api(exc):
        return _wrong_api(uri, exc)
    return _fail(f"{doing} {uri}: {exc}")


def _get_run(client: MlflowClient, uri: str, run_id: str) -> Run:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        if _not_tracking_api(exc):
            raise _wrong_api(uri, exc) from None
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
    ledger: dict[str, float] = {}
    if run_id is None:
        from ._engine import collect

        tags = _format.ordered(collect())
    else:
        uri = _existing_store(ctx, tracking_uri)
        client = _client(uri)
        run = _get_run(client, uri, run_id)
        tags = _system_tags(run)
        ledger = _format.ledger_of(run.data.metrics)
        heading = f"Run {run_id}{_run_label(client, run)}\n\n"
    nodes = _format.nodes_of(tags)
    if as_json:
        extra = {**({"nodes": nodes} if nodes else {}), **({"ledger": ledger} if ledger else {})}
        _emit_json({"tags": tags, **extra} if extra else tags)
        return
    if run_id is not None and not tags:
        click.echo(f"{heading}has no system tags; tag it with: mlflow-sysmetrics log {run_id}")
        return
    text = heading + _format.format_table(tags, ledger)
    if nodes:
        text += "\n\nNodes\n" + _format.format_nodes(nodes)
    click.echo(text)


def _run_label(client: MlflowClient, run: Run) -> str:
    """`` ("name") in experiment "x"`` for a heading; what cannot be read is left out."""
    name = f" ({_quote(run.info.run_name)})" if run.info.run_name else ""
    try:
        experiment = client.get_experiment(run.info.experiment_id).name
    except Exception:  # the heading is a courtesy: never fail the command for it
        experiment = run.info.experiment_id
    return f"{name} in experiment {_quote(experiment)}"


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
    --snapshot logs the snapshot whenever the run's tags are this machine's, also when they
    were there already.

    \b
    Example:
      mlflow-sysmetrics log 3f2a9c1e0b7d4e5f8a6b1c2d3e4f5a6b --snapshot
    """
    uri = _existing_store(ctx, tracking_uri)
    client = _client(uri)
    _get_run(client, uri, run_id)  # a clear error for a run that does not exist
    from .runs import tag_run

    try:
        # warn=False: the kept facts are said below, once, in the command's words
        # (tag_run's own warning names the Python API's overwrite=True).
        outcome = tag_run(run_id, client, snapshot=snapshot, overwrite=overwrite, warn=False)
    except Exception as exc:
        raise _store_error(uri, exc, f"could not tag run {run_id} in") from None
    if outcome.kept:
        first = "; ".join(
            f"{key} is {run!r} on the run, {here!r} here"
            for key, (run, here) in list(outcome.kept.items())[:3]
        )
        # What to do comes before the differences: a long list is cut at the line's end.
        raise _fail(
            f"run {run_id} already carries system tags from another machine; kept them and wrote "
            f"nothing. Add --overwrite to replace them. First differences: {first}"
        )
    written = _format.ordered(outcome.written)
    if as_json:
        _emit_json(written)
        return
    if written:
        text = f"Tagged run {run_id}:\n\n" + _format.format_table(written)
    elif outcome.snapshot:
        text = f"Run {run_id} already carries this machine's system tags; no tags written."
    else:
        text = f"Run {run_id} already carries this machine's system tags; nothing written."
    if outcome.snapshot:
        text += f"\n\nLogged the snapshot {outcome.snapshot} to the run's artifacts."
    click.echo(text)


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
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_tracking_uri_option
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
    uri = _existing_store(ctx, tracking_uri)
    client = _client(uri)
    experiments, heading = _chosen_experiments(client, uri, experiment)
    try:
        ids = [e.experiment_id for e in experiments]
        runs = list(_runs(client, ids, filter_string, max_runs)) if ids else []
    except Exception as exc:
        raise _store_error(uri, exc, "could not read the runs from") from None
    rows = _format.summarize(runs)
    if as_json:
        _emit_json(
            {
                "experiment": experiments[0].name if len(experiments) == 1 else None,
                "experiments": [{"id": e.experiment_id, "name": e.name} for e in experiments],
                "runs": len(runs),
                "kinds": rows,
            }
        )
        return
    count = f"{len(runs)} run" + ("" if len(runs) == 1 else "s")
    click.echo(f"{heading}: {count}\n\n" + _format.format_summary(rows))


def _chosen_experiments(client: MlflowClient, uri: str, value: str | None) -> tuple[list[Experiment], str]:
    """The experiments ``summary`` reads, and a heading that names them and why those."""
    if value is not None:
        found = _experiment(client, uri, value)
        return [found], f"Experiment {_quote(found.name)} (id {found.experiment_id})"
    name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or None
    wanted_id = os.environ.get("MLFLOW_EXPERIMENT_ID") or None
    if name is not None:
        # As MLflow reads the two variables: the name first, and an id that contradicts it
        # is an error. Unlike MLflow, a read never creates the experiment.
        try:
            named = client.get_experiment_by_name(name)
        except Exception as exc:
            raise _store_error(uri, exc, "could not read experiments from") from None
        if named is None:
            raise _fail(f"MLFLOW_EXPERIMENT_NAME={name} names no experiment in {uri}")
        if wanted_id is not None and wanted_id != named.experiment_id:
            raise _fail(
                f"MLFLOW_EXPERIMENT_NAME={name} is experiment {named.experiment_id}, but "
                f"MLFLOW_EXPERIMENT_ID={wanted_id}; unset one, or name the experiment with --experiment."
            )
        return [named], f"Experiment {_quote(named.name)} (id {named.experiment_id}, MLFLOW_EXPERIMENT_NAME)"
    if wanted_id is not None:
        by_id = _experiment_by_id(client, uri, wanted_id)
        if by_id is None:
            raise _fail(f"MLFLOW_EXPERIMENT_ID={wanted_id} names no experiment in {uri}")
        return [by_id], f"Experiment {_quote(by_id.name)} (id {by_id.experiment_id}, MLFLOW_EXPERIMENT_ID)"
    every = _active_experiments(client, uri)
    names = ", ".join(_quote(e.name) for e in every[:SHOWN_EXPERIMENTS])
    more = ", ..." if len(every) > SHOWN_EXPERIMENTS else ""
    return every, f"All experiments ({len(every)}: {names}{more})"


def _experiment(client: MlflowClient, uri: str, value: str) -> Experiment:
    """The experiment named ``value``, else the one whose id it is."""
    try:
        named = client.get_experiment_by_name(value)
    except Exception as exc:
        raise _store_error(uri, exc, "could not read experiments from") from None
    # Ids are numbers in every store MLflow has; only a number is looked up as one.
    by_id = _experiment_by_id(client, uri, value) if value.isascii() and value.isdigit() else None
    if named is not None:
        if by_id is not None and by_id.experiment_id != named.experiment_id:
            click.echo(
                f"Note: {_quote(value)} is the name of experiment {named.experiment_id} and the id of "
                f"experiment {_quote(by_id.name)}; summarising the one named {_quote(value)} "
                f"(--experiment {_quote(by_id.name)} for the other).",
                err=True,
            )
        return named
    if by_id is not None:
        return by_id
    also = f" or with the id {value}" if value.isascii() and value.isdigit() else ""
    raise _fail(f"no experiment named {_quote(value)}{also} in {uri}")


def _experiment_by_id(client: MlflowClient, uri: str, experiment_id: str) -> Experiment | None:
    """The experiment with this id; ``None`` when the store has none."""
    from mlflow.exceptions import MlflowException

    try:
        found: Experiment = client.get_experiment(experiment_id)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE") and not _not_tracking_api(
            exc
        ):
            return None
        raise _store_error(uri, exc, "could not read experiments from") from None
    except Exception as exc:
        raise _store_error(uri, exc, "could not read experiments from") from None
    return found


def _active_experiments(client: MlflowClient, uri: str) -> list[Experiment]:
    """Every experiment that is not deleted, by name."""
    found: list[Experiment] = []
    token = None
    try:
        while True:
            page = client.search_experiments(max_results=1000, order_by=["name ASC"], page_token=token)
            found.extend(page)
            token = page.token
            if not token:
                return found
    except Exception as exc:
        raise _store_error(uri, exc, "could not read experiments from") from None


def _runs(
    client: MlflowClient, experiment_ids: list[str], filter_string: str, max_runs: int | None
) -> Iterator[Any]:
    """The experiments' runs, page by page, with a count on standard error when it is a terminal."""
    progress = sys.stderr.isatty()
    token = None
    seen = 0
    while True:
        want = 1000 if max_runs is None else min(1000, max_runs - seen)
        page = client.search_runs(experiment_ids, filter_string, max_results=want, page_token=token)
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
    given = _uri(ctx, tracking_uri)
    uri = given or "sqlite:///mlflow.db"
    if given is not None:
        _check_scheme(given, _named(ctx, tracking_uri, given))
        # MLflow would make a store in a folder named after the server's address.
        if _server_hint(given) and not os.path.exists(given):
            raise _fail(f"no tracking store at {given}, and demo makes none there.{_server_hint(given)}")
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
    except click.ClickException:
        raise
    except Exception as exc:
        raise _store_error(uri, exc, "could not write a run to") from None
    tags = _system_tags(_get_run(client, uri, run.info.run_id))
    click.echo(
        f"Run {run.info.run_id} in experiment {_quote(experiment_name)} ({uri}) has these system tags:\n"
    )
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
    from ._run_command import NotStarted, run_program

    try:
        run_id, code = run_program(command, _client(uri), experiment=experiment, run_name=run_name)
    except NotStarted as exc:  # as a shell says it, and its code: 127 not found, 126 not executable
        ran = f" (run {exc.run_id})" if exc.run_id else ""
        click.echo(f"mlflow-sysmetrics: {exc}{ran}", err=True)
        ctx.exit(exc.code)
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
