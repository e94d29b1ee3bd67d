"""Settings: every bad value warns once, naming the variable and the default used."""

from __future__ import annotations

import pytest

from mlflow_sysmetrics import collect, settings
from mlflow_sysmetrics.provider import SysMetricsRunContextProvider
from tests.conftest import expected


@pytest.mark.parametrize(
    "value", ["abc", "-1", "0", "-0", "nan", "inf", "-inf", "1e999", " ", "9" * 5000, "x" * 100_000]
)
def test_bad_timeout(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, value: str) -> None:
    """A timeout that is no positive number: one warning, the 1.0 s default, tags still written."""
    monkeypatch.setenv("MLFLOW_SYSMETRICS_TIMEOUT", value)
    tags = collect()
    collect()
    assert settings.current().timeout == settings.DEFAULT_TIMEOUT
    assert "sys.cpu" in tags
    if value.strip():
        assert caplog.text.count("MLFLOW_SYSMETRICS_TIMEOUT") == 1
        assert "using the default 1.0" in caplog.text


def test_a_huge_timeout_is_clamped(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """1e308 seconds once lost every fact (OverflowError in the wait): now one warning and the longest deadline."""
    monkeypatch.setenv("MLFLOW_SYSMETRICS_TIMEOUT", "1e308")
    tags = collect()
    assert settings.current().timeout == settings.MAX_TIMEOUT
    assert "sys.cpu" in tags
    assert "sysmetrics.error" not in tags
    assert caplog.text.count("MLFLOW_SYSMETRICS_TIMEOUT") == 1


def test_a_huge_value_is_named_briefly(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A 20 MB setting: the warning quotes its start and length, not the 20 MB."""
    monkeypatch.setenv("MLFLOW_SYSMETRICS_INCLUDE", "sys." + "x" * 20_000_000)
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", "/" + "y" * 100_000)
    tags = collect()
    assert "sys.cpu" in tags
    assert len(caplog.text) < 2000
    assert "characters)" in caplog.text


def test_good_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seconds as a decimal."""
    monkeypatch.setenv("MLFLOW_SYSMETRICS_TIMEOUT", "2.5")
    assert settings.current().timeout == 2.5


@pytest.mark.parametrize("variable", ["MLFLOW_SYSMETRICS_INCLUDE", "MLFLOW_SYSMETRICS_EXCLUDE"])
def test_patterns_naming_no_tag(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, variable: str
) -> None:
    """A pattern that names no tag (a typo) is ignored with one warning; the good ones apply."""
    monkeypatch.setenv(variable, "sys.hots, sys.gpu*")
    current = settings.current()
    settings._memo.clear()
    settings.current()
    kept = current.include if variable.endswith("INCLUDE") else current.exclude
    assert kept == ("sys.gpu*",)
    assert caplog.text.count(variable) == 1
    assert "sys.hots names no tag" in caplog.text


@pytest.mark.parametrize(
    ("value", "enabled"),
    [
        ("sysmetrics", True),
        ("SysMetrics", True),
        ("git, sysmetrics", True),
        ("a sysmetrics", True),
        ("", False),
        ("sysmetricsx", False),
        ("other", False),
    ],
)
def test_provider_switch(monkeypatch: pytest.MonkeyPatch, value: str, enabled: bool) -> None:
    """MLFLOW_RUN_CONTEXT_PROVIDER: a comma or space list, any case."""
    monkeypatch.setenv("MLFLOW_RUN_CONTEXT_PROVIDER", value)
    assert SysMetricsRunContextProvider().in_context() is enabled


def test_provider_tags_describe_the_machine(replay) -> None:  # type: ignore[no-untyped-def]
    """The provider MLflow calls tags the replayed H100 with its captured facts."""
    replay("h100-vm")
    tags = SysMetricsRunContextProvider().tags()
    captured = expected("h100-vm")
    assert (tags["sys.gpu"], tags["sys.cpu"], tags["sys.cuda_driver"]) == (
        captured["sys.gpu"],
        captured["sys.cpu"],
        captured["sys.cuda_driver"],
    )


def test_provider_reuses_what_a_door_handed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    """While a door creates a run it already collected for, the provider returns those tags, not new ones."""
    from mlflow_sysmetrics import _collection

    handed = {"sys.cpu": "handed over"}
    with _collection.handing_over(handed):
        assert SysMetricsRunContextProvider().tags() == handed
    assert SysMetricsRunContextProvider().tags()["sys.cpu"] != "handed over"
