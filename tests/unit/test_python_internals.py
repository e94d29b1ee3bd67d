"""Where the package reads CPython internals for speed, a Python without them gets the public way.

``os.environ._data``, ``importlib._bootstrap._module_locks`` and ``__spec__._initializing``
are not public names. Each test here takes one away (or gives it another shape, as a new
Python might) and checks that the package degrades to slower, never to wrong.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, MutableMapping

import pytest

from mlflow_sysmetrics import collect, provider
from tests.fresh import fresh_python


class PlainEnviron(MutableMapping[str, str]):
    """An ``os.environ`` with no ``_data`` store behind it (a Python that keeps it otherwise)."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def __getitem__(self, key: str) -> str:
        return self.values[key]

    def __setitem__(self, key: str, value: str) -> None:
        self.values[key] = value

    def __delitem__(self, key: str) -> None:
        del self.values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def test_environment_read_without_cpythons_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """Launcher ranks and settings are read through the public mapping when `_data` is missing."""
    plain = PlainEnviron(
        {**os.environ, "RANK": "3", "WORLD_SIZE": "8", "MLFLOW_SYSMETRICS_EXCLUDE": "sys.os"}
    )
    monkeypatch.setattr(os, "environ", plain)
    assert not hasattr(os.environ, "_data")
    tags = collect()
    assert (tags["sys.dist.rank"], tags["sys.dist.world_size"]) == ("3", "8")
    assert "sys.os" not in tags
    plain["RANK"] = "5"  # read again on the next call, as through the fast path
    assert collect()["sys.dist.rank"] == "5"


NO_SPEC_FLAG = """
import json, os, sys, threading, types
mlflow = types.ModuleType("mlflow")
mlflow.__spec__ = types.SimpleNamespace(name="mlflow")  # a spec that says nothing of its import
sys.modules["mlflow"] = mlflow
from mlflow_sysmetrics import provider
provider.SysMetricsRunContextProvider()
names = [t.name for t in threading.enumerate()]
print(json.dumps([provider._mlflow_half_imported(), provider._prefetch_started, names]))
"""

LOCKS_OF_ANOTHER_SHAPE = """
import importlib._bootstrap as bootstrap, json, os, sys, threading, types

class Table:
    # The operations importlib's own code uses on its table, but not a dict.
    def __init__(self, items): self.items = dict(items)
    def __getitem__(self, key): return self.items[key]
    def __setitem__(self, key, value): self.items[key] = value
    def __delitem__(self, key): del self.items[key]
    def get(self, key, default=None): return self.items.get(key, default)

bootstrap._module_locks = Table(bootstrap._module_locks)
mlflow = types.ModuleType("mlflow")
mlflow.__spec__ = types.SimpleNamespace(name="mlflow", _initializing=True)  # as during `import mlflow`
sys.modules["mlflow"] = mlflow
from mlflow_sysmetrics import _state, collect, provider
provider.SysMetricsRunContextProvider()
names = [t.name for t in threading.enumerate()]
pid = os.fork()
if pid == 0:  # the child repairs nothing it cannot, and collects
    os._exit(0 if "sys.cpu" in collect() else 1)
_, status = os.waitpid(pid, 0)
print(json.dumps([_state.imports_repairable_after_fork(), names, os.waitstatus_to_exitcode(status)]))
"""


def test_no_gathering_ahead_where_python_does_not_mark_imports() -> None:
    """Without `__spec__._initializing` the end of `import mlflow` cannot be known: no thread."""
    half_imported, started, threads = fresh_python(
        NO_SPEC_FLAG, env={"MLFLOW_RUN_CONTEXT_PROVIDER": "sysmetrics"}
    ).value
    assert half_imported is None
    assert started is True  # decided once: the first run gathers
    assert threads == ["MainThread"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX's")
def test_no_gathering_ahead_where_a_forked_child_could_not_repair_imports() -> None:
    """Import locks kept in another shape: no background thread (a fork could not free its lock)."""
    repairable, threads, child = fresh_python(
        LOCKS_OF_ANOTHER_SHAPE, env={"MLFLOW_RUN_CONTEXT_PROVIDER": "sysmetrics"}
    ).value
    assert repairable is False
    assert threads == ["MainThread"]
    assert child == 0


def test_a_provider_name_with_a_typo_warns_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """MLFLOW_RUN_CONTEXT_PROVIDER=sysmetrcs switches nothing on, and says so once."""
    monkeypatch.setattr(provider, "_last", ("", False))
    monkeypatch.setenv("MLFLOW_RUN_CONTEXT_PROVIDER", "sysmetrcs")
    with caplog.at_level(logging.WARNING, logger="mlflow_sysmetrics"):
        assert provider.provider_enabled() is False
        assert provider.provider_enabled() is False
    (record,) = caplog.records
    assert "MLFLOW_RUN_CONTEXT_PROVIDER" in record.getMessage()
    assert "did you mean 'sysmetrics'?" in record.getMessage()
    monkeypatch.setenv("MLFLOW_RUN_CONTEXT_PROVIDER", "sysmetrics")
    assert provider.provider_enabled() is True
