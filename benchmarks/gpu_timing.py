"""Time each way of reading the GPU facts, in fresh processes, and the warm collect() call.

Run on a machine with an NVIDIA GPU: ``python3 benchmarks/gpu_timing.py --processes 10``.
Prints medians (and min-max) in milliseconds; no MLflow needed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CASES = {
    # What collect() costs on the first call of a process, psutil imported beforehand (as in MLflow).
    "collect() first call, all tags": """
import psutil, time
t = time.perf_counter()
import mlflow_sysmetrics
tags = mlflow_sysmetrics.collect()
ms = (time.perf_counter() - t) * 1e3
assert 'sysmetrics.error' not in tags, tags
""",
    # The first run of a process with implicit tagging on: the provider MLflow would build at
    # `import mlflow` has gathered in the background meanwhile (MLflow is not installed here,
    # so the provider is built directly, which starts the gathering at once).
    "prefetched: provider tags() 0.5 s after it was built": """
import os, time, threading
os.environ['MLFLOW_RUN_CONTEXT_PROVIDER'] = 'sysmetrics'
from mlflow_sysmetrics import SysMetricsRunContextProvider
provider = SysMetricsRunContextProvider()
time.sleep(0.5)
t = time.perf_counter()
tags = provider.tags()
ms = (time.perf_counter() - t) * 1e3
assert 'sysmetrics.error' not in tags, tags
assert not [x for x in threading.enumerate() if x.name.startswith('mlflow-sysmetrics')]
""",
    "importing our GPU modules (nvidia with its NVML pass and binding, device, visibility)": """
import time
import mlflow_sysmetrics._collection, mlflow_sysmetrics.collectors
t = time.perf_counter()
from mlflow_sysmetrics.collectors.accelerators import device, visibility
from mlflow_sysmetrics.collectors.accelerators.nvidia import nvml_pass
ms = (time.perf_counter() - t) * 1e3
""",
    "our NVML path, all facts (load, init, queries, shutdown)": """
import time
t = time.perf_counter()
from mlflow_sysmetrics.collectors.accelerators.nvidia import nvml_pass
inv = nvml_pass.inventory()
ms = (time.perf_counter() - t) * 1e3
assert inv.devices and inv.cuda_driver
""",
    "collect() first call: the gpu collector's own time": """
import psutil
from mlflow_sysmetrics import _collection
report = _collection.run_collection()
ms = next(c.seconds for c in report.collectors if c.name == 'gpu') * 1e3
""",
    "ctypes NVML: dlopen + nvmlInit_v2 + nvmlShutdown only": """
import ctypes, time
t = time.perf_counter()
lib = ctypes.CDLL('libnvidia-ml.so.1')
assert lib.nvmlInit_v2() == 0
lib.nvmlShutdown()
ms = (time.perf_counter() - t) * 1e3
""",
    "pynvml: import": """
import time
t = time.perf_counter()
import pynvml
ms = (time.perf_counter() - t) * 1e3
""",
    "pynvml: import + init + 6 facts + shutdown": """
import time
t = time.perf_counter()
import pynvml as n
n.nvmlInit()
d = n.nvmlSystemGetDriverVersion(); c = n.nvmlSystemGetCudaDriverVersion_v2()
h = n.nvmlDeviceGetHandleByIndex(0)
name = n.nvmlDeviceGetName(h); mem = n.nvmlDeviceGetMemoryInfo(h).total
cc = n.nvmlDeviceGetCudaComputeCapability(h); cnt = n.nvmlDeviceGetCount()
n.nvmlShutdown()
ms = (time.perf_counter() - t) * 1e3
""",
    "nvidia-smi --query-gpu=name (0.1.3, every run)": """
import subprocess, time
t = time.perf_counter()
subprocess.run(['nvidia-smi', '--query-gpu=name', '--format=csv,noheader'], capture_output=True, check=True, timeout=10)
ms = (time.perf_counter() - t) * 1e3
""",
    "nvidia-smi 9-field query + header (our fallback)": """
import subprocess, time
from mlflow_sysmetrics.collectors.accelerators.nvidia import facts
t = time.perf_counter()
subprocess.run(['nvidia-smi', '--query-gpu=' + facts.QUERY_FIELDS, '--format=csv'], capture_output=True, check=True, timeout=10)
subprocess.run(['nvidia-smi'], capture_output=True, check=True, timeout=10)
ms = (time.perf_counter() - t) * 1e3
""",
    "/proc/driver/nvidia files": """
import time
from mlflow_sysmetrics._files import Root
from mlflow_sysmetrics.collectors.accelerators.nvidia import fallback
t = time.perf_counter()
inv = fallback.from_proc(Root('/'))
ms = (time.perf_counter() - t) * 1e3
ms = ms if inv is not None else float('nan')
""",
}

WARM = """
import time, statistics, json
import mlflow_sysmetrics
mlflow_sysmetrics.collect()
samples = []
for _ in range(200):
    t = time.perf_counter()
    for _ in range(50):
        mlflow_sysmetrics.collect()
    samples.append((time.perf_counter() - t) / 50 * 1e6)
print(json.dumps(statistics.median(samples)))
"""


def run_case(code: str) -> float:
    wrapped = code + "\nimport json as _j; print(_j.dumps(ms))\n"
    out = subprocess.run(
        [sys.executable, "-c", wrapped],
        capture_output=True,
        text=True,
        env=os.environ,
        timeout=60,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed")
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--processes", type=int, default=10)
    args = parser.parse_args()
    print(f"{'way':<56} {'median ms':>10} {'min-max ms':>16}   (fresh process each, n={args.processes})")
    for label, code in CASES.items():
        try:
            times = [run_case(code) for _ in range(args.processes)]
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            print(f"{label:<56} {'n/a':>10}   {exc}")
            continue
        print(f"{label:<56} {statistics.median(times):>10.2f} {min(times):>7.2f}-{max(times):<8.2f}")
    warm = subprocess.run(
        [sys.executable, "-c", WARM], capture_output=True, text=True, check=True, timeout=300
    )
    print(
        f"{'collect() warm call, median of 200 batches of 50':<56} {float(warm.stdout) / 1000:>10.4f}   ({float(warm.stdout):.1f} us)"
    )


if __name__ == "__main__":
    main()
