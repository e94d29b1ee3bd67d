"""How system tags are shown: the tables and summaries of the command line, as plain text.

Pure functions of tags and runs (no MLflow import, no I/O), so each can be tested alone.
Keys always come in one order, the table's (:func:`tags.order`), under the headings the
table gives them; what a column is comes from the table too.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from typing import Any

from . import tags as T

#: The label of the runs that carry no system tags at all.
UNTAGGED = "(no system tags)"
#: What ``summary`` adds up over a kind's runs (nodes added up first), with the column title.
LEDGER_TOTALS = {T.GPU_HOURS: "GPU hours", T.GPU_ENERGY_WH: "GPU energy Wh"}


def plain_number(value: float) -> str:
    """``value`` to three significant digits, never in exponent form (``0.000045``, ``1230``)."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = max(0, 2 - math.floor(math.log10(abs(value))))
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def ordered(tags: Mapping[str, str]) -> dict[str, str]:
    """``tags`` in the table's order (:func:`tags.order`)."""
    return {key: tags[key] for key in T.order(tags)}


def ledger_of(metrics: Mapping[str, float]) -> dict[str, float]:
    """A run's ledger, its nodes combined as the table says (summed, their most, or their mean).

    The mean power per GPU of several nodes is their energy over the GPU hours of the nodes
    that counted energy: a node without an energy counter adds no hours to it. The GPUs'
    shares of the run (``combine="gpu_mean"``: ``sys.gpu_busy_pct``, ``sys.gpu_low_util_pct``)
    are weighted by each node's ``sys.gpu_hours``, so that a node of 8 GPUs weighs 8 times a
    node of one over the same time; where a node that has the share has no GPU hours (none
    logged, or 0), every node weighs the same, as no weight can be told for it. The use of the
    cores (``sys.cpu_util_pct``) is their plain mean: each node's usable cores are a tag
    (``sys.cpu_available``), not among the metrics this reads.
    """
    values: dict[str, dict[int, float]] = {}
    for key, value in metrics.items():
        split = T.split_node_key(key)
        plain = T.plain_key(key)
        row = T.TABLE.get(plain)
        if row is not None and row.metric:
            values.setdefault(plain, {})[0 if split is None else split[0]] = float(value)
    combined: dict[str, float] = {}
    for key in T.METRIC_KEYS:
        found = list(values.get(key, {}).values())
        if not found:
            continue
        how = T.TABLE[key].combine
        combined[key] = (
            sum(found) if how == "sum" else max(found) if how == "max" else sum(found) / len(found)
        )
        if how == "gpu_mean":
            weighted = _gpu_weighted(values[key], values.get(T.GPU_HOURS, {}))
            if weighted is not None:
                combined[key] = weighted
    energy = values.get(T.GPU_ENERGY_WH, {})
    hours = sum(h for node, h in values.get(T.GPU_HOURS, {}).items() if node in energy)
    if T.GPU_POWER_AVG_W in combined and energy and hours:
        combined[T.GPU_POWER_AVG_W] = sum(energy.values()) / hours
    return {key: round(value, 6) for key, value in combined.items()}


def _gpu_weighted(by_node: dict[int, float], hours: dict[int, float]) -> float | None:
    """The nodes' values weighted by their GPU hours; ``None`` where a node has none to weigh by."""
    weights = [hours.get(node, 0.0) for node in by_node]
    if min(weights) <= 0:
        return None
    return sum(value * weight for value, weight in zip(by_node.values(), weights, strict=True)) / sum(weights)


def format_table(tags: Mapping[str, str], ledger: Mapping[str, float] | None = None) -> str:
    """Tags (and a run's ledger) as an aligned two-column table, grouped (CPU, memory, ..., Ledger)."""
    plain: dict[str, str] = {k: v for k, v in tags.items() if T.split_node_key(k) is None}
    plain.update((key, plain_number(value)) for key, value in (ledger or {}).items())
    if not plain:
        return UNTAGGED
    width = max(len(k) for k in plain)
    lines: list[str] = []
    current = None
    for key in T.order(plain):
        group = T.group_of(key)
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
    columns = [(title, name) for title, name in T.NODE_COLUMNS if any(name in f for f in nodes.values())]
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
    Free disk space differs between any two runs and is left out unless asked for; what a
    key says of the run rather than its machine (:data:`tags.RUN_KEYS`) is never a difference.
    """
    keys = [
        k
        for k in T.order(set(tags_a) | set(tags_b))
        if tags_a.get(k) != tags_b.get(k)
        and T.plain_key(k) not in T.RUN_KEYS
        and (include_volatile or T.plain_key(k) not in T.MOMENTARY_KEYS)
    ]
    first = [k for k in keys if T.plain_key(k) in T.PERFORMANCE_KEYS]
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
        key = tuple(tags.get(k) for k, _ in T.SUMMARY_COLUMNS)
        if all(v is None for v in key) and any(T.is_system_key(k) for k in tags):
            key = ("",) * len(key)  # tagged, but with none of the grouping facts
        groups.setdefault(key, []).append(run)
    rows: list[dict[str, Any]] = []
    for key, members in groups.items():
        durations = [
            (r.info.end_time - r.info.start_time) / 1000
            for r in members
            if r.info.end_time and r.info.start_time and r.info.status == "FINISHED"
        ]
        ledgers = [ledger_of(r.data.metrics) for r in members]
        rows.append(
            {
                **{
                    k.removeprefix("sys."): v or None
                    for (k, _), v in zip(T.SUMMARY_COLUMNS, key, strict=True)
                },
                "tagged": any(v is not None for v in key),
                "runs": len(members),
                "median_duration_s": round(statistics.median(durations), 3) if durations else None,
                **_totals(ledgers),
            }
        )
    rows.sort(key=lambda r: (not r["tagged"], -int(r["runs"]), str(r["cpu"])))
    return rows


def _totals(ledgers: list[dict[str, float]]) -> dict[str, float | None]:
    """What ``summary`` adds up over a kind's runs (``None`` where no run counted it)."""
    totals: dict[str, float | None] = {}
    for key in LEDGER_TOTALS:
        counted = [ledger[key] for ledger in ledgers if key in ledger]
        totals[key.removeprefix("sys.")] = round(sum(counted), 6) if counted else None
    return totals


def format_summary(rows: list[dict[str, Any]]) -> str:
    """The summary as an aligned table; a column no row has a value for is left out."""
    if not rows:
        return "(no runs)"
    columns = [
        (key.removeprefix("sys."), title)
        for key, title in T.SUMMARY_COLUMNS
        if any(r.get(key.removeprefix("sys.")) for r in rows)
    ] or [("cpu", "cpu")]
    totals = [
        (key.removeprefix("sys."), title)
        for key, title in LEDGER_TOTALS.items()
        if any(r.get(key.removeprefix("sys.")) is not None for r in rows)
    ]
    header = [title for _, title in columns] + ["runs", "median duration"] + [title for _, title in totals]
    table = []
    for row in rows:
        cells = [str(row.get(name) or "-") for name, _ in columns]
        if not row["tagged"]:
            cells = [UNTAGGED] + ["-"] * (len(cells) - 1)
        added = ["-" if row.get(name) is None else plain_number(row[name]) for name, _ in totals]
        table.append([*cells, str(row["runs"]), format_duration(row["median_duration_s"]), *added])
    return aligned([header, *table])


def aligned(rows: list[list[str]]) -> str:
    """Rows of cells as left-aligned columns, two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip() for row in rows)
