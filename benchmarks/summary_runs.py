"""`mlflow-sysmetrics summary` on a large experiment served by a real `mlflow server`.

    python benchmarks/summary_runs.py [--runs 10000]

Fills a SQLite store with RUNS tagged runs (four machine kinds, each run with a few params and
metrics, as training runs have), serves it with `mlflow server` on a free loopback port, and
times the command over HTTP: the whole experiment, `--max-runs 1000`, and a `--filter` that
keeps a quarter of the runs. Each figure is the median of three runs of the command; the
progress line goes to standard error only on a terminal, so it is not part of the figure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

KINDS = [
    {"sys.cpu": "Intel(R) Xeon(R) Platinum 8480+", "sys.cpu_available": "32", "sys.memory_gb": "270.2"},
    {"sys.cpu": "AMD EPYC 7R13 Processor", "sys.cpu_available": "2.5", "sys.memory_limit_gb": "8.59"},
    {"sys.cpu": "AMD EPYC 9654 96-Core Processor", "sys.cpu_available": "96", "sys.memory_gb": "811.3"},
    {"sys.cpu": "Apple M3 Max", "sys.cpu_available": "16", "sys.memory_gb": "68.72"},
]
GPUS = ["8x NVIDIA H100 80GB HBM3", "None", "AMD Instinct MI300X", "Apple M3 Max"]


def fill(uri: str, runs: int) -> None:
    """RUNS finished runs in experiment "bench", written in batches straight into the store."""
    import mlflow
    from mlflow.entities import Metric, Param, RunTag

    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("bench")
    now = int(time.time() * 1000)
    for i in range(runs):
        kind = i % len(KINDS)
        run = client.create_run(experiment, start_time=now - 60_000)
        tags = [RunTag(k, v) for k, v in {**KINDS[kind], "sys.gpu": GPUS[kind]}.items()]
        params = [Param("lr", str(0.01 * (1 + i % 4))), Param("batch", "64")]
        metrics = [Metric("loss", 1.0 / (1 + i), now, 0)]
        client.log_batch(run.info.run_id, metrics=metrics, params=params, tags=tags)
        client.set_terminated(run.info.run_id, end_time=now - 60_000 + 400 * (1 + kind))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10_000)
    args = parser.parse_args()
    cli = shutil.which("mlflow-sysmetrics", path=os.path.dirname(sys.executable))
    server_cli = shutil.which("mlflow", path=os.path.dirname(sys.executable))
    if not cli or not server_cli:
        raise SystemExit("pip install -e '.[mlflow]' first")
    with tempfile.TemporaryDirectory() as folder:
        store = f"sqlite:///{Path(folder) / 'mlflow.db'}"
        started = time.perf_counter()
        fill(store, args.runs)
        print(f"filled {args.runs} runs in {time.perf_counter() - started:.0f} s")
        port = free_port()
        server = subprocess.Popen(
            [server_cli, "server", "--backend-store-uri", store, "--host", "127.0.0.1", "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=folder,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    urllib.request.urlopen(f"{url}/health", timeout=1)
                    break
                except OSError:
                    time.sleep(0.1)
            env = {**os.environ, "MLFLOW_TRACKING_URI": url}
            base = [cli, "summary", "--experiment", "bench"]
            cases = [
                (f"all {args.runs} runs", base),
                ("--max-runs 1000", [*base, "--max-runs", "1000"]),
                ("--filter \"params.lr = '0.01'\" (a quarter)", [*base, "--filter", "params.lr = '0.01'"]),
            ]
            print()
            print(f"| {'summary of':<44} | {'seconds':>8} |")
            print(f"|{'-' * 46}|{'-' * 10}|")
            for label, command in cases:
                seconds = statistics.median(timed(command, env) for _ in range(3))
                print(f"| {label:<44} | {seconds:>8.2f} |")
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
