"""What a type checker sees of the public API (checked by ``mypy --strict``, never run).

Each use below must type-check as written; each line marked ``type: ignore[...]`` must be an
error that mypy reports (``--strict`` warns about an ignore that is not needed, so a
mistake the API stopped catching fails the check).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from typing_extensions import assert_type

import mlflow_sysmetrics
from mlflow_sysmetrics import (
    SysMetricsRunContextProvider,
    collect,
    log_sysmetrics,
    snapshot,
    sysmetrics_run,
    why,
    with_sysmetrics,
)
from mlflow_sysmetrics._why import Explanation, Finding


@with_sysmetrics
def train(epochs: int, *, lr: float = 0.1) -> float:
    return lr * epochs


@with_sysmetrics(run_name="named", nested=True, tags={"team": "vision"}, snapshot=True)
def evaluate(split: str) -> dict[str, float]:
    return {split: 1.0}


@with_sysmetrics
async def train_async(steps: int) -> int:
    return steps


@with_sysmetrics(run_name="batches")
def batches(n: int) -> Iterator[int]:
    yield from range(n)


@with_sysmetrics
async def stream(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


class Trainer:
    @with_sysmetrics
    def fit(self, x: int) -> int:
        return x

    @with_sysmetrics(run_name="cls")
    @classmethod
    def build(cls, x: int) -> Trainer:
        return cls()

    @with_sysmetrics
    @staticmethod
    def helper(x: int) -> str:
        return str(x)


def uses() -> None:
    assert_type(train(3, lr=0.5), float)
    assert_type(evaluate("test"), dict[str, float])
    assert_type(batches(2), Iterator[int])
    assert_type(stream(2), AsyncIterator[int])
    assert_type(Trainer().fit(1), int)
    assert_type(Trainer.build(1), Trainer)
    assert_type(Trainer.helper(1), str)
    assert_type(collect(), dict[str, str])
    assert_type(log_sysmetrics("0" * 32, snapshot=True), dict[str, str])
    assert_type(snapshot(), dict[str, Any])
    assert_type(SysMetricsRunContextProvider().tags(), dict[str, str])
    assert_type(mlflow_sysmetrics.__version__, str)
    with sysmetrics_run(run_name="baseline", tags={"team": "vision"}) as run:
        print(run.info.run_id)
    with sysmetrics_run(run_id="0" * 32, snapshot=True):
        pass
    found = why("0" * 32, tracking_uri="sqlite:///mlflow.db")
    assert_type(found, Explanation)
    assert_type(found.findings, list[Finding])
    assert_type(str(why("0" * 32, than="1" * 32)), str)
    assert_type(found.as_dict(), dict[str, Any])

    train("three")  # type: ignore[arg-type]
    train(3, learning_rate=0.5)  # type: ignore[call-arg]
    with sysmetrics_run(run_nmae="typo"):  # type: ignore[call-arg]
        pass
    with sysmetrics_run(nested="yes"):  # type: ignore[arg-type]
        pass

    @with_sysmetrics(run_nmae="typo")  # type: ignore[call-overload, untyped-decorator]
    def misspelt() -> None: ...

    log_sysmetrics(42)  # type: ignore[arg-type]
    why(42)  # type: ignore[arg-type]
    why("0" * 32, "1" * 32, "sqlite:///mlflow.db")  # type: ignore[call-arg]
