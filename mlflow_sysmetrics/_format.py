"""How system tags are shown: the tables and summaries of the command line, as plain text.

Pure functions of tags and runs (no MLflow import, no I/O), so each can be tested alone.
Keys always come in one order, the README's table order (:data:`tags.ALL_KEYS`).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from typing import Any

from . import tags as T

#: Tags that change between runs on the same hardware; ``diff`` leaves them out unless asked.
VOLATILE_KEYS = frozenset({T.DISK_FREE_GB})

GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("CPU", ("sys.cpu",)),
    ("Memory", ("sys.memory",)),
    ("Disk", ("sys.disk",)),
    ("OS", ("sys.platform", "sys.os", "sys.python", "sys.mlflow")),
    ("Frameworks", ("sys.frameworks", "sys.cuda_runtime", "sys.cudnn", "sys.nccl")),
    ("GPU", ("sys.gpu", "sys.cuda_driver")),
    ("Network", ("sys.network",)),
    ("Container", ("sys.container", "sys.cloud", "sys.instance_type", "sys.host")),
    ("Distributed", ("sys.dist.", "sys.slurm.")),
    ("Errors", ("sysmetrics.",)),
)
#: Columns of the per-node table of a multi-node run.
NODE_COLUMNS = (
    ("cpu", "cpu"),
    ("cores available", "cpu_available"),
    ("memory GB", "memory_gb"),
    ("gpu", "gpu"),
    ("gpus", "gpu_count"),
    ("driver", "gpu_driver"),
    ("link", "gpu_link"),
    ("network", "network"),
)
#: What ``summary`` groups runs by, with its column titles (memory: the container's limit
#: where one was set; a column no run has a value for is not shown).
SUMMARY_COLUMNS: tuple[tuple[str, str], ...] = (
    (T.CPU, "cpu"),
    (T.CPU_AVAILABLE, "cores"),
    (T.MEMORY_GB, "memory GB"),
    (T.GPU, "gpu"),
    (T.GPU_COUNT, "gpus"),
    (T.GPU_POWER_LIMIT_W, "power W"),
    (T.GPU_LINK, "gpu link"),
    (T.NETWORK, "network"),
    (T.FRAMEWORKS, "frameworks"),
)
#: The label of the runs that carry no system tags at all.
UNTAGGED = "(no system tags)"


def is_system_key(key: str) -> bool:
    """Whether ``key`` is one of this package's tags (``sys.*``, ``sysmetrics.*``)."""
    return key.startswith(("sys.", "sysmetrics."))


_RANK = {key: index for index, key in enumerate(T.ALL_KEYS)}


def _sort_key(key: str) -> tuple[float, int, str]:
    split = T.split_node_key(key)
    node, plain = (0, key) if split is None else (split[0], f"{key.split('.', 1)[0]}.{split[1]}")
    rank = _RANK.get(plain)
    return (float("inf"), 0, key) if rank is None else (node, rank, key)


def order(keys: Iterable[str]) -> list[str]:
    """Keys in the README's order; node ``k``'s keys after node 0's, unknown ones last by name."""
    return sorted(keys, key=_sort_key)


def ordered(tags: Mapping[str, str]) -> dict[str, str]:
    """``tags`` in :func:`order`."""
    return {key: tags[key] for key in order(tags)}


def _group_of(key: str) -> str:
    for name, prefixes in GROUPS:
        if key.startswith(prefixes):
            return name
    return "Other"


def format_table(tags: Mapping[str, str]) -> str:
    """Tags as an aligned two-column table, grouped (CPU, memory, disk, OS, GPU, ...)."""
    plain = {k: v for k, v in tags.items() if T.split_node_key(k) is None}
    if not plain:
        return UNTAGGED
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
        split = T.split_node_key(key)
        if split is not None and key.startswith("sys."):
            nodes.setdefault(split[0], {})[split[1]] = value
    if not nodes:
        return {}
    nodes[0] = {
        k.split(".", 1)[1]: v for k, v in tags.items() if k.startswith("sys.") and T.split_node_key(k) is None
    }
    return dict(sorted(nodes.items()))


def format_nodes(nodes: Mapping[int, Mapping[str, str]]) -> str:
    """The per-node table, and whether the nodes' hardware differs."""
    columns = [(title, name) for title, name in NODE_COLUMNS if any(name in f for f in nodes.values())]
    header = ["node", *(title for title, _ in columns)]
    rows = []
    for node, facts in nodes.items():
        usable = dict(facts)
        if "memory_limit_gb" in usable:  # what the node's processes could use, as in summary
            usable["memory_gb"] = usable["memory_limit_gb"]
        rows.append([str(node), *(usable.get(name, "-") for _, name in columns)])
    lines = aligned([header, *rows]).splitlines()
    distinct = {tuple(row[1:]) for row in rows}
    verdict = "nodes differ" if len(distinct) > 1 else "all nodes alike"
    return "\n".join([*lines, f"({len(rows)} nodes: {verdict})"])


def differences(
    tags_a: Mapping[str, str], tags_b: Mapping[str, str], include_volatile: bool = False
) -> dict[str, tuple[str | None, str | None]]:
    """The system tags that differ between two runs, the likeliest causes of a slowdown first.

    The framework stack, GPU power cap and links and the network fabric
    (:data:`tags.PERFORMANCE_KEYS`) come first when they differ, then the rest in order.
    Free disk space differs between any two runs and is left out unless asked for.
    """
    keys = [
        k
        for k in order(set(tags_a) | set(tags_b))
        if tags_a.get(k) != tags_b.get(k) and (include_volatile or k not in VOLATILE_KEYS)
    ]
    first = [k for k in keys if k in T.PERFORMANCE_KEYS]
    return {k: (tags_a.get(k), tags_b.get(k)) for k in [*first, *(k for k in keys if k not in first)]}


def format_duration(seconds: float | None) -> str:
    """A run's duration for people: ``40 ms``, ``12.3 s``, ``4.2 min``, ``1.5 h``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def summarize(runs: Iterable[Any]) -> list[dict[str, Any]]:
    """Runs grouped by machine kind, most used first, with run count and median duration.

    Each row holds the grouping facts (``None`` where the runs lack one), ``tagged`` (false
    for the runs that carry no system tags at all), ``runs`` and ``median_duration_s``
    (finished runs only).
    """
    groups: dict[tuple[str | None, ...], list[Any]] = {}
    for run in runs:
        tags = dict(run.data.tags)
        if T.MEMORY_LIMIT_GB in tags:
            tags[T.MEMORY_GB] = tags[T.MEMORY_LIMIT_GB]
        key = tuple(tags.get(k) for k, _ in SUMMARY_COLUMNS)
        if all(v is None for v in key) and any(is_system_key(k) for k in tags):
            key = ("",) * len(key)  # tagged, but with none of the grouping facts
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
                **{k.removeprefix("sys."): v or None for (k, _), v in zip(SUMMARY_COLUMNS, key, strict=True)},
                "tagged": any(v is not None for v in key),
                "runs": len(members),
                "median_duration_s": round(statistics.median(durations), 3) if durations else None,
            }
        )
    rows.sort(key=lambda r: (not r["tagged"], -int(r["runs"]), str(r["cpu"])))
    return rows


def format_summary(rows: list[dict[str, Any]]) -> str:
    """The summary as an aligned table; a column no row has a value for is left out."""
    if not rows:
        return "(no runs)"
    columns = [
        (key.removeprefix("sys."), title)
        for key, title in SUMMARY_COLUMNS
        if any(r.get(key.removeprefix("sys.")) for r in rows)
    ] or [("cpu", "cpu")]
    header = [title for _, title in columns] + ["runs", "median duration"]
    table = []
    for row in rows:
        cells = [str(row.get(name) or "-") for name, _ in columns]
        if not row["tagged"]:
            cells = [UNTAGGED] + ["-"] * (len(cells) - 1)
        table.append([*cells, str(row["runs"]), format_duration(row["median_duration_s"])])
    return aligned([header, *table])


def aligned(rows: list[list[str]]) -> str:
    """Rows of cells as left-aligned columns, two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip() for row in rows)
