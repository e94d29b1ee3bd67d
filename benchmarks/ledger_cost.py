"""What the run's ledger costs a run: its two reads (start and finish), in fresh processes.

    python benchmarks/ledger_cost.py                 # this machine, and 8 stand-in GPUs
    python benchmarks/ledger_cost.py --processes 15

For each machine: the first span of a process (``ledger.start()`` then ``finish()``, after
``collect()`` has run, as in ``sysmetrics_run()``; on a GPU machine this is where NVML's
initialisation falls) and the warm span (the median of 50 more in the same process). "8 GPUs"
is the stand-in NVML (``tests/fakes/fake_nvml.c``, built here with ``cc``) describing eight
H100s: it shows what our side of the reads costs per GPU; real NVML's own calls are timed by
``benchmarks/gpu_ledger_check.py`` on a GPU machine. Writing the ledger is one request
(``log_batch``), not timed here. Prints medians and ranges in milliseconds.

The package's bytecode is compiled first and the fresh interpreters use it, as an installed
package's are (pip compiles at install): where ``PYTHONDONTWRITEBYTECODE`` is set, each
module a first span imports would otherwise be compiled from source, milliseconds each.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests' way to run a fresh interpreter

from tests.fresh import SETTINGS_PREFIXES, fresh_python  # noqa: E402

SPANS = """
import json, time
from mlflow_sysmetrics import collect, ledger
collect()
t = time.perf_counter()
span = ledger.start()
counted = span.finish()
first = (time.perf_counter() - t) * 1e3
warm = []
for _ in range(50):
    t = time.perf_counter()
    span = ledger.start()
    counted = span.finish()
    warm.append((time.perf_counter() - t) * 1e3)
warm.sort()
print(json.dumps({"first": first, "warm": warm[len(warm) // 2], "gpus": counted.metrics.get("sys.gpu_hours", 0) > 0,
                  "text": counted.text}))
"""

H100 = "gpu 85520809984 9 0 0 00000000:{bus:02X}:00.0 GPU-{i:08x}-1111-2222-3333-444444444444 NVIDIA H100 80GB HBM3\n"


def stand_in_nvml(folder: Path) -> dict[str, str]:
    """Build the stand-in NVML with eight H100s whose counters move (GPM's too); the environment that loads it."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise SystemExit("a C compiler (cc or gcc) is needed to build the stand-in NVML")
    library = folder / "libnvidia-ml.so.1"
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O1", "-o", str(library), str(REPO / "tests/fakes/fake_nvml.c")],
        check=True,
    )
    spec = "driver 580.159.04\ncuda 13000\n"
    for i in range(8):
        spec += H100.format(bus=0x18 + 0x10 * i, i=i)
        spec += "".join(
            f"counter {i} {name} 1000 2000\n"
            for name in ("energy", "power_violation", "thermal_violation", "ecc_uncorrected", "pcie_replays")
        )
        spec += f"gpm {i} 50\n"  # an H100 counts its busy time itself (GPM)
    (folder / "spec.txt").write_text(spec)
    return {"LD_LIBRARY_PATH": str(folder), "FAKE_NVML_SPEC": str(folder / "spec.txt")}


def measure(env: dict[str, str], processes: int) -> tuple[list[float], list[float], str]:
    firsts, warms, text = [], [], ""
    for _ in range(processes):
        value = fresh_python(
            SPANS, env=env, cwd=tempfile.gettempdir(), scrub=(*SETTINGS_PREFIXES, "PYTHONDONTWRITEBYTECODE")
        ).value
        firsts.append(value["first"])
        warms.append(value["warm"])
        text = value["text"]
    return firsts, warms, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=10)
    args = parser.parse_args()
    compileall.compile_dir(REPO / "mlflow_sysmetrics", quiet=1)
    with tempfile.TemporaryDirectory() as scratch:
        machines = {"this machine": {}, "8 GPUs (stand-in NVML)": stand_in_nvml(Path(scratch))}
        print(f"Ledger start + finish, {args.processes} fresh processes each; ms, median (min-max).")
        print("| machine | first span of a process | warm span | sys.ledger |")
        print("|---|---:|---:|---|")
        for name, env in machines.items():
            firsts, warms, text = measure({**env, "MLFLOW_SYSMETRICS_LEDGER": "1"}, args.processes)
            print(
                f"| {name} | {statistics.median(firsts):.3f} ({min(firsts):.3f}-{max(firsts):.3f}) "
                f"| {statistics.median(warms):.3f} ({min(warms):.3f}-{max(warms):.3f}) | {text} |"
            )
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
