"""Where the time of reading NVIDIA facts goes, call by call, on a machine with a GPU.

``python3 benchmarks/nvml_breakdown.py``: one fresh process per sample (10), medians in ms.
Times each NVML call (power limit, PCIe link and the 18 NVLink states included), our
inventory with and without those link and power queries, and ``nvidia-smi --version`` (the
cheap CUDA version source of the fallback).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

STEPS = r"""
import ctypes, json, time
marks = {}
t = time.perf_counter()
lib = ctypes.CDLL('libnvidia-ml.so.1'); marks['dlopen'] = time.perf_counter()
lib.nvmlInit_v2(); marks['nvmlInit_v2'] = time.perf_counter()
buf = ctypes.create_string_buffer(96)
lib.nvmlSystemGetDriverVersion(buf, 96); marks['driver version'] = time.perf_counter()
v = ctypes.c_int(); lib.nvmlSystemGetCudaDriverVersion_v2(ctypes.byref(v)); marks['cuda version'] = time.perf_counter()
h = ctypes.c_void_p(); lib.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(h)); marks['handle by index'] = time.perf_counter()
lib.nvmlDeviceGetName(h, buf, 96); marks['name'] = time.perf_counter()
lib.nvmlDeviceGetUUID(h, buf, 96); marks['uuid'] = time.perf_counter()
m = (ctypes.c_ulonglong * 3)(); lib.nvmlDeviceGetMemoryInfo(h, ctypes.byref(m)); marks['memory'] = time.perf_counter()
a, b = ctypes.c_int(), ctypes.c_int(); lib.nvmlDeviceGetCudaComputeCapability(h, ctypes.byref(a), ctypes.byref(b)); marks['compute capability'] = time.perf_counter()
p = (ctypes.c_char * 64)(); lib.nvmlDeviceGetPciInfo_v3(h, ctypes.byref(p)); marks['pci info'] = time.perf_counter()
c, d = ctypes.c_uint(), ctypes.c_uint(); lib.nvmlDeviceGetMigMode(h, ctypes.byref(c), ctypes.byref(d)); marks['mig mode'] = time.perf_counter()
u = ctypes.c_uint(); lib.nvmlDeviceGetEnforcedPowerLimit(h, ctypes.byref(u)); marks['power limit'] = time.perf_counter()
lib.nvmlDeviceGetMaxPcieLinkGeneration(h, ctypes.byref(u)); lib.nvmlDeviceGetCurrPcieLinkWidth(h, ctypes.byref(u)); marks['pcie link'] = time.perf_counter()
for link in range(18):
    lib.nvmlDeviceGetNvLinkState(h, link, ctypes.byref(u))
marks['18 nvlink states'] = time.perf_counter()
lib.nvmlShutdown(); marks['nvmlShutdown'] = time.perf_counter()
out, last = {}, t
for k, v in marks.items():
    out[k] = (v - last) * 1e3; last = v
print(json.dumps(out))
"""

VARIANT = r"""
import json, time
t0 = time.perf_counter()
from mlflow_sysmetrics.collectors.accelerators.nvidia import _nvml, nvml_pass
imported = time.perf_counter()
_nvml.load()
t = time.perf_counter()
inv = nvml_pass.inventory()
print(json.dumps([(time.perf_counter() - t) * 1e3, (imported - t0) * 1e3, len(inv.devices)]))
"""


def fresh(code: str) -> object:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    return json.loads(out.stdout)


def main() -> None:
    runs = [fresh(STEPS) for _ in range(10)]
    print(f"{'NVML step (fresh process, after dlopen)':<40} {'median ms':>10}")
    for key in runs[0]:  # type: ignore[union-attr]
        print(f"{key:<40} {statistics.median(r[key] for r in runs):>10.2f}")  # type: ignore[index]
    samples = [fresh(VARIANT) for _ in range(10)]
    times = [s[0] for s in samples]  # type: ignore[index]
    imports = [s[1] for s in samples]  # type: ignore[index]
    print(
        f"inventory() after dlopen, all facts {statistics.median(times):>8.2f} ms"
        f"  (min {min(times):.2f}; importing our NVML modules {statistics.median(imports):.2f} ms)"
    )
    out = subprocess.run(["nvidia-smi", "--version"], capture_output=True, text=True, check=False)
    print("$ nvidia-smi --version\n" + out.stdout.strip())
    times = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run(["nvidia-smi", "--version"], capture_output=True, check=False)
        times.append((time.perf_counter() - t) * 1e3)
    print(f"nvidia-smi --version: median {statistics.median(times):.2f} ms")


if __name__ == "__main__":
    main()
