"""The run's ledger against nvidia-smi, on a machine with an NVIDIA GPU (no MLflow needed).

    python3 benchmarks/gpu_ledger_check.py              # 20 s of load, about a minute in all
    python3 benchmarks/gpu_ledger_check.py --seconds 30

Each check prints one line, ``PASS``, ``FAIL`` or ``SKIP`` (with the reason), with the
ledger's figure beside its reference; the script exits 1 if one fails. Where there is no
GPU every GPU check says ``SKIP`` and why; the memory peak of a program needs none.

- A span of the ledger around 2 s idle, ``--seconds`` of load on the first GPU
  (``torch.matmul`` where PyTorch has CUDA, else a small kernel loaded through the driver,
  ``libcuda``, PTX compiled by the driver) and 2 s idle, while ``nvidia-smi`` samples every
  GPU every 100 ms:

  - ``sys.gpu_energy_wh`` against the power samples integrated over the span (trapezoids,
    every GPU the ledger counts): within 5 %;
  - ``sys.gpu_memory_peak_gb`` against PyTorch's ``max_memory_reserved`` (PyTorch only);
  - each throttle share against the "Clocks Event Reasons Counters" of
    ``nvidia-smi -q -d PERFORMANCE`` read before and after the span (microseconds, as
    nvidia-smi prints them: ``us``): ``sys.gpu_throttle_power_pct`` against SW Power
    Capping, ``sys.gpu_throttle_thermal_pct`` against SW Thermal Slowdown,
    ``sys.gpu_throttle_hw_pct`` against HW Thermal Slowdown plus HW Power Braking; the
    worst GPU, as the ledger gives it; within 2 points;
  - ``sys.gpu_hours`` against the GPUs counted times the span.

- ``sys.gpu_busy_pct`` of a program under ``mlflow-sysmetrics run`` (started as the command
  starts it, without MLflow) that waits 3 s and then runs kernels back to back for
  ``--busy-seconds``, against ``nvidia-smi --query-gpu=utilization.gpu`` sampled every
  100 ms over the same span (the mean of the samples, over the GPUs the ledger counts):
  within 5 points. Where the ledger gives no share (no GPM, accounting off) it says why.
- The NVLink bytes (``sys.nvlink_tx_gb``, ``sys.nvlink_rx_gb``) of a span that copies 8 GiB
  from the first GPU to the second, peer to peer (PyTorch or CuPy), against the bytes
  copied: from 95 % to 125 % of them. Only with two GPUs joined by NVLink.
- ``sys.memory_peak_gb`` of a program under ``run`` that touches 300 MB against the
  program's own ``VmHWM`` (Linux), with this process's larger peak as the figure it must
  not be: within 5 MB.
- The ledger's own cost: its first span in this process (NVML's initialisation falls there)
  and the median of 20 warm spans (a figure, not a check).
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
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlflow_sysmetrics import collect, ledger
from mlflow_sysmetrics.ledger.gpu import SHARES, Gpu, GpuMeter

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
    """Load without PyTorch: the kernel above, launched back to back until the time is up."""

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
        size = ctypes.c_size_t(self.BLOCKS * self.THREADS * 4)
        self._ok(self.cuda.cuMemAlloc_v2(ctypes.byref(self.out), size), "cuMemAlloc")

    @staticmethod
    def _ok(code: int, what: str) -> None:
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


class Samples:
    """``nvidia-smi`` sampling every GPU's power and utilization every 100 ms, by its own timestamps."""

    def __init__(self) -> None:
        self.field = "power.draw.instant" if self._supported("power.draw.instant") else "power.draw"
        self.power: dict[str, list[tuple[float, float]]] = {}
        self.busy: dict[str, list[tuple[float, float]]] = {}
        query = f"--query-gpu=timestamp,uuid,{self.field},utilization.gpu"
        self.process = subprocess.Popen(
            ["nvidia-smi", query, "--format=csv,noheader,nounits", "-lms", "100"],
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
            except (ValueError, IndexError):
                continue
            for series, text in ((self.power, parts[2:3]), (self.busy, parts[3:4])):
                try:
                    series.setdefault(parts[1], []).append((at, float(text[0])))
                except (ValueError, IndexError):
                    continue

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.reader.join(timeout=10)

    def energy_wh(self, begin: float, end: float, uuids: list[str]) -> float:
        total = 0.0
        for uuid in uuids:
            points = [(t, w) for t, w in self.power.get(uuid, []) if begin <= t <= end]
            total += sum((t2 - t1) * (w1 + w2) / 2 for (t1, w1), (t2, w2) in itertools.pairwise(points))
        return total / 3600

    def busy_pct(self, begin: float, end: float, uuids: list[str]) -> float | None:
        """The mean over ``uuids`` of each GPU's mean utilization sample within the span."""
        means = []
        for uuid in uuids:
            points = [pct for t, pct in self.busy.get(uuid, []) if begin <= t <= end]
            if not points:
                return None
            means.append(sum(points) / len(points))
        return sum(means) / len(means) if means else None


#: nvidia-smi's names of the clocks event reason counters, by the ledger's throttle share.
REASONS = {
    "sys.gpu_throttle_power_pct": ("SW Power Capping",),
    "sys.gpu_throttle_thermal_pct": ("SW Thermal Slowdown",),
    "sys.gpu_throttle_hw_pct": ("HW Thermal Slowdown", "HW Power Braking"),
}
UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}


def bus_key(text: str | None) -> str:
    """A PCI address as ``domain:bus:device.function`` in one spelling (nvidia-smi's and NVML's differ)."""
    match = re.search(r"([0-9a-fA-F]+):([0-9a-fA-F]+):([0-9a-fA-F]+)\.([0-7])", text or "")
    if not match:
        return ""
    domain, bus, device, function = (int(part, 16) for part in match.groups())
    return f"{domain:x}:{bus:x}:{device:x}.{function}"


def clock_event_counters() -> dict[str, dict[str, float]]:
    """Each GPU's "Clocks Event Reasons Counters" (seconds, by reason), by PCI address."""
    text = subprocess.run(
        ["nvidia-smi", "-q", "-d", "PERFORMANCE"], capture_output=True, text=True, check=False
    ).stdout
    gpus: dict[str, dict[str, float]] = {}
    current: dict[str, float] | None = None
    in_counters = False
    for line in text.splitlines():
        if line.startswith("GPU "):
            current = gpus.setdefault(bus_key(line), {})
            in_counters = False
        elif "Reasons Counters" in line:
            in_counters = True
        elif in_counters and current is not None:
            match = re.match(r"\s+(.+?)\s+:\s+([\d,]+)\s*(ns|us|µs|ms|s)\b", line)
            if match:
                current[match.group(1)] = int(match.group(2).replace(",", "")) * UNITS[match.group(3)]
            else:
                in_counters = False
    return {key: counters for key, counters in gpus.items() if counters}


class Report:
    """The checks' verdicts, one line each."""

    def __init__(self) -> None:
        self.verdicts: list[str] = []

    def line(self, verdict: str, name: str, detail: str) -> None:
        self.verdicts.append(verdict)
        print(f"{verdict} {name}: {detail}", flush=True)

    def skip(self, name: str, why: str) -> None:
        self.line("SKIP", name, why)

    def compare(self, name: str, ours: float | None, reference: float | None, ok: bool, why: str) -> None:
        """PASS or FAIL with both figures; SKIP (``why``) where the ledger has none."""
        if ours is None or reference is None:
            self.skip(name, f"ledger {ours}, reference {reference}: {why}")
        else:
            self.line("PASS" if ok else "FAIL", name, f"ledger {ours}, reference {round(reference, 4)}")

    def guarded(self, name: str, check: Callable[[], None]) -> None:
        """Run ``check``; one that raises is a failure, and the next check still runs."""
        try:
            check()
        except Exception as exc:
            self.line("FAIL", name, f"{type(exc).__name__}: {exc}")


def reason(counted: ledger.Ledger, what: str) -> str:
    """The clause of ``sys.ledger`` that says why ``what`` was not counted."""
    match = re.search(re.escape(what) + r": (.*?)(?:; (?=[a-z][a-z ]+:)|$)", counted.text)
    return match.group(1) if match else "not in sys.ledger"


ENERGY = "sys.gpu_energy_wh vs nvidia-smi power every 100 ms, integrated"
GPU_PEAK = "sys.gpu_memory_peak_gb vs torch.cuda.max_memory_reserved"
THROTTLES = {key: f"{key} vs nvidia-smi -q -d PERFORMANCE ({' + '.join(REASONS[key])})" for key in REASONS}
HOURS = "sys.gpu_hours vs GPUs x span"
BUSY = "sys.gpu_busy_pct of an idle-then-busy program under run vs nvidia-smi utilization.gpu every 100 ms"
NVLINK = {
    key: f"{key} vs 8 GiB copied from GPU 0 to GPU 1" for key in ("sys.nvlink_tx_gb", "sys.nvlink_rx_gb")
}
#: The checks of a GPU, each one line (named here so that a machine without one skips each).
GPU_CHECKS = (ENERGY, GPU_PEAK, *THROTTLES.values(), HOURS, BUSY, *NVLINK.values())


def counted_gpus(span: ledger.Span) -> list[Gpu]:
    return [gpu for meter in span.meters if isinstance(meter, GpuMeter) for gpu in meter.gpus.values()]


def load_span(report: Report, gpus: list[Gpu], seconds: float) -> None:
    """Energy, GPU memory peak, throttle shares and GPU hours over a span with load (see the module)."""
    try:
        load: TorchLoad | DriverLoad = TorchLoad()
        print("load: torch.matmul, bf16 8192x8192")
    except ImportError:
        load = DriverLoad()
        print("load: a PTX kernel through libcuda (no PyTorch with CUDA here)")
    uuids = [gpu.device.uuid or "" for gpu in gpus]
    samples = Samples()
    time.sleep(1.0)
    before = clock_event_counters()
    began = time.time()
    span = ledger.start()
    assert span is not None
    time.sleep(2)
    load.run(seconds)
    time.sleep(2)
    counted = span.finish()
    ended = time.time()
    after = clock_event_counters()
    time.sleep(0.5)
    samples.stop()
    span_s = ended - began
    print("sys.ledger:", counted.text)
    metrics = counted.metrics

    energy = metrics.get("sys.gpu_energy_wh")
    reference = samples.energy_wh(began, ended, uuids)
    report.compare(
        f"{ENERGY} ({samples.field})",
        energy,
        reference or None,
        energy is not None and abs(energy - reference) <= 0.05 * reference,
        reason(counted, "gpu energy"),
    )
    if isinstance(load, TorchLoad):
        cuda = load.torch.cuda
        torch_peak = max(cuda.max_memory_reserved(i) for i in range(cuda.device_count())) / 1e9
        peak = metrics.get("sys.gpu_memory_peak_gb")
        report.compare(
            GPU_PEAK,
            peak,
            torch_peak,
            peak is not None and abs(peak - torch_peak) < 0.01,
            reason(counted, "gpu memory peak"),
        )
    else:
        report.skip(GPU_PEAK, "no PyTorch with CUDA here")
    for _, key, what, _ in SHARES[:3]:
        name = THROTTLES[key]
        held: list[float] = []
        for gpu in gpus:
            first, last = before.get(bus_key(gpu.device.bus_id)), after.get(bus_key(gpu.device.bus_id))
            if not first or not last or not all(r in first and r in last for r in REASONS[key]):
                held = []
                break
            held.append(sum(last[r] - first[r] for r in REASONS[key]))
        if not held:
            report.skip(name, "nvidia-smi prints no such Clocks Event Reasons Counters for the GPUs counted")
            continue
        share = min(max(held) / span_s * 100, 100.0)
        ours = metrics.get(key)
        report.compare(
            name, ours, share, ours is not None and abs(ours - share) <= 2.0, reason(counted, what)
        )
    hours = metrics.get("sys.gpu_hours")
    expected = len(gpus) * span_s / 3600
    report.compare(
        HOURS,
        hours,
        expected,
        hours is not None and abs(hours - expected) < 1e-4,
        "not counted",
    )


def under_run(command: list[str]) -> tuple[ledger.Ledger, int | None]:
    """A span following ``command`` started as ``mlflow-sysmetrics run`` starts it: the ledger and its exit code."""
    from mlflow_sysmetrics import _run_command

    span = ledger.start()
    assert span is not None, "the ledger did not start"
    launch = _run_command._Launch(command[0], command)
    try:
        end = launch.run({}, span)
    finally:
        launch.close()
    if end.exit is not None:
        span.program_exited(end.exit)
    return span.finish(), end.code


def busy_check(report: Report, gpus: list[Gpu], seconds: float) -> None:
    """``sys.gpu_busy_pct`` of an idle-then-busy program under run, against utilization.gpu (see the module)."""
    name = BUSY
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError as exc:
        report.skip(name, f"no CUDA driver library to run kernels with ({exc})")
        return
    uuids = [gpu.device.uuid or "" for gpu in gpus]
    samples = Samples()
    time.sleep(1.0)
    began = time.time()
    counted, code = under_run([sys.executable, __file__, "--program", "3", str(seconds)])
    ended = time.time()
    time.sleep(0.5)
    samples.stop()
    if code != 0:
        report.line("FAIL", name, f"the program failed (exit {code})")
        return
    ours = counted.metrics.get("sys.gpu_busy_pct")
    reference = samples.busy_pct(began, ended, uuids)
    why = reason(counted, "gpu busy")
    hopper = [gpu.name for gpu in gpus if float(gpu.device.compute_capability or 0) >= 9.0]
    if ours is None and hopper and reference is not None:
        report.line("FAIL", name, f"no figure on {hopper[0]}, whose GPM should count it: {why}")
        return
    note = reason(counted, "gpu busy") if "gpu busy:" in counted.text else "the GPUs' own count (GPM)"
    report.compare(
        f"{name} [{note}]",
        ours,
        reference,
        ours is not None and reference is not None and abs(ours - reference) <= 5.0,
        why,
    )


def nvlink_check(report: Report, gpus: list[Gpu]) -> None:
    """NVLink bytes of a span that copies 8 GiB from GPU 0 to GPU 1, peer to peer (see the module)."""
    why = "fewer than two GPUs joined by NVLink here"
    copy: Callable[[], int] | str = why
    if sum(1 for gpu in gpus if gpu.device.nvlink_links) >= 2:
        copy = _peer_copier()
    if isinstance(copy, str):
        for name in NVLINK.values():
            report.skip(name, copy)
        return
    span = ledger.start()
    assert span is not None
    copied = copy()
    counted = span.finish()
    gb = copied / 1e9
    for key in ("sys.nvlink_tx_gb", "sys.nvlink_rx_gb"):
        ours = counted.metrics.get(key)
        ok = ours is not None and 0.95 * gb <= ours <= 1.25 * gb
        report.compare(f"{NVLINK[key]} ({gb:.3f} GB)", ours, gb, ok, reason(counted, "nvlink traffic"))


def _peer_copier() -> Callable[[], int] | str:
    """A function copying 8 GiB from GPU 0 to GPU 1 peer to peer (the bytes copied), or why there is none."""
    try:
        import torch

        if torch.cuda.is_available() and torch.cuda.device_count() >= 2:
            if not torch.cuda.can_device_access_peer(0, 1):
                return "GPU 0 cannot reach GPU 1 peer to peer"
            source = torch.empty(1 << 30, dtype=torch.uint8, device="cuda:0")
            target = torch.empty(1 << 30, dtype=torch.uint8, device="cuda:1")

            def with_torch() -> int:
                for _ in range(8):
                    target.copy_(source)
                torch.cuda.synchronize(0)
                torch.cuda.synchronize(1)
                return 8 << 30

            return with_torch
    except ImportError:
        pass
    try:
        import cupy
    except ImportError:
        return "neither PyTorch with CUDA nor CuPy here to copy between GPUs"
    if cupy.cuda.runtime.getDeviceCount() < 2 or not cupy.cuda.runtime.deviceCanAccessPeer(0, 1):
        return "GPU 0 cannot reach GPU 1 peer to peer"
    with cupy.cuda.Device(0):
        source_array = cupy.empty(1 << 30, dtype=cupy.uint8)
    with cupy.cuda.Device(1):
        target_array = cupy.empty(1 << 30, dtype=cupy.uint8)

    def with_cupy() -> int:
        for _ in range(8):
            cupy.cuda.runtime.memcpyPeer(target_array.data.ptr, 1, source_array.data.ptr, 0, 1 << 30)
        return 8 << 30

    return with_cupy


#: Touches 300 MB, then writes its own peak resident set (KiB) as the kernel keeps it to argv[1].
PEAK_PROGRAM = """
import sys
b = bytearray(300_000_000)
b[::4096] = b"x" * len(b[::4096])
peak = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
open(sys.argv[1], "w").write(peak)
"""


def program_peak_check(report: Report) -> None:
    """``sys.memory_peak_gb`` of a program under ``run`` against its own ``VmHWM`` (Linux)."""
    name = "sys.memory_peak_gb of a program under run vs its own VmHWM"
    if not sys.platform.startswith("linux"):
        report.skip(name, "VmHWM is Linux's")
        return
    try:
        from mlflow_sysmetrics.ledger.memory import rusage_kib
    except ImportError as exc:
        report.skip(name, f"the launcher cannot be imported here ({exc})")
        return
    own = rusage_kib()[0] or 0
    with tempfile.TemporaryDirectory() as folder:
        written = os.path.join(folder, "peak")
        counted, _ = under_run([sys.executable, "-c", PEAK_PROGRAM, written])
        program_kib = int(Path(written).read_text())
    peak = counted.metrics.get("sys.memory_peak_gb")
    reference = program_kib * 1024 / 1e9
    report.compare(
        f"{name} (this process's own peak: {own * 1024 / 1e9:.3f} GB)",
        peak,
        reference,
        peak is not None and abs(peak - reference) <= 0.005,
        reason(counted, "memory peak"),
    )


def ledger_cost() -> list[Gpu]:
    """Print the ledger's cost (first span, median of 20 warm spans); the GPUs it counts."""
    started = time.perf_counter()
    first = ledger.start()
    assert first is not None, "the ledger did not start"
    first.finish()
    first_ms = (time.perf_counter() - started) * 1e3
    warm = []
    for _ in range(20):
        started = time.perf_counter()
        span = ledger.start()
        assert span is not None
        span.finish()
        warm.append((time.perf_counter() - started) * 1e3)
    gpus = counted_gpus(first)
    print(
        f"ledger cost: first span {first_ms:.2f} ms (NVML's initialisation falls here), "
        f"warm span {statistics.median(warm):.3f} ms median over 20, {len(gpus)} GPU(s) counted"
    )
    return gpus


def program(idle: float, busy: float) -> None:
    """The program the busy check runs: ``idle`` seconds without the GPU, then ``busy`` of kernels."""
    time.sleep(idle)
    DriverLoad().run(busy)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of load in the first span")
    parser.add_argument(
        "--busy-seconds", type=float, default=8.0, help="seconds of kernels in the busy check"
    )
    parser.add_argument("--program", nargs=2, type=float, metavar=("IDLE", "BUSY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.program:
        program(*args.program)
        return
    os.environ.setdefault("MLFLOW_SYSMETRICS_LEDGER", "1")
    tags: dict[str, Any] = collect()
    print(
        "GPUs:",
        tags.get("sys.gpu"),
        "| count:",
        tags.get("sys.gpu_count"),
        "| python",
        sys.version.split()[0],
    )
    report = Report()
    gpus = ledger_cost()
    nvidia = [gpu for gpu in gpus if gpu.vendor == "nvidia"]
    no_gpu = (
        "no nvidia-smi here: this check needs a machine with an NVIDIA GPU"
        if shutil.which("nvidia-smi") is None
        else ("the ledger counts no NVIDIA GPU here" if not nvidia else None)
    )
    if no_gpu is not None:
        for name in GPU_CHECKS:
            report.skip(name, no_gpu)
    else:
        report.guarded("the span with load", lambda: load_span(report, nvidia, args.seconds))
        report.guarded(BUSY, lambda: busy_check(report, nvidia, args.busy_seconds))
        report.guarded("NVLink bytes", lambda: nvlink_check(report, nvidia))
    report.guarded("sys.memory_peak_gb of a program under run", lambda: program_peak_check(report))
    counts = {verdict: report.verdicts.count(verdict) for verdict in ("PASS", "FAIL", "SKIP")}
    print("gpu ledger check:", ", ".join(f"{n} {verdict}" for verdict, n in counts.items()))
    sys.exit(1 if counts["FAIL"] else 0)


if __name__ == "__main__":
    main()
