"""The tracking store a command talks to: reaching it, one line for a bad one, and the experiment rule.

Every command opens its store here, so that a bad one gets the same one-line answer from
each (a scheme MLflow has no store for, a server's address without ``http://``, a server
that does not answer, a wrong path under a server, a UI page's address), always before the
command writes anything. Reading commands open an :func:`existing` store (a read never
creates one); ``demo`` and ``run`` a :func:`writable` one. Every command that picks an
experiment picks it by :func:`experiment`.

The client is MLflow's, made for the store's URI: the command never changes the
environment or MLflow's global tracking URI, so that it can be called in-process.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import io
import logging
import os
import re
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit

import click

from .. import _format
from .. import tags as T
from .._value import Record
from ._output import fail, note, quote

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
#: The experiment MLflow puts runs in when none is named (every store MLflow makes has it).
DEFAULT_EXPERIMENT_ID = "0"
#: The variable that, set, lets MLflow's own INFO lines through (see :func:`quiet_mlflow`).
MLFLOW_LOGGING_LEVEL = "MLFLOW_LOGGING_LEVEL"
#: A server's address written without its scheme: ``localhost:5000``, ``10.0.0.7:5000/mlflow``.
_HOST_AND_PORT = re.compile(r"[A-Za-z0-9.-]+:[0-9]{1,5}(/\S*)?")
#: MLflow's HTTP settings the command's own requests use where the user set none (``script``):
#: a store that does not answer fails the command in seconds, not after minutes of retries.
COMMAND_HTTP_SETTINGS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
#: Which of them the command set: a program run by ``run`` gets the user's environment, not these.
SET_FOR_THE_COMMAND: set[str] = set()
#: What MLflow's client says of a server's answer that is not its API's JSON.
_STATUS = re.compile(r"failed with error code (\d+)")


class Store(Record):
    """A tracking store a command reaches: its URI as the messages name it, and a client for it."""

    uri: str
    client: MlflowClient


class Chosen(Record):
    """An experiment picked by :func:`experiment`, and what named it (``--experiment``, a variable)."""

    experiment: Experiment
    by: str


# -- options -------------------------------------------------------------------------------


def tracking_uri_option(command: F) -> F:
    """``--tracking-uri``, which every command also takes after its name."""
    return click.option("--tracking-uri", "tracking_uri", default=None, help=URI_HELP)(command)


def checked_run_id(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A click callback: a run id, stripped; an empty one is a usage error."""
    if not value or not value.strip():
        raise click.BadParameter(f"takes a run id such as {EXAMPLE_RUN}, not an empty string")
    return value.strip()


# -- which store ---------------------------------------------------------------------------


def given_uri(ctx: click.Context, given: str | None) -> str | None:
    """The store named on the subcommand, else on the command, else by MLFLOW_TRACKING_URI."""
    return given or ctx.obj.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI") or None


def _named(ctx: click.Context, given: str | None, uri: str) -> str:
    """``uri`` as the user wrote it, so that an error points at where to fix it."""
    if given or ctx.obj.get("tracking_uri"):
        return f"--tracking-uri {uri}"
    return f"MLFLOW_TRACKING_URI={uri}"


def existing(ctx: click.Context, given: str | None) -> Store:
    """The store a reading command reads; it must exist (a read never creates one)."""
    uri = given_uri(ctx, given)
    if uri is None:
        if os.path.isfile("mlflow.db"):
            return _open(f"sqlite:///{os.path.abspath('mlflow.db')}")
        if os.path.isdir("mlruns"):
            return _open(os.path.abspath("mlruns"))
        raise fail(
            "no tracking store here: MLFLOW_TRACKING_URI is not set and this folder has no "
            "mlflow.db or mlruns; point at one with --tracking-uri sqlite:///path/to/mlflow.db "
            "or --tracking-uri http://host:5000."
        )
    path = _checked(ctx, given, uri)
    if path is not None and not os.path.exists(path):
        raise fail(f"no tracking store at {_path_named(path, uri)}; reading never creates one.")
    return _open(uri)


def writable(ctx: click.Context, given: str | None, default: Callable[[], str]) -> Store:
    """The store a writing command writes to (``default()`` when none is named); it may be made.

    Not at an address that looks like a server's written without ``http://``: MLflow would
    make a store in a folder named after it.
    """
    uri = given_uri(ctx, given)
    if uri is None:
        return _open(default())
    _checked(ctx, given, uri)
    return _open(uri)


def _checked(ctx: click.Context, given: str | None, uri: str) -> str | None:
    """The local path ``uri`` names (``None``: not a path); a URI no store can be at fails.

    A scheme MLflow has no store for, and a server's address written without ``http://``
    where no such path exists (MLflow would read it as a folder, and make a store there).
    """
    _check_scheme(uri, _named(ctx, given, uri))
    path = _local_path(uri)
    hint = _server_hint(uri)
    if hint and path is not None and not os.path.exists(path):
        raise fail(f"no tracking store at {_path_named(path, uri)}.{hint}")
    return path


def _open(uri: str) -> Store:
    """A client for ``uri``; a server must answer, and answer as MLflow's tracking API does."""
    served = urlsplit(uri).scheme in ("http", "https")
    if served:
        _reach(uri)
    import mlflow  # noqa: F401  (its loggers set up before they are quietened)

    _quiet_mlflow()
    store = Store(uri, _client(uri))
    if served:
        _probe(store)
    return store


def _path_named(path: str, uri: str) -> str:
    return path if path == uri else f"{path} ({uri})"


# -- diagnosis -----------------------------------------------------------------------------


def _server_hint(uri: str) -> str:
    """A hint for a server's address written without ``http://``; empty for anything else."""
    if _HOST_AND_PORT.fullmatch(uri):
        return f" A server's address starts with http://: did you mean http://{uri}?"
    return ""


def tracking_schemes() -> list[str] | None:
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
    schemes = tracking_schemes()
    if schemes is None:
        return  # the client's constructor fails instead (see _client)
    from mlflow.utils.uri import get_uri_scheme

    try:
        scheme: str = get_uri_scheme(uri)  # type: ignore[no-untyped-call]
    except Exception as exc:  # a database URI with a malformed driver part, as MLflow says it
        raise fail(f"{named}: {exc}") from None
    if scheme in schemes:
        return
    if scheme in SQL_SCHEMES:
        raise fail(
            f"{named}: a {scheme} store needs the full MLflow package (SQLAlchemy): "
            "pip install 'mlflow-sysmetrics[mlflow]'"
        )
    hint = _server_hint(uri)
    close = difflib.get_close_matches(scheme, [s for s in schemes if s], n=1, cutoff=0.6)
    if not hint and close and uri.lower().startswith(f"{scheme}:"):
        hint = f" Did you mean {close[0]}{uri[len(scheme) :]}?"
    takes = ", ".join(s for s in schemes if s) + (", or a path" if "" in schemes else "")
    raise fail(f'{named}: MLflow has no tracking store for the scheme "{scheme}".{hint} It takes {takes}.')


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
    raise fail(f"cannot reach the tracking server {uri}: {reason}.")


def _probe(store: Store) -> None:
    """Ask the server one question its tracking API answers in JSON whatever the store holds.

    The same request for every command, so that a server that is not one (a wrong path, a
    UI page's address, another service on the port) gets the same line from each, and
    before a command writes anything or starts a program.
    """
    try:
        store.client.get_experiment_by_name("Default")
    except Exception as exc:
        raise store_error(store, exc, "could not read experiments from") from None


def _client(uri: str) -> MlflowClient:
    from mlflow.tracking.registry import UnsupportedModelRegistryStoreURIException

    try:
        return _quiet_client()(tracking_uri=uri)
    except UnsupportedModelRegistryStoreURIException as exc:  # where _check_scheme could not look
        raise fail(f"MLflow cannot use {uri}: {exc}") from None
    except ModuleNotFoundError as exc:
        raise _needs_mlflow(uri, exc) from None


def _needs_mlflow(uri: str, exc: ModuleNotFoundError) -> click.ClickException:
    return fail(
        f"{uri}: this store needs the full MLflow package ({exc.name} is missing): "
        "pip install 'mlflow-sysmetrics[mlflow]'"
    )


@functools.cache
def _quiet_client() -> type[MlflowClient]:
    """MLflow's client, without the lines MLflow prints to standard output when a run ends.

    MLflow's client writes "View run ... at" and "View experiment at" to ``sys.stdout``
    when it ends a run on a server; from a command they would mix with its own output (and
    under ``run``, with the program's, whose own MLflow calls print them as they do).
    """
    from mlflow.tracking import MlflowClient

    class QuietClient(MlflowClient):
        def set_terminated(self, run_id: str, status: str | None = None, end_time: int | None = None) -> None:
            with contextlib.redirect_stdout(io.StringIO()):
                super().set_terminated(run_id, status, end_time)

    return QuietClient


def _quiet_mlflow() -> None:
    """MLflow's INFO lines held back until the command ends (its warnings still come through).

    MLflow logs to the console at INFO when it makes a SQLite store ("Creating initial
    MLflow database tables...") and the like; the command says what it did itself. Set here,
    once MLflow is imported (its import sets its loggers' levels), and put back when the
    command's context closes. A user who set ``MLFLOW_LOGGING_LEVEL`` gets what they asked for.
    """
    logger = logging.getLogger("mlflow")
    before = logger.level
    if os.environ.get(MLFLOW_LOGGING_LEVEL) or logger.getEffectiveLevel() >= logging.WARNING:
        return
    logger.setLevel(logging.WARNING)
    # MLflow 2 makes a SQLite store's tables with alembic, whose own logging configuration
    # (fileConfig, read at each migration) sets its logger to INFO again: only a process-wide
    # floor holds those lines back.
    disabled = logging.root.manager.disable
    logging.disable(max(disabled, logging.INFO))

    def put_back() -> None:
        logger.setLevel(before)
        logging.disable(disabled)

    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.call_on_close(put_back)


def _not_tracking_api(exc: BaseException) -> bool:
    """Whether the server answered, but not as MLflow's REST API answers.

    A 404 or 405 that is not MLflow's JSON error (a wrong path under the server, a web page
    that takes no POST, another service on that port), a success that is not JSON (a web
    page: the UI's address, a login page), or a JSON error without MLflow's ``error_code``.
    MLflow's own "no such run" is a JSON error with ``RESOURCE_DOES_NOT_EXIST``, which none
    of these is.
    """
    from mlflow.exceptions import MlflowException, RestException

    if isinstance(exc, RestException):
        body = getattr(exc, "json", None)
        return isinstance(body, dict) and "error_code" not in body
    if isinstance(exc, MlflowException):
        status = _STATUS.search(exc.message)
        return (
            exc.error_code == "ENDPOINT_NOT_FOUND"
            or (status is not None and status.group(1) in ("404", "405"))
            or "not in a valid JSON format" in exc.message
        )
    return False


def _wrong_api(uri: str, exc: BaseException) -> click.ClickException:
    """The error for a server that answered, but not as MLflow: name the address, not the run."""
    status = _STATUS.search(str(exc))
    page = "<html" in str(exc).lower() or "<!doctype" in str(exc).lower()
    answer = " ".join(
        ["answered", *([status.group(1)] if status else []), *(["with a web page"] if page else [])]
    )
    parts = urlsplit(uri)
    root = f"{parts.scheme}://{parts.netloc}"
    # Whatever follows the host: a path the server does not serve, a UI page's "#/...".
    extra = uri[len(root) :].rstrip("/") if uri.lower().startswith(root.lower()) else parts.path
    if extra:
        return fail(
            f"{uri}: the server {answer}, not as MLflow's tracking API: the path is wrong. "
            f"An MLflow server serves its API from its root, as in {root}."
        )
    return fail(
        f"{uri}: the server {answer}, but not as an MLflow tracking server does. "
        "Is it one, and is this its port?"
    )


def store_error(store: Store | str, exc: BaseException, doing: str) -> click.ClickException:
    """One line for a store that failed while ``doing``: a wrong server first, else MLflow's words."""
    uri = store if isinstance(store, str) else store.uri
    if isinstance(exc, ModuleNotFoundError):  # mlflow-skinny, reaching a store only MLflow serves
        return _needs_mlflow(uri, exc)
    if _not_tracking_api(exc):
        return _wrong_api(uri, exc)
    return fail(f"{doing} {uri}: {exc}")


# -- runs ----------------------------------------------------------------------------------


def get_run(store: Store, run_id: str) -> Run:
    """The run ``run_id``; a run the store does not have, or a store that fails, is one line."""
    from mlflow.exceptions import MlflowException

    try:
        return store.client.get_run(run_id)
    except MlflowException as exc:
        if _not_tracking_api(exc):
            raise _wrong_api(store.uri, exc) from None
        code = str(getattr(exc, "error_code", ""))
        if "RESOURCE_DOES_NOT_EXIST" in code or "not found" in str(exc).lower():
            raise fail(f"no run {run_id} in {store.uri}") from None
        raise fail(f"could not read run {run_id} from {store.uri}: {exc}") from None
    except Exception as exc:  # a bad URI, a server that fails
        raise store_error(store, exc, f"could not read run {run_id} from") from None


def system_tags(run: Run) -> dict[str, str]:
    """The run's tags of this package (``sys.*``, ``sysmetrics.*``), in the table's order."""
    return _format.ordered({k: v for k, v in run.data.tags.items() if T.is_system_key(k)})


def run_label(store: Store, run: Run) -> str:
    """`` ("name") in experiment "x"`` for a heading; what cannot be read is left out."""
    name = f" ({quote(run.info.run_name)})" if run.info.run_name else ""
    try:
        experiment = store.client.get_experiment(run.info.experiment_id).name
    except Exception:  # the heading is a courtesy: never fail the command for it
        experiment = run.info.experiment_id
    return f"{name} in experiment {quote(experiment)}"


# -- experiments ---------------------------------------------------------------------------


def experiment(
    store: Store, value: str | None, *, create: bool = False, doing: str = "using"
) -> Chosen | None:
    """The experiment a command works in, by the one rule of every command.

    ``value`` (``--experiment``) is a name or an id: the experiment of that name, else the one
    whose id it is (ids are numbers); a value that is both means the name, and a note says
    so (the command is ``doing`` something with it). Without a value: the experiment
    ``MLFLOW_EXPERIMENT_NAME`` names (an ``MLFLOW_EXPERIMENT_ID`` that contradicts it is an
    error), else the one ``MLFLOW_EXPERIMENT_ID`` names, as MLflow reads them; else
    ``None``, and the command takes its own default (``summary``: every experiment; ``run``:
    Default). A name no experiment has is made when ``create`` (a command that writes a
    run, as MLflow does); an id is never made, and a read makes nothing.
    """
    if value is not None:
        return Chosen(_by_name_or_id(store, value, create=create, doing=doing), "--experiment")
    name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or None
    wanted_id = os.environ.get("MLFLOW_EXPERIMENT_ID") or None
    if name is not None:
        named = _by_name(store, name)
        if named is None and create:
            named = _created(store, name)
        if named is None:
            raise fail(f"MLFLOW_EXPERIMENT_NAME={name} names no experiment in {store.uri}")
        if wanted_id is not None and wanted_id != named.experiment_id:
            raise fail(
                f"MLFLOW_EXPERIMENT_NAME={name} is experiment {named.experiment_id}, but "
                f"MLFLOW_EXPERIMENT_ID={wanted_id}; unset one, or name the experiment with --experiment."
            )
        return Chosen(named, "MLFLOW_EXPERIMENT_NAME")
    if wanted_id is not None:
        by_id = by_experiment_id(store, wanted_id)
        if by_id is None:
            raise fail(f"MLFLOW_EXPERIMENT_ID={wanted_id} names no experiment in {store.uri}")
        return Chosen(by_id, "MLFLOW_EXPERIMENT_ID")
    return None


def _by_name_or_id(store: Store, value: str, *, create: bool, doing: str) -> Experiment:
    """The experiment named ``value``, else the one whose id it is, else (``create``) a new one."""
    named = _by_name(store, value)
    # Ids are numbers in every store MLflow has; only a number is looked up as one.
    number = value.isascii() and value.isdigit()
    by_id = by_experiment_id(store, value) if number else None
    if named is not None:
        if by_id is not None and by_id.experiment_id != named.experiment_id:
            note(
                f"Note: {quote(value)} is the name of experiment {named.experiment_id} and the id of "
                f"experiment {quote(by_id.name)}; {doing} the one named {quote(value)} "
                f"(--experiment {quote(by_id.name)} for the other)."
            )
        return named
    if by_id is not None:
        return by_id
    if create:
        return _created(store, value)
    also = f" or with the id {value}" if number else ""
    raise fail(f"no experiment named {quote(value)}{also} in {store.uri}")


def _by_name(store: Store, name: str) -> Experiment | None:
    try:
        found: Experiment | None = store.client.get_experiment_by_name(name)
    except Exception as exc:
        raise store_error(store, exc, "could not read experiments from") from None
    return found


def _created(store: Store, name: str) -> Experiment:
    try:
        created: Experiment = store.client.get_experiment(store.client.create_experiment(name))
    except Exception as exc:
        raise store_error(store, exc, f"could not make the experiment {quote(name)} in") from None
    return created


def by_experiment_id(store: Store, experiment_id: str) -> Experiment | None:
    """The experiment with this id; ``None`` when the store has none."""
    from mlflow.exceptions import MlflowException

    try:
        found: Experiment = store.client.get_experiment(experiment_id)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE") and not _not_tracking_api(
            exc
        ):
            return None
        raise store_error(store, exc, "could not read experiments from") from None
    except Exception as exc:
        raise store_error(store, exc, "could not read experiments from") from None
    return found


def every_experiment(store: Store) -> list[Experiment]:
    """Every experiment that is not deleted, by name."""
    found: list[Experiment] = []
    token = None
    try:
        while True:
            page = store.client.search_experiments(max_results=1000, order_by=["name ASC"], page_token=token)
            found.extend(page)
            token = page.token
            if not token:
                return found
    except Exception as exc:
        raise store_error(store, exc, "could not read experiments from") from None
