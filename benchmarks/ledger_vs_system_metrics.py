"""The run's ledger beside MLflow's system metrics, on the same training loop, against a real server.

    python benchmarks/ledger_vs_system_metrics.py              # 60-second loops
    python benchmarks/ledger_vs_system_metrics.py --seconds 20

Three runs of one CPU training loop (NumPy matrix products for ``--seconds``), each in a
fresh process, with a 1 GB memory spike of 3 seconds at its middle: a plain
``mlflow.start_run()`` (the baseline), the run's ledger as ``sysmetrics_run()`` takes it
(tags at the start, the counters read at the start and the end, one write) and
``mlflow.start_run(log_system_metrics=True)`` (MLflow's sampling monitor). For each: the CPU
time the monitoring itself took (the ledger's reads and its one write, timed in the thread
that makes them; MLflow's monitor thread, from ``/proc/self/task``), the requests sent to the
server beyond the baseline's (a counting proxy in front of it), and whether the spike shows in
what the run recorded. MLflow's monitor can show it only when one of its samples (every 10 s)
falls inside the 3 s, about 3 runs in 10, and it samples the whole machine's memory, which
other processes move too: a sample inside counts when it is 500 MB above the median of the
others. Prints one table.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLING_MS = 10_000  # MLflow's default MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL
sys.path.insert(0, str(REPO))  # the tests' way to run a fresh interpreter

from tests.fresh import fresh_python  # noqa: E402
from tests.integration.conftest import Proxy, serve_proxy  # noqa: E402

TRAIN = r"""
import json, os, resource, threading, time
import numpy as np
import mlflow

SECONDS, VARIANT = {seconds}, {variant!r}
a = np.random.default_rng(0).random((256, 256))


window = []


def loop():
    started = time.monotonic()
    spike_at = started + SECONDS / 2
    spiked = False
    while time.monotonic() - started < SECONDS:
        a @ a
        if not spiked and time.monotonic() >= spike_at:
            window.append(time.time())
            spike = bytearray(1_000_000_000)
            spike[::4096] = b"x" * len(spike[::4096])  # touched: resident
            time.sleep(3)
            del spike
            window.append(time.time())
            spiked = True


def thread_cpu(name_prefix):
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for thread in threading.enumerate():
        if thread.name.startswith(name_prefix) and thread.native_id:
            fields = open(f"/proc/self/task/{{thread.native_id}}/stat").read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


monitor_cpu = 0.0
parts = {{}}
if VARIANT == "ledger":
    from mlflow_sysmetrics import _writing, ledger as _ledger
    import mlflow_sysmetrics

    # what sysmetrics_run() does around its block, with the ledger's two reads and its
    # one write timed in the thread that makes them
    with mlflow.start_run(run_name=VARIANT, tags=mlflow_sysmetrics.collect()) as run:
        t = time.thread_time()
        span = _ledger.start()
        reads = time.thread_time() - t
        loop()
        t = time.thread_time()
        ledger = span.finish()
        reads += time.thread_time() - t
        t = time.thread_time()
        _writing.write_ledger(mlflow.MlflowClient(), run.info.run_id, ledger, 0)
        write = time.thread_time() - t
        monitor_cpu = reads + write
        parts = {{"reads_ms": reads * 1e3, "write_ms": write * 1e3}}
elif VARIANT == "system metrics":
    with mlflow.start_run(run_name=VARIANT, log_system_metrics=True) as run:
        loop()
        monitor_cpu = thread_cpu("SystemMetricsMonitor")
else:
    with mlflow.start_run(run_name=VARIANT) as run:
        loop()
print(json.dumps({{"run_id": run.info.run_id, "monitor_cpu_s": monitor_cpu, "window": window, **parts}}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{folder / 'mlflow.db'}",
            "--artifacts-destination",
            str(folder / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"),
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return server, url
        except OSError:
            time.sleep(0.3)
    server.kill()
    raise RuntimeError("mlflow server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    import mlflow

    with tempfile.TemporaryDirectory() as scratch:
        server, url = start_server(Path(scratch))
        try:
            proxy = Proxy(url="")
            serve_proxy(url.removeprefix("http://"), proxy)
            client = mlflow.MlflowClient(proxy.url)
            results = {}
            for variant in ("plain", "ledger", "system metrics"):
                proxy.reset()
                ran = fresh_python(
                    TRAIN.format(seconds=args.seconds, variant=variant),
                    env={"MLFLOW_TRACKING_URI": proxy.url, "MLFLOW_SYSMETRICS_LEDGER": "1"},
                    cwd=scratch,
                    timeout=args.seconds * 4 + 300,
                )
                requests = sum(proxy.counts.values())
                run_id = ran.value["run_id"]
                run = client.get_run(run_id)
                if variant == "ledger":
                    peak = run.data.metrics.get("sys.memory_peak_gb")
                    seen = f"sys.memory_peak_gb {peak}" if peak is not None else "no peak"
                    spike = peak is not None and peak >= 1.0
                elif variant == "system metrics":
                    history = client.get_metric_history(run_id, "system/system_memory_usage_megabytes")
                    # MLflow's monitor samples, waits its interval (10 s), then logs: a point's
                    # timestamp is 10 s after the moment it describes
                    begin, end = (1000 * t + SAMPLING_MS for t in ran.value["window"])
                    inside = [m.value for m in history if begin <= m.timestamp <= end + 500]
                    outside = sorted(m.value for m in history if not begin <= m.timestamp <= end + 500)
                    usual = outside[len(outside) // 2] if outside else 0.0
                    # system-wide memory: other processes move it too, hence half the spike
                    spike = bool(outside) and any(value - usual >= 500 for value in inside)
                    seen = f"{len(history)} samples of system-wide memory, {len(inside)} during the spike"
                    if inside:
                        seen += f" (+{max(inside) - usual:.0f} MB over the median)"
                else:
                    seen, spike = "-", False
                if variant == "ledger":
                    seen += f"; reads {ran.value['reads_ms']:.2f} ms, write {ran.value['write_ms']:.1f} ms"
                results[variant] = (ran.value["monitor_cpu_s"], requests, spike, seen)
        finally:
            server.terminate()
            server.wait(timeout=30)
    base_requests = results["plain"][1]
    print(
        f"Training loop of {args.seconds:g} s with a 3 s 1 GB spike at its middle, each in a fresh process."
    )
    print(
        "| run | monitoring CPU (s) | requests beyond a plain run | 1 GB spike recorded | what the run holds |"
    )
    print("|---|---:|---:|---|---|")
    for variant, (cpu, requests, spike, seen) in results.items():
        extra = requests - base_requests
        print(f"| {variant} | {cpu:.4f} | {extra} | {'yes' if spike else 'no'} | {seen} |")


if __name__ == "__main__":
    main()
