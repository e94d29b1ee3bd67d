"""The ``mlflow-sysmetrics`` command: see, record and compare what runs ran on.

``python -m mlflow_sysmetrics`` is the same command.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import click

from . import tags as T

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

#: Tags that change between runs on the same hardware; ``diff`` leaves them out unless asked.
VOLATILE_KEYS = frozenset({T.DISK_FREE_GB})

GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("CPU", ("sys.cpu",)),
    ("Memory", ("sys.memory",)),
    ("Disk", ("sys.disk",)),
    ("OS", ("sys.platform", "sys.os", "sys.python", "sys.mlflow")),
    ("GPU", ("sys.gpu", "sys.cuda")),
    ("Container", ("sys.container", "sys.cloud", "sys.instance_type", "sys.host")),
    ("Distributed", ("sys.dist.", "sys.slurm.")),
    ("Errors", ("sysmetrics.",)),
)
_NODE_KEY = re.compile(r"^(sys|sysmetrics)\.node(\d+)\.(.+)$")
#: Columns of the per-node table of a multi-node run.
NODE_COLUMNS = (
    ("cpu", "cpu"),
    ("cores available", "cpu_available"),
    ("memory GB", "memory_gb"),
    ("gpu", "gpu"),
    ("gpus", "gpu_count"),
    ("driver", "gpu_driver"),
)
#: What ``summary`` groups runs by (memory: the container limit where one was set).
SUMMARY_KEYS = (T.CPU, T.CPU_AVAILABLE, T.MEMORY_GB, T.GPU, T.GPU_COUNT)


def is_system_key(key: str) -> bool:
    """Whether ``key`` is one of this package's tags (``sys.*``, ``sysmetrics.*``)."""
    return key.startswith(("sys.", "sysmetrics."))


def order(keys: Iterable[str]) -> list[str]:
    """Keys in the documented order, node keys after, unknown ones last by name."""
    rank = {key: index for index, key in enumerate(T.ALL_KEYS)}
    return sorted(keys, key=lambda k: (rank.get(k, len(rank)), k))


def _group_of(key: str) -> str:
    for name, prefixes in GROUPS:
        if key.startswith(prefixes):
            return name
    return "Other"


def format_table(tags: Mapping[str, str]) -> str:
    """Tags as an aligned two-column table, grouped (CPU, memory, disk, OS, GPU, ...)."""
    plain = {k: v for k, v in tags.items() if not _NODE_KEY.match(k)}
    if not plain:
        return "(no system tags)"
    width = max(len(k) for k in plain)
    lines: list[str] = []
    current = None
    for key in order(plain):
        group = _group_of(key)
        if group != current:
            if lines:
                lines.append("")
            lines.append(group)
            current = group
        lines.append(f"  {key:<{width}}  {plain[key]}")
    return "\n".join(lines)


def nodes_of(tags: Mapping[str, str]) -> dict[int, dict[str, str]]:
    """Per-node facts of a run shared by a multi-node job: node 0's plain keys, node k's ``sys.node<k>.*``."""
    nodes: dict[int, dict[str, str]] = {}
    for key, value in tags.items():
        match = _NODE_KEY.match(key)
        if match:
            nodes.setdefault(int(match.group(2)), {})[match.group(3)] = value
    if not nodes:
        return {}
    nodes[0] = {
        k.split(".", 1)[1]: v for k, v in tags.items() if k.startswith("sys.") and not _NODE_KEY.match(k)
    }
    return dict(sorted(nodes.items()))


def format_nodes(nodes: Mapping[int, Mapping[str, str]]) -> str:
    """The per-node table, and whether the nodes' hardware differs."""
    header = ["node", *(title for title, _ in NODE_COLUMNS)]
    rows = []
    for node, facts in nodes.items():
        usable = dict(facts)
        if "memory_limit_gb" in usable:  # what the node's processes could use, as in summary
            usable["memory_gb"] = usable["memory_limit_gb"]
        rows.append([str(node), *(usable.get(name, "-") for _, name in NODE_COLUMNS)])
    lines = _aligned([header, *rows]).splitlines()
    distinct = {tuple(row[1:]) for row in rows}
    verdict = "nodes differ" if len(distinct) > 1 else "all nodes alike"
    return "\n".join([*lines, f"({len(rows)} nodes: {verdict})"])


def _client(ctx: click.Context) -> MlflowClient:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=ctx.obj.get("tracking_uri"))


def _fail(message: str) -> click.ClickException:
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    return click.ClickException(first[:300])


def _run_tags(ctx: click.Context, run_id: str) -> dict[str, str]:
    from mlflow.exceptions import MlflowException

    try:
        run = _client(ctx).get_run(run_id)
    except MlflowException as exc:
        if (
            "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", ""))
            or "not found" in str(exc).lower()
        ):
            raise _fail(f"no run {run_id} in {_where(ctx)}") from None
        raise _fail(f"could not read run {run_id} from {_where(ctx)}: {exc}") from None
    except Exception as exc:  # unreachable server, bad URI
        raise _fail(f"could not read run {run_id} from {_where(ctx)}: {exc}") from None
    return {k: v for k, v in run.data.tags.items() if is_system_key(k)}


def _where(ctx: click.Context) -> str:
    import mlflow

    return str(ctx.obj.get("tracking_uri") or mlflow.get_tracking_uri())


def _emit(data: Any, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False) if as_json else text)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--tracking-uri",
    envvar="MLFLOW_TRACKING_URI",
    help="Tracking store or server (default: MLFLOW_TRACKING_URI, else MLflow's default).",
)
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
    # A server that does not answer should fail the command in seconds, not after
    # MLflow's default retries with back-off (minutes).
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    ctx.obj = {"tracking_uri": tracking_uri}
    if tracking_uri:
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri


@main.command()
@click.argument("run_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def show(ctx: click.Context, run_id: str | None, as_json: bool) -> None:
    """Show the system tags of this machine, or of run RUN_ID.

    \b
    Examples:
      mlflow-sysmetrics show
      mlflow-sysmetrics show --json
      mlflow-sysmetrics show 3f2a9c1e0b7d4e5f8a6b
    """
    if run_id is None:
        from ._engine import collect

        tags = collect()
    else:
        tags = _run_tags(ctx, run_id)
    tags = {k: tags[k] for k in order(tags)}
    nodes = nodes_of(tags)
    if as_json:
        _emit({"tags": tags, "nodes": nodes} if nodes else tags, True, "")
        return
    text = format_table(tags)
    if nodes:
        text += "\n\nNodes\n" + format_nodes(nodes)
    click.echo(text)


@main.command()
@click.argument("run_id")
@click.option("--snapshot", is_flag=True, help="Also log sysmetrics/system.json, the full detail.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def log(ctx: click.Context, run_id: str, snapshot: bool, as_json: bool) -> None:
    """Tag the existing run RUN_ID with this machine's system tags (one request).

    \b
    Example:
      mlflow-sysmetrics log 3f2a9c1e0b7d4e5f8a6b --snapshot
    """
    _run_tags(ctx, run_id)  # a clear error for a run that does not exist
    from .runs import log_sysmetrics

    try:
        written = log_sysmetrics(run_id, snapshot=snapshot)
    except Exception as exc:
        raise _fail(f"could not tag run {run_id}: {exc}") from None
    _emit(written, as_json, f"Tagged run {run_id}:\n" + format_table(written))


@main.command()
@click.argument("run_a")
@click.argument("run_b")
@click.option("--all", "include_volatile", is_flag=True, help="Also compare free disk space.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def diff(ctx: click.Context, run_a: str, run_b: str, include_volatile: bool, as_json: bool) -> None:
    """Show the system tags that differ between runs RUN_A and RUN_B.

    Free disk space differs between any two runs and is left out unless --all is given.

    \b
    Example:
      mlflow-sysmetrics diff 3f2a9c1e0b7d4e5f8a6b 91c0d2e3f4a5b6c7d8e9
    """
    tags_a = _run_tags(ctx, run_a)
    tags_b = _run_tags(ctx, run_b)
    keys = order(set(tags_a) | set(tags_b))
    differing = [
        k for k in keys if tags_a.get(k) != tags_b.get(k) and (include_volatile or k not in VOLATILE_KEYS)
    ]
    rows = {k: {"a": tags_a.get(k), "b": tags_b.get(k)} for k in differing}
    if as_json:
        _emit({"run_a": run_a, "run_b": run_b, "same_hardware": not rows, "differences": rows}, True, "")
        return
    if not rows:
        click.echo(f"Same hardware: runs {run_a} and {run_b} have the same system tags.")
        return
    table = [["tag", run_a, run_b]]
    table += [[key, pair["a"] or "-", pair["b"] or "-"] for key, pair in rows.items()]
    click.echo(_aligned(table))


@main.command()
@click.option("--experiment", "experiment_name", required=True, help="Name of the experiment.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def summary(ctx: click.Context, experiment_name: str, as_json: bool) -> None:
    """Show the hardware an experiment's runs used: one row per machine kind.

    A kind is the CPU, the cores and memory the runs could use (a container's quota and
    limit where one was set), the GPU and the GPU count; each row gives how many runs used
    it and their median duration (finished runs).

    \b
    Example:
      mlflow-sysmetrics summary --experiment training
    """
    client = _client(ctx)
    try:
        experiment = client.get_experiment_by_name(experiment_name)
    except Exception as exc:
        raise _fail(f"could not read experiments from {_where(ctx)}: {exc}") from None
    if experiment is None:
        raise _fail(f"no experiment named {experiment_name!r} in {_where(ctx)}")
    rows = summarize(_all_runs(client, experiment.experiment_id))
    if as_json:
        _emit({"experiment": experiment_name, "kinds": rows}, True, "")
        return
    click.echo(format_summary(rows))


def _all_runs(client: MlflowClient, experiment_id: str) -> list[Any]:
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs([experiment_id], max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def summarize(runs: Iterable[Any]) -> list[dict[str, Any]]:
    """Runs grouped by machine kind, most used first, with run count and median duration."""
    groups: dict[tuple[str, ...], list[Any]] = {}
    for run in runs:
        tags = dict(run.data.tags)
        if T.MEMORY_LIMIT_GB in tags:
            tags[T.MEMORY_GB] = tags[T.MEMORY_LIMIT_GB]
        key = tuple(tags.get(k, "-") for k in SUMMARY_KEYS)
        groups.setdefault(key, []).append(run)
    rows: list[dict[str, Any]] = []
    for key, members in groups.items():
        durations = [
            (r.info.end_time - r.info.start_time) / 1000
            for r in members
            if r.info.end_time and r.info.start_time and r.info.status == "FINISHED"
        ]
        rows.append(
            {
                **{k.removeprefix("sys."): v for k, v in zip(SUMMARY_KEYS, key, strict=True)},
                "runs": len(members),
                "median_duration_s": round(statistics.median(durations), 3) if durations else None,
            }
        )
    rows.sort(key=lambda r: (-int(r["runs"]), str(r["cpu"])))
    return rows


def format_summary(rows: list[dict[str, Any]]) -> str:
    """The summary as an aligned table."""
    if not rows:
        return "(no runs)"
    header = ["cpu", "cores", "memory GB", "gpu", "gpus", "runs", "median duration"]
    # cores and memory are what the runs could use: the cgroup quota and limit where set
    table = [
        [
            str(r["cpu"]),
            str(r["cpu_available"]),
            str(r["memory_gb"]),
            str(r["gpu"]),
            str(r["gpu_count"]),
            str(r["runs"]),
            "-" if r["median_duration_s"] is None else f"{r['median_duration_s']:.1f} s",
        ]
        for r in rows
    ]
    return _aligned([header, *table])


def _aligned(rows: list[list[str]]) -> str:
    """Rows of cells as left-aligned columns, two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip() for row in rows)


@main.command()
@click.option("--experiment", "experiment_name", default="sysmetrics-demo", show_default=True)
@click.pass_context
def demo(ctx: click.Context, experiment_name: str) -> None:
    """Tag a run in a local store, print its tags, and say how to see them in the MLflow UI.

    Uses MLFLOW_TRACKING_URI or --tracking-uri when set, else a SQLite store
    (mlflow.db) in the current folder.

    \b
    Example:
      mlflow-sysmetrics demo
    """
    import mlflow

    uri = ctx.obj.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
    mlflow.set_tracking_uri(uri)
    from .runs import sysmetrics_run

    try:
        mlflow.set_experiment(experiment_name)
        with sysmetrics_run(run_name="sysmetrics-demo") as run:
            mlflow.log_param("demo", "true")
            mlflow.log_metric("answer", 42.0)
    except ModuleNotFoundError as exc:
        raise _fail(
            f"the local store needs the full MLflow package ({exc.name} is missing): "
            "pip install 'mlflow-sysmetrics[mlflow]'"
        ) from None
    except Exception as exc:
        raise _fail(f"could not write a run to {uri}: {exc}") from None
    tags = _run_tags(ctx, run.info.run_id)
    experiment_id = run.info.experiment_id
    click.echo(f"Run {run.info.run_id} in experiment {experiment_name!r} ({uri}) has these system tags:\n")
    click.echo(format_table({k: tags[k] for k in order(tags)}))
    if uri.startswith("sqlite:"):
        ui = f"mlflow ui --backend-store-uri {uri}"
        link = f"http://127.0.0.1:5000/#/experiments/{experiment_id}/runs/{run.info.run_id}"
        click.echo(f"\nSee them in the MLflow UI:\n  {ui}\n  then open {link}")
    click.echo("\nTag every run implicitly with: export MLFLOW_RUN_CONTEXT_PROVIDER=sysmetrics")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
