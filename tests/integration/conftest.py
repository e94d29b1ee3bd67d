"""A real ``mlflow server`` (SQLite) on a free loopback port, and a counting proxy before it.

Nothing is faked here: clients talk HTTP to a server process that this fixture starts and
stops. The proxy forwards every request unchanged and counts them by method and path,
across all processes that use it (a torchrun launch, the load test); a test may have it
refuse some requests, or hold them until it lets them go.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before the -m option deselects by marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration ``integration``: ``-m "not integration"`` runs tests/unit."""
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.integration)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory, empty_store: Path) -> Iterator[Server]:
    """``mlflow server`` with a SQLite store, waited on until /health answers, stopped after.

    One worker process (MLflow starts four, each importing MLflow: 20 s of CPU on two cores),
    and a copy of the empty store, its Default experiment's artifacts served as the server
    would have made them.
    """
    folder = tmp_path_factory.mktemp("server")
    port = free_port()
    log = folder / "server.log"
    store = copy_store(empty_store, folder, artifacts="mlflow-artifacts:/0")
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        store,
        "--artifacts-destination",
        str(folder / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    # MLflow 3's server also starts job runners (several huey consumers, busy even when idle);
    # no test uses server-side jobs, and on two cores they would slow every other test.
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"mlflow server did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)
    yield Server(url, process, log)
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


@dataclass
class Proxy:
    url: str
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    bodies: list[tuple[str, str, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: requests whose body holds this are answered 400 (MLflow's error shape), not forwarded
    refuse: bytes | None = None
    #: requests to a path ending in this wait for ``release`` before they are forwarded
    hold: str | None = None
    #: set when a request to ``hold`` has arrived
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def reset(self) -> None:
        with self.lock:
            self.counts.clear()
            self.bodies.clear()
            self.refuse = None

    @contextlib.contextmanager
    def holding(self, path_end: str) -> Iterator[tuple[threading.Event, threading.Event]]:
        """Hold requests to a path ending in ``path_end`` until the test sets ``release``, or the block ends.

        Yields the events ``arrived`` (a held request came) and ``release`` (let it go on).
        """
        with self.lock:
            self.arrived.clear()
            self.release.clear()
            self.hold = path_end
        try:
            yield self.arrived, self.release
        finally:
            with self.lock:
                self.hold = None
            self.release.set()

    def count(self, method: str, path_part: str) -> int:
        with self.lock:
            return sum(n for (m, p), n in self.counts.items() if m == method and path_part in p)


def serve_proxy(target: str, proxy: Proxy) -> http.server.ThreadingHTTPServer:
    """Serve ``proxy`` (its counts, bodies, refusals and holds) in front of ``target`` (host:port), in a thread."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path = self.path.split("?", 1)[0]
            with proxy.lock:
                proxy.counts[(self.command, path)] += 1
                proxy.bodies.append((self.command, path, body))
                refused = proxy.refuse is not None and proxy.refuse in body
                held = proxy.hold is not None and path.endswith(proxy.hold)
            if held:
                proxy.arrived.set()
                proxy.release.wait(300)
            if refused:
                data = b'{"error_code": "INVALID_PARAMETER_VALUE", "message": "refused by the test proxy"}'
                self.send_response(400)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            upstream = http.client.HTTPConnection(target, timeout=120)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            upstream.close()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    server.daemon_threads = True
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="session")
def counting_proxy(mlflow_server: Server) -> Iterator[Proxy]:
    """An HTTP proxy in front of the server that counts requests by method and path."""
    proxy = Proxy(url="")
    server = serve_proxy(mlflow_server.url.removeprefix("http://"), proxy)
    yield proxy
    server.shutdown()


@pytest.fixture
def tracking(counting_proxy: Proxy, monkeypatch: pytest.MonkeyPatch) -> Iterator[Proxy]:
    """Point the MLflow client at the real server, through the counting proxy."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", counting_proxy.url)
    mlflow.set_tracking_uri(counting_proxy.url)
    counting_proxy.reset()
    yield counting_proxy
    _forget_mlflow_state()


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite store, made once.

    MLflow builds a new store by running every schema migration (about 6 s here); a copy of
    this one opens in a few milliseconds.
    """
    import mlflow

    folder = tmp_path_factory.mktemp("empty-store")
    before = os.getcwd()
    os.chdir(folder)  # where MLflow would make ./mlruns
    try:
        mlflow.MlflowClient(f"sqlite:///{folder / 'mlflow.db'}").search_experiments()
    finally:
        os.chdir(before)
    return folder / "mlflow.db"


def copy_store(empty: Path, folder: Path, name: str = "mlflow.db", artifacts: str | None = None) -> str:
    """A copy of the ``empty`` store in ``folder``, as MLflow would have made it there.

    The Default experiment's artifact location is written into a store when it is made; the
    copy's is ``artifacts``, by default ``folder/mlruns/0`` (a client's store opened in
    ``folder``).
    """
    target = folder / name
    shutil.copyfile(empty, target)
    with contextlib.closing(sqlite3.connect(target)) as db, db:
        db.execute(
            "UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
            (artifacts or str(folder / "mlruns" / "0"),),
        )
    return f"sqlite:///{target}"


@pytest.fixture
def local_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_store: Path) -> Iterator[str]:
    """A SQLite store in a temporary folder, for tests that need no server.

    The test runs in that folder: MLflow's SQLite store puts artifacts under ``./mlruns``
    of the folder it is opened in, which would otherwise be the repository.
    """
    import mlflow

    monkeypatch.chdir(tmp_path)
    uri = copy_store(empty_store, tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    yield uri
    _forget_mlflow_state()


def _forget_mlflow_state() -> None:
    """End runs left open and forget the store and experiment a test chose.

    MLflow exports both to the environment for child processes (``set_tracking_uri``,
    ``set_experiment``); that is MLflow's doing through the fixtures, and is undone here.
    """
    import mlflow
    from mlflow.tracking import fluent

    while mlflow.active_run() is not None:
        mlflow.end_run()
    fluent._active_experiment_id = None
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]


def script_path(name: str) -> str:
    """The installed console script ``name`` (next to this Python), failing loudly if absent."""
    found = shutil.which(name, path=os.path.dirname(sys.executable)) or shutil.which(name)
    assert found, f"{name} is not installed: pip install -e ."
    return found
