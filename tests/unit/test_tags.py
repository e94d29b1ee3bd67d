"""The table of tag keys: every other list derives from it, and it agrees with the README and the collectors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlflow_sysmetrics import collect
from mlflow_sysmetrics import tags as T
from mlflow_sysmetrics.collectors import COLLECTORS, for_platform
from tests.conftest import FIXTURES, Replay

REPO = Path(__file__).resolve().parents[2]
KEY = re.compile(r"`((?:sys|sysmetrics)\.[a-z0-9_.]+)`")


def _readme_table(heading: str) -> list[str]:
    """The keys named in the first cell of each row of the table under ``heading``, in order."""
    text = (REPO / "README.md").read_text()
    section = text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]
    keys: list[str] = []
    for line in section.splitlines():
        if line.startswith("| `sys") or line.startswith("| `sysmetrics"):
            keys.extend(KEY.findall(line.split("|")[1]))
    return keys


def test_the_readme_documents_every_tag_in_the_table_order() -> None:
    """The README's tag table and the table name the same keys, in the same order."""
    assert _readme_table("## Tags") == [name for name, key in T.TABLE.items() if not key.metric]


def test_the_readme_documents_every_metric_of_the_ledger() -> None:
    """The README's ledger table names the table's metrics, in its order."""
    assert _readme_table("## What did the run use?") == list(T.METRIC_KEYS)


def test_every_platform_collector_writes_only_table_keys() -> None:
    """Each collector's keys come from the table's `source` column, on every platform."""
    for platform in ("linux", "macos", "windows", "other"):
        for collector in for_platform(platform):
            assert collector.keys, collector
            assert set(collector.keys) <= set(T.TABLE)
    written = {key for collector in COLLECTORS for key in collector.keys}
    sources = {key.source for key in T.TABLE.values() if key.source}
    assert sources == {c.name for c in for_platform("linux")}
    assert written == {name for name, key in T.TABLE.items() if key.source}


@pytest.mark.parametrize("machine", sorted(p.name for p in FIXTURES.iterdir() if (p / "README.md").exists()))
def test_every_key_a_replayed_machine_yields_is_in_the_table(replay: Replay, machine: str) -> None:
    """Every fixture machine, replayed: no key outside the table (one would be named as an error)."""
    replay(machine)
    tags = collect()
    assert set(tags) <= set(T.TABLE)
    assert "is not in the table" not in tags.get("sysmetrics.error", "")


def test_derived_lists_follow_the_columns() -> None:
    """The lists other modules read are the table's columns, not lists of their own."""
    assert {"sys.host"} == T.OPT_IN_KEYS
    assert {"sys.disk_free_gb"} == T.MOMENTARY_KEYS
    assert {"sys.ledger"} == T.RUN_KEYS
    assert {"sys.frameworks", "sys.disk_total_gb", "sysmetrics.error"} <= T.VARYING_KEYS
    assert T.keys_of("dist")[-1] == "sys.slurm.job_id"
    assert [key for key, _ in T.SUMMARY_COLUMNS][:2] == ["sys.cpu", "sys.cpu_available"]
    assert T.group_of("sys.node3.gpu") == "GPU"
    assert T.group_of("sys.host") == "Host"
    assert T.group_of("sys.unknown") == "Other"
