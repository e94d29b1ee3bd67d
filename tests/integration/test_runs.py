"""The explicit doors: log_sysmetrics, sysmetrics_run and @with_sysmetrics.

Each runs against a local SQLite store and against the real server.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow.exceptions import MlflowException

from mlflow_sysmetrics import _collection, collect, log_sysmetrics, sysmetrics_run, with_sysmetrics
from tests.integration.conftest import Proxy, copy_store

SYSTEM_KEYS = {"sys.cpu", "sys.cpu_cores", "sys.memory_gb", "sys.gpu", "sys.os", "sys.python"}


@pytest.fixture(params=["local", "server"])
def store(request: pytest.FixtureRequest) -> Any:
    """Each test runs against a SQLite store and against the real server."""
    return request.getfixturevalue("local_store" if request.param == "local" else "tracking")


def _run(run_id: str) -> Any:
    return mlflow.MlflowClient().get_run(run_id)


def _assert_tagged(run_id: str, status: str = "FINISHED") -> Any:
    run = _run(run_id)
    assert set(run.data.tags) >= SYSTEM_KEYS, run.data.tags
    assert run.info.status == status
    assert mlflow.active_run() is None
    return run


class Trainer:
    factor = 3

    @with_sysmetrics
    def fit(self, x: int) -> tuple[int, str]:
        """Fit on x."""
        return x * self.factor, mlflow.active_run().info.run_id  # type: ignore[union-attr]

    @with_sysmetrics(run_name="cls")
    @classmethod
    def build(cls, x: int) -> tuple[int, str]:
        return x * cls.factor, mlflow.active_run().info.run_id  # type: ignore[union-attr]

    @with_sysmetrics
    @staticmethod
    def helper(x: int) -> tuple[int, str]:
        return x + 1, mlflow.active_run().info.run_id  # type: ignore[union-attr]

    @with_sysmetrics(run_name="async-method")
    async def fit_async(self, x: int) -> tuple[int, str]:
        await asyncio.sleep(0)
        return x * self.factor, mlflow.active_run().info.run_id  # type: ignore[union-attr]


@with_sysmetrics
def train(x: int, *, scale: float = 1.0) -> tuple[float, str]:
    """Train a model."""
    return x * scale, mlflow.active_run().info.run_id  # type: ignore[union-attr]


@with_sysmetrics(run_name="named", tags={"sys.cpu": "given by the user", "team": "vision"})
def train_named() -> str:
    return mlflow.active_run().info.run_id  # type: ignore[union-attr]


@with_sysmetrics
async def train_async(x: int) -> tuple[int, str]:
    await asyncio.sleep(0.01)
    return x, mlflow.active_run().info.run_id  # type: ignore[union-attr]


@with_sysmetrics(run_name="gen")
def batches(n: int) -> Iterator[str]:
    for _ in range(n):
        yield mlflow.active_run().info.run_id  # type: ignore[union-attr]


@with_sysmetrics
async def abatches(n: int) -> AsyncIterator[str]:
    for _ in range(n):
        await asyncio.sleep(0)
        yield mlflow.active_run().info.run_id  # type: ignore[union-attr]


def test_function_bare_and_with_arguments(store: Any) -> None:
    """A plain function: the run spans the call; user tags win over ours."""
    value, run_id = train(2, scale=1.5)
    assert value == 3.0
    _assert_tagged(run_id)
    run_id = train_named()
    run = _assert_tagged(run_id)
    assert run.info.run_name == "named"
    assert run.data.tags["sys.cpu"] == "given by the user"
    assert run.data.tags["team"] == "vision"


def test_methods_class_and_static(store: Any) -> None:
    """Methods, class methods and static methods (decorator outside) bind as usual."""
    trainer = Trainer()
    assert trainer.fit(2)[0] == 6
    _assert_tagged(trainer.fit(1)[1])
    value, run_id = Trainer.build(2)
    assert value == 6
    assert _assert_tagged(run_id).info.run_name == "cls"
    value, run_id = Trainer.helper(1)
    assert value == 2
    _assert_tagged(run_id)
    assert Trainer().helper(1)[0] == 2


def test_async_functions_span_the_awaited_body(store: Any) -> None:
    """Async def: still a coroutine function; the run is open while the body runs."""
    assert inspect.iscoroutinefunction(train_async)
    assert inspect.iscoroutinefunction(Trainer.fit_async)
    coroutine = train_async(5)
    assert mlflow.active_run() is None  # nothing starts until it is awaited
    value, run_id = asyncio.run(coroutine)
    assert value == 5
    _assert_tagged(run_id)
    value, run_id = asyncio.run(Trainer().fit_async(2))
    assert (value, _assert_tagged(run_id).info.run_name) == (6, "async-method")


def test_generators_span_the_iteration(store: Any) -> None:
    """A generator's run opens at the first next() and ends when it is exhausted or closed."""
    assert inspect.isgeneratorfunction(batches)
    ids = list(batches(3))
    assert len(set(ids)) == 1
    assert _assert_tagged(ids[0]).info.run_name == "gen"
    early = batches(10)
    first = next(early)
    assert mlflow.active_run() is not None
    early.close()  # the consumer stopped early: a normal end
    _assert_tagged(first, "FINISHED")


def test_async_generators(store: Any) -> None:
    """An async generator's run spans the async iteration: exhausted or closed early FINISHED, raising FAILED."""
    assert inspect.isasyncgenfunction(abatches)

    async def consume() -> list[str]:
        return [item async for item in abatches(2)]

    ids = asyncio.run(consume())
    assert len(set(ids)) == 1
    _assert_tagged(ids[0])

    async def stop_early() -> str:
        stream = abatches(10)
        first = await stream.__anext__()
        await stream.aclose()
        return first

    _assert_tagged(asyncio.run(stop_early()), "FINISHED")
    seen: list[str] = []

    @with_sysmetrics
    async def failing() -> AsyncIterator[int]:
        seen.append(mlflow.active_run().info.run_id)  # type: ignore[union-attr]
        yield 1
        raise Boom("bad stream")

    async def consume_failing() -> None:
        async for _ in failing():
            pass

    with pytest.raises(Boom, match="bad stream"):
        asyncio.run(consume_failing())
    _assert_tagged(seen[0], "FAILED")


class Boom(RuntimeError):
    pass


def test_exceptions_propagate_unchanged_and_fail_the_run(store: Any) -> None:
    """The very exception comes out; the run is FAILED; no run is left active."""
    error = Boom("bad batch")
    seen: list[str] = []

    @with_sysmetrics(run_name="fails")
    def failing() -> None:
        seen.append(mlflow.active_run().info.run_id)  # type: ignore[union-attr]
        raise error

    with pytest.raises(Boom) as caught:
        failing()
    assert caught.value is error
    _assert_tagged(seen[0], "FAILED")

    @with_sysmetrics
    def failing_gen() -> Iterator[int]:
        seen.append(mlflow.active_run().info.run_id)  # type: ignore[union-attr]
        yield 1
        raise error

    with pytest.raises(Boom):
        list(failing_gen())
    _assert_tagged(seen[1], "FAILED")

    with pytest.raises(Boom), sysmetrics_run() as run:
        seen.append(run.info.run_id)
        raise error
    _assert_tagged(seen[2], "FAILED")


def test_metadata_is_kept() -> None:
    """Name, docstring, signature and __wrapped__ survive decoration."""
    assert train.__name__ == "train"
    assert train.__doc__ == "Train a model."
    assert str(inspect.signature(train)) == "(x: 'int', *, scale: 'float' = 1.0) -> 'tuple[float, str]'"
    assert train.__wrapped__.__name__ == "train"  # type: ignore[attr-defined]
    assert Trainer.fit.__doc__ == "Fit on x."


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: with_sysmetrics(3), "write @with_sysmetrics or @with_sysmetrics\\(run_name=...\\)"),
        (lambda: with_sysmetrics("train"), "keyword arguments only"),
        (lambda: with_sysmetrics(run_nmae="x"), "unknown option\\(s\\) run_nmae"),
        (lambda: with_sysmetrics(tags=["a"]), "tags= takes a dict"),
    ],
)
def test_misuse_fails_at_decoration(make: Any, message: str) -> None:
    """A wrong decoration raises TypeError at once, saying how to call it."""
    with pytest.raises(TypeError, match=message):
        make()


def test_tagging_an_open_run_that_fails_only_warns(
    local_store: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The store refusing our tags inside an active run: a warning, and the user's block goes on."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise MlflowException("the store is read-only")

    with mlflow.start_run() as outer:
        monkeypatch.setattr(mlflow.MlflowClient, "log_batch", refuse)
        with sysmetrics_run() as same:
            body_ran = same.info.run_id == outer.info.run_id
    assert body_ran
    assert f"could not tag run {outer.info.run_id} with system tags: the store is read-only" in caplog.text


def test_inside_an_active_run(store: Any) -> None:
    """Bare use inside a run tags that run and leaves it open; nested=True opens a child."""
    with mlflow.start_run() as outer:
        _, inner_id = train(1)
        assert inner_id == outer.info.run_id
        assert mlflow.active_run().info.run_id == outer.info.run_id  # type: ignore[union-attr]
        with sysmetrics_run() as same:
            assert same.info.run_id == outer.info.run_id
        with sysmetrics_run(nested=True, run_name="child") as child:
            assert child.info.run_id != outer.info.run_id
        assert mlflow.active_run().info.run_id == outer.info.run_id  # type: ignore[union-attr]
    outer_run = _assert_tagged(outer.info.run_id)
    child_run = _assert_tagged(child.info.run_id)
    assert child_run.data.tags["mlflow.parentRunId"] == outer_run.info.run_id


def test_log_sysmetrics_on_a_client_made_run_reads_once_writes_once(tracking: Proxy) -> None:
    """A run made by MlflowClient.create_run: one read (its tags now), one log-batch with ours."""
    client = mlflow.MlflowClient()
    run = client.create_run(client.get_experiment_by_name("Default").experiment_id)
    tracking.reset()
    written = log_sysmetrics(run.info.run_id)
    assert tracking.count("POST", "/runs/log-batch") == 1
    assert tracking.count("GET", "/runs/get") == 1
    assert sum(tracking.counts.values()) == 2  # no other request at all
    stored = client.get_run(run.info.run_id).data.tags
    assert {k: stored[k] for k in written} == written
    assert set(written) >= SYSTEM_KEYS
    tracking.reset()
    assert log_sysmetrics(run.info.run_id) == {}  # the same machine again: nothing to write
    assert tracking.count("POST", "/runs/log-batch") == 0


def test_a_runs_facts_belong_to_the_machine_that_ran_it(
    local_store: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Tagged on the H100, logged again from a CPU pod: kept, a warning names the differences."""
    from tests.conftest import fixture_root

    client = mlflow.MlflowClient()
    run_id = client.create_run("0").info.run_id
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(fixture_root("h100-vm")))
    _collection.clear_cache()
    log_sysmetrics(run_id)
    before = client.get_run(run_id).data.tags
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(fixture_root("cgroup-v2-nested")))
    _collection.clear_cache()
    assert log_sysmetrics(run_id) == {}
    assert client.get_run(run_id).data.tags == before
    assert "already carries system tags from another machine (sys.cpu is" in caplog.text
    replaced = log_sysmetrics(run_id, overwrite=True)
    after = client.get_run(run_id).data.tags
    assert {k: v for k, v in after.items() if k.startswith("sys")} == replaced
    assert "sys.gpu_driver" not in after


def test_log_sysmetrics_to_another_store(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, empty_store: Path
) -> None:
    """A run of MlflowClient("sqlite:///other.db"): tagged there, and no ./mlflow.db is made."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = copy_store(empty_store, tmp_path, "other.db")
    client = mlflow.MlflowClient(uri)
    run_id = client.create_run(client.get_experiment_by_name("Default").experiment_id).info.run_id
    written = log_sysmetrics(run_id, tracking_uri=uri)
    assert set(written) >= SYSTEM_KEYS
    assert set(client.get_run(run_id).data.tags) >= SYSTEM_KEYS
    assert log_sysmetrics(run_id, client=client) == {}
    assert not (tmp_path / "mlflow.db").exists()
    with pytest.raises(TypeError, match="not both"):
        log_sysmetrics(run_id, tracking_uri=uri, client=client)


def test_log_sysmetrics_without_a_run(tracking: Proxy) -> None:
    """No run at all: a ValueError that says what to do, and nothing sent."""
    with pytest.raises(ValueError, match="no run to tag"):
        log_sysmetrics()
    assert sum(tracking.counts.values()) == 0
    with pytest.raises(TypeError, match="run id string"):
        log_sysmetrics(42)  # type: ignore[arg-type]


def test_log_sysmetrics_unknown_run_is_mlflows_error(tracking: Proxy) -> None:
    """A run that does not exist: MLflow's own error."""
    with pytest.raises(MlflowException, match=r"(?i)not found|does not exist|no run"):
        log_sysmetrics("0" * 32)


def test_sysmetrics_run_sends_tags_in_the_create_request(
    tracking: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new run: our tags ride in runs/create; with the provider also on they are collected once."""
    monkeypatch.setenv("MLFLOW_RUN_CONTEXT_PROVIDER", "sysmetrics")
    collect()  # warm the cache, so the count below is about this run only
    calls: list[int] = []
    real = _collection.run_collection

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(_collection, "run_collection", counting)
    tracking.reset()
    with sysmetrics_run(run_name="once") as run:
        pass
    assert len(calls) == 1  # sysmetrics_run collected; the provider reused it
    creates = [json.loads(body) for method, path, body in tracking.bodies if path.endswith("/runs/create")]
    assert len(creates) == 1
    assert {tag["key"] for tag in creates[0]["tags"]} >= SYSTEM_KEYS
    (ledger,) = [
        json.loads(body) for method, path, body in tracking.bodies if path.endswith("/runs/log-batch")
    ]
    assert [tag["key"] for tag in ledger["tags"]] == ["sys.ledger"]  # the one write at the end: the ledger
    _assert_tagged(run.info.run_id)


def test_snapshot_artifact(store: Any, tmp_path: Path) -> None:
    """snapshot=True logs sysmetrics/system.json with the schema and every collector."""
    with sysmetrics_run(snapshot=True) as run:
        pass
    path = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="sysmetrics/system.json", dst_path=str(tmp_path)
    )
    with open(path) as handle:
        document = json.load(handle)
    assert document["schema"] == 1
    assert "gpus" in document
    assert {c["name"] for c in document["collectors"]} >= {"cpu", "gpu"}


def test_threads_each_have_their_own_run(tracking: Proxy) -> None:
    """MLflow keeps the active run per thread: eight threads, eight tagged runs, nothing lost."""
    ids: list[str] = []
    errors: list[BaseException] = []
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name("Default").experiment_id

    def work(n: int) -> None:
        try:
            if n % 2:
                with sysmetrics_run(run_name=f"thread-{n}") as run:
                    ids.append(run.info.run_id)
            else:
                made = client.create_run(experiment)
                log_sysmetrics(made.info.run_id)
                ids.append(made.info.run_id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(ids)) == 8
    for run_id in ids:
        assert set(_run(run_id).data.tags) >= SYSTEM_KEYS
