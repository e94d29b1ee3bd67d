"""The table of tag keys: every other list derives from it, and it agrees with the docs and the collectors."""

from __future__ import annotations

import pytest

from mlflow_sysmetrics import collect
from mlflow_sysmetrics import tags as T
from mlflow_sysmetrics._value import decimal, gb
from mlflow_sysmetrics.collectors import COLLECTORS, for_platform
from tests.conftest import FIXTURES, Replay
from tests.pages import DOCS, table_keys


def test_the_tags_page_documents_every_tag_in_the_table_order() -> None:
    """The tags page's key table and the table name the same keys, in the same order."""
    assert table_keys(DOCS / "tags.md", "## Keys") == [
        name for name, key in T.TABLE.items() if not key.metric
    ]


def test_the_ledger_page_documents_every_metric_of_the_ledger() -> None:
    """The ledger page's metric tables name the table's metrics, in its order."""
    assert table_keys(DOCS / "ledger.md", "## Metrics") == list(T.METRIC_KEYS)


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
    assert T.keys_of("distributed")[-1] == "sys.slurm.job_id"
    assert [key for key, _ in T.SUMMARY_COLUMNS][:2] == ["sys.cpu", "sys.cpu_available"]
    assert T.group_of("sys.node3.gpu") == "GPU"
    assert T.group_of("sys.host") == "Host"
    assert T.group_of("sys.unknown") == "Other"


def test_gb_and_decimal_formats() -> None:
    """10^9 bytes to two decimals; plain decimals without trailing zeros."""
    assert (gb(85520809984), gb(10**9), gb(0)) == ("85.52", "1.0", "0.0")
    assert (decimal(2.0), decimal(1.5), decimal(1 / 3), decimal(2.499)) == ("2", "1.5", "0.33", "2.5")
    # a quota of 400 us per 100 ms is 0.004 cores, not 0
    assert (decimal(0.004), decimal(0.0049), decimal(0.00001), decimal(0.006)) == (
        "0.004",
        "0.0049",
        "0.00001",
        "0.01",
    )
