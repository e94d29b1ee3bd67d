"""The run's ledger against nvidia-smi, on a machine with an NVIDIA GPU (no MLflow needed).

    python3 benchmarks/gpu_ledger_check.py              # 20 s of load
    python3 benchmarks/gpu_ledger_check.py --seconds 30

A span of the ledger around 2 s idle, ``--seconds`` of matrix products on the first GPU and
2 s idle, while ``nvidia-smi`` samples every visible GPU's power every 100 ms. Then:

- ``sys.gpu_energy_wh`` against those samples integrated over the span (trapezoids, every
  GPU the ledger counts): within 5 %;
- ``sys.gpu_memory_peak_gb`` against PyTorch's own ``max_memory_reserved`` when PyTorch is
  installed (the load is then ``torch.matmul``); without PyTorch the load is a small CUDA
  kernel loaded through the driver (``libcuda``, PTX compiled by the driver) and the ledger
  names what it could not count;
- the throttle shares against the "Clocks Event Reasons Counters" of
  ``nvidia-smi -q -d PERFORMANCE`` read before and after (power cap: SW Power Capping;
  temperature: SW and HW Thermal Slowdown), within 2 points;
- the ledger's own cost: its first span in this process (NVML's initialisation falls there)
  and the median of 20 warm spans, with the number of GPUs counted;
- ``sys.memory_peak_gb`` of a program under ``mlflow-sysmetrics run`` (started as the command
  starts it, without MLflow: its launcher, a span following it) against the program's own
  ``VmHWM``, with this process's larger peak (CUDA loaded) as the figure it must not be.

Prints each figure beside its reference and ``PASS``/``FAIL``; exits 1 on a failure.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import itertools
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlflow_sysmetrics import collect
from mlflow_sysmetrics import ledger as _ledger
from mlflow_sysmetrics.ledger.gpu import GpuMeter

# One thread's long chain of fused multiply-adds, stored at the end so nothing is dropped.
PTX = rb"""
.version 6.0
.target sm_50
.address_size 64

.visible .entry burn(.param .u64 out, .param .u32 iters)
{
    .reg .pred %p<2>;
    .reg .f32 %f<5>;
    .reg .b32 %r<6>;
    .reg .b64 %rd<4>;

    ld.param.u64 %rd1, [out];
    ld.param.u32 %r1, [iters];
    mov.u32 %r2, %tid.x;
    mov.u32 %r3, %ntid.x;
    mov.u32 %r4, %ctaid.x;
    mad.lo.u32 %r2, %r4, %r3, %r2;
    cvt.rn.f32.u32 %f1, %r2;
    mov.f32 %f2, 0f3F800001;
    mov.f32 %f3, 0f3F7FFFFE;
    mov.f32 %f4, 0f00000000;
    mov.u32 %r5, 0;
LOOP:
    fma.rn.f32 %f1, %f1, %f2, %f3;
    fma.rn.f32 %f4, %f4, %f3, %f1;
    fma.rn.f32 %f1, %f1, %f3, %f4;
    fma.rn.f32 %f4, %f4, %f2, %f1;
    fma.rn.f32 %f1, %f1, %f2, %f3;
    fma.rn.f32 %f4, %f4, %f3, %f1;
    fma.rn.f32 %f1, %f1, %f3, %f4;
    fma.rn.f32 %f4, %f4, %f2, %f1;
    add.u32 %r5, %r5, 1;
    setp.lt.u32 %p1, %r5, %r1;
    @%p1 bra LOOP;
    add.f32 %f1, %f1, %f4;
    cvta.to.global.u64 %rd1, %rd1;
    mul.wide.u32 %rd2, %r2, 4;
    add.u64 %rd3, %rd1, %rd2;
    st.global.f32 [%rd3], %f1;
    ret;
}
"""


class DriverLoad:
    """Matrix-like load without PyTorch: the kernel above, launched until the time is up."""

    BLOCKS, THREADS = 4096, 256

    def __init__(self) -> None:
        self.cuda = ctypes.CDLL("libcuda.so.1")
        self._ok(self.cuda.cuInit(0), "cuInit")
        device = ctypes.c_int()
        self._ok(self.cuda.cuDeviceGet(ctypes.byref(device), 0), "cuDeviceGet")
        self.context = ctypes.c_void_p()
        self._ok(self.cuda.cuCtxCreate_v2(ctypes.byref(self.context), 0, device), "cuCtxCreate")
        module = ctypes.c_void_p()
        self._ok(self.cuda.cuModuleLoadData(ctypes.byref(module), ctypes.c_char_p(PTX)), "cuModuleLoadData")
        self.function = ctypes.c_void_p()
        self._ok(
            self.cuda.cuModuleGetFunction(ctypes.byref(self.function), module, b"burn"), "cuModuleGetFunction"
        )
        self.out = ctypes.c_uint64()
        self._ok(
            self.cuda.cuMemAlloc_v2(ctypes.byref(self.out), ctypes.c_size_t(self.BLOCKS * self.THREADS * 4)),
            "a",
        )
        # memory the run holds, so the ledger has something to name
        self.held = ctypes.c_uint64()
        self._ok(
            self.cuda.cuMemAlloc_v2(ctypes.byref(self.held), ctypes.c_size_t(2 << 30)), "cuMemAlloc 2 GiB"
        )

    def _ok(self, code: int, what: str) -> None:
        if code != 0:
            raise RuntimeError(f"{what} failed with CUDA error {code}")

    def run(self, seconds: float) -> None:
        iters = ctypes.c_uint32(200000)  # about 50 ms a launch on an H100
        params = (ctypes.c_void_p * 2)(
            ctypes.cast(ctypes.byref(self.out), ctypes.c_void_p),
            ctypes.cast(ctypes.byref(iters), ctypes.c_void_p),
        )
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self._ok(
                self.cuda.cuLaunchKernel(
                    self.function, self.BLOCKS, 1, 1, self.THREADS, 1, 1, 0, None, params, None
                ),
                "cuLaunchKernel",
            )
            self._ok(self.cuda.cuCtxSynchronize(), "cuCtxSynchronize")


class TorchLoad:
    def __init__(self) -> None:
        import torch

        if not torch.cuda.is_available():
            raise ImportError("this PyTorch has no CUDA")
        self.torch = torch
        self.a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
        torch.cuda.synchronize()

    def run(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(20):
                self.a = self.torch.matmul(self.a, self.a).clamp_(-1, 1)
            self.torch.cuda.synchronize()


class PowerSamples:
    """``nvidia-smi`` sampling every GPU's power every 100 ms, by its own timestamps."""

    def __init__(self) -> None:
        field = "power.draw.instant" if self._supported("power.draw.instant") else "power.draw"
        self.field = field
        self.samples: dict[str, list[tuple[float, float]]] = {}
        self.process = subprocess.Popen(
            [
                "nvidia-smi",
                f"--query-gpu=timestamp,uuid,{field}",
                "--format=csv,noheader,nounits",
                "-lms",
                "100",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    @staticmethod
    def _supported(field: str) -> bool:
        done = subprocess.run(
            ["nvidia-smi", f"--query-gpu={field}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            check=False,
        )
        return done.returncode == 0 and "Field" not in done.stdout and "N/A" not in done.stdout

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            parts = [part.strip() for part in line.split(",")]
            try:
                at = datetime.datetime.strptime(parts[0], "%Y/%m/%d %H:%M:%S.%f").timestamp()
                self.samples.setdefault(parts[1], []).append((at, float(parts[2])))
            except (ValueError, IndexError):
                continue

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.reader.join(timeout=10)

    def energy_wh(self, begin: float, end: float, uuids: list[str]) -> float:
        total = 0.0
        for uuid in uuids:
            points = [(t, w) for t, w in self.samples.get(uuid, []) if begin <= t <= end]
            total += sum((t2 - t1) * (w1 + w2) / 2 for (t1, w1), (t2, w2) in itertools.pairwise(points))
        return total / 3600


def throttle_counters() -> list[dict[str, float]]:
    """Seconds each GPU's clocks were held, by reason (``Clocks Event Reasons Counters``)."""
    text = subprocess.run(
        ["nvidia-smi", "-q", "-d", "PERFORMANCE"], capture_output=True, text=True, check=False
    ).stdout
    gpus: list[dict[str, float]] = []
    in_counters = False
    for line in text.splitlines():
        if line.startswith("GPU "):
            gpus.append({})
            in_counters = False
        elif "Reasons Counters" in line:
            in_counters = True
        elif in_counters and gpus:
            match = re.match(r"\s+(.+?)\s+:\s+(\d+) us", line)
            if match:
                gpus[-1][match.group(1)] = int(match.group(2)) / 1e6
            else:
                in_counters = False
    return [gpu for gpu in gpus if gpu]


def check(name: str, ours: float | None, reference: float | None, ok: bool | None) -> bool:
    verdict = "n/a " if ok is None else ("PASS" if ok else "FAIL")
    print(f"{verdict} {name}: ledger {ours}  reference {reference}")
    return ok is not False


#: Touches 300 MB, then writes its own peak resident set (KiB) as the kernel keeps it to argv[1].
PEAK_PROGRAM = """
import sys
b = bytearray(300_000_000)
b[::4096] = b"x" * len(b[::4096])
peak = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
open(sys.argv[1], "w").write(peak)
"""


def program_peak_check() -> bool:
    """``sys.memory_peak_gb`` of a program under ``run`` against its own ``VmHWM`` (Linux)."""
    import tempfile

    from mlflow_sysmetrics import _run_command
    from mlflow_sysmetrics.ledger.memory import rusage_kib

    own = rusage_kib()[0] or 0
    span = _ledger.start()
    assert span is not None, "the ledger did not start"
    with tempfile.TemporaryDirectory() as folder:
        written = os.path.join(folder, "peak")
        launch = _run_command._Launch(sys.executable, [sys.executable, "-c", PEAK_PROGRAM, written])
        try:
            end = launch.run({}, span)
        finally:
            launch.close()
        program_kib = int(Path(written).read_text())
    if end.exit is not None:
        span.program_exited(end.exit)
    counted = span.finish()
    peak = counted.metrics.get("sys.memory_peak_gb")
    reference = round(program_kib * 1024 / 1e9, 3)
    print(f"     this process's own peak: {round(own * 1024 / 1e9, 3)} GB (what the figure must not be)")
    return check(
        "sys.memory_peak_gb of a program under run vs its own VmHWM",
        peak,
        reference,
        peak is not None and abs(peak - reference) <= 0.005,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_SYSMETRICS_LEDGER", "1")
    if shutil.which("nvidia-smi") is None:
        sys.exit("no nvidia-smi here: this check needs a machine with an NVIDIA GPU")

    try:
        load: TorchLoad | DriverLoad = TorchLoad()
        print("load: torch.matmul, bf16 8192x8192")
    except ImportError:
        load = DriverLoad()
        print("load: a PTX kernel through libcuda (PyTorch is not installed)")

    tags = collect()
    print("GPUs:", tags.get("sys.gpu"), "| count:", tags.get("sys.gpu_count"))
    t = time.perf_counter()
    first = _ledger.start()
    assert first is not None, "the ledger did not start"
    first.finish()
    first_ms = (time.perf_counter() - t) * 1e3
    warm = []
    for _ in range(20):
        t = time.perf_counter()
        span = _ledger.start()
        assert span is not None
        span.finish()
        warm.append((time.perf_counter() - t) * 1e3)
    uuids = [key for meter in first.meters if isinstance(meter, GpuMeter) for key in meter.gpus]
    print(
        f"ledger cost: first span {first_ms:.2f} ms (NVML's initialisation falls here), "
        f"warm span {statistics.median(warm):.3f} ms median over 20, {len(uuids)} GPU(s) counted"
    )

    sampler = PowerSamples()
    time.sleep(1.0)
    throttled_before = throttle_counters()
    began = time.time()
    span = _ledger.start()
    assert span is not None
    time.sleep(2)
    load.run(args.seconds)
    time.sleep(2)
    ledger = span.finish()
    ended = time.time()
    throttled_after = throttle_counters()
    time.sleep(0.5)
    sampler.stop()
    seconds = ended - began
    print("sys.ledger:", ledger.text)
    print("metrics:", ledger.metrics)

    good = True
    reference = sampler.energy_wh(began, ended, uuids)
    ours = ledger.metrics.get("sys.gpu_energy_wh")
    good &= check(
        f"sys.gpu_energy_wh vs nvidia-smi {sampler.field} at 100 ms, integrated",
        ours,
        round(reference, 4),
        None if ours is None or reference == 0 else abs(ours - reference) <= 0.05 * reference,
    )
    if isinstance(load, TorchLoad):
        torch_peak = (
            max(load.torch.cuda.max_memory_reserved(i) for i in range(load.torch.cuda.device_count())) / 1e9
        )
        peak = ledger.metrics.get("sys.gpu_memory_peak_gb")
        good &= check(
            "sys.gpu_memory_peak_gb vs torch.cuda.max_memory_reserved",
            peak,
            round(torch_peak, 3),
            peak is not None and abs(peak - torch_peak) < 0.01,
        )
    else:
        print(
            "n/a  sys.gpu_memory_peak_gb without PyTorch:",
            ledger.metrics.get("sys.gpu_memory_peak_gb"),
            "(2 GiB held by this process)",
        )
    for key, reasons in (
        ("sys.gpu_throttle_power_pct", ("SW Power Capping",)),
        ("sys.gpu_throttle_thermal_pct", ("SW Thermal Slowdown", "HW Thermal Slowdown")),
    ):
        held = [
            sum(after.get(r, 0.0) - before.get(r, 0.0) for r in reasons)
            for before, after in zip(throttled_before, throttled_after, strict=False)
        ]
        share = round(min(max(held) / seconds * 100, 100.0), 3) if held else None
        ours = ledger.metrics.get(key)
        good &= check(
            f"{key} vs nvidia-smi -q -d PERFORMANCE counters",
            ours,
            share,
            None if ours is None or share is None else abs(ours - share) <= 2.0,
        )
    hours = ledger.metrics.get("sys.gpu_hours")
    good &= check(
        "sys.gpu_hours vs GPUs x span",
        hours,
        round(len(uuids) * seconds / 3600, 6),
        hours is not None and abs(hours - len(uuids) * seconds / 3600) < 1e-4,
    )
    if sys.platform == "linux":
        good &= program_peak_check()
    print("gpu ledger check:", "PASS" if good else "FAIL")
    sys.exit(0 if good else 1)


if __name__ == "__main__":
    main()
