"""mlflow-sysmetrics beside 0.1.3, the plugin it replaces, measured side by side on this machine.

    python benchmarks/compare_013.py            # builds .bench/venv-013 once, then measures

0.1.3 shares our import name, so it lives in a throwaway venv of its own (same MLflow
version as ours). Both are run interleaved, each sample in a fresh process, with
``mlflow`` and ``psutil`` already imported in both (as in a training script), and with
bytecode compiled as an installed package would have it. Prints one table, with the
target each ratio is held to.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".bench" / "venv-013"
sys.path.insert(0, str(REPO))  # the tests' way to run a fresh interpreter

from tests.fresh import fresh_python  # noqa: E402

#: First tags() of the provider MLflow built, 0.5 s after ``import mlflow`` (the script loads
#: its data meanwhile), with implicit tagging switched on: ours has gathered in the background.
PREFETCHED = """
import time, json
import mlflow, psutil
time.sleep(0.5)
from mlflow.tracking.context.registry import _run_context_provider_registry as registry
provider = next(p for p in registry if type(p).__name__ == "SysMetricsRunContextProvider")
t = time.perf_counter()
tags = provider.tags()
print(json.dumps([(time.perf_counter() - t) * 1e3, len(tags)]))
"""
#: First collection with ``mlflow`` already imported and nothing gathered ahead (the explicit
#: doors, or implicit tagging with MLFLOW_SYSMETRICS_PREFETCH=0).
OURS_FIRST = """
import mlflow, psutil, time, json
t = time.perf_counter()
import mlflow_sysmetrics
tags = mlflow_sysmetrics.collect()
print(json.dumps([(time.perf_counter() - t) * 1e3, len(tags)]))
"""
THEIRS_FIRST = """
import mlflow, psutil, time, json
t = time.perf_counter()
from mlflow_sysmetrics import SysMetricsRunContextProvider
tags = SysMetricsRunContextProvider().tags()
print(json.dumps([(time.perf_counter() - t) * 1e3, len(tags)]))
"""
WARM = """
import mlflow, psutil, time, json, statistics
{setup}
call()
samples = []
for _ in range(40):
    t = time.perf_counter()
    for _ in range(25):
        call()
    samples.append((time.perf_counter() - t) / 25 * 1e6)
print(json.dumps(statistics.median(samples)))
"""
OURS_SETUP = "import mlflow_sysmetrics\ncall = mlflow_sysmetrics.collect"
THEIRS_SETUP = (
    "from mlflow_sysmetrics import SysMetricsRunContextProvider\ncall = SysMetricsRunContextProvider().tags"
)
START_RUN = """
import os, time, json, statistics, mlflow
mlflow.set_tracking_uri("sqlite:///" + os.path.join({folder!r}, "bench.db"))
mlflow.set_experiment("bench")
with mlflow.start_run():  # creates the tables and warms MLflow itself
    pass
samples = []
for _ in range(15):
    t = time.perf_counter()
    with mlflow.start_run():
        pass
    samples.append((time.perf_counter() - t) * 1e3)
print(json.dumps(statistics.median(samples)))
"""
IMPORT_COST = """
import subprocess, sys, json
out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import mlflow"], capture_output=True, text=True).stderr
total = 0
for line in out.splitlines():
    parts = [p.strip() for p in line.split("|")]
    if len(parts) == 3 and parts[2].lstrip().startswith("mlflow_sysmetrics"):
        total += int(parts[0].split(":")[1])
print(json.dumps(total / 1000))
"""


def build_venv() -> Path:
    python = VENV / "bin" / "python"
    if python.exists():
        return python
    import mlflow

    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            f"mlflow=={mlflow.__version__}",
            "mlflow-sysmetrics==0.1.3",
        ],
        check=True,
    )
    return python


def run(python: Path | str, code: str, **env: str) -> object:
    """``code`` in a fresh interpreter of ``python`` (each package imported from where it is installed)."""
    return fresh_python(
        code,
        env=env,
        python=python,
        cwd=tempfile.gettempdir(),
        scrub=("PYTHONDONTWRITEBYTECODE", "MLFLOW_RUN_CONTEXT_PROVIDER"),
        repo_on_path=False,
    ).value


def compile_bytecode(python: Path | str) -> None:
    code = "import compileall, mlflow_sysmetrics, os; compileall.compile_dir(os.path.dirname(mlflow_sysmetrics.__file__), quiet=1)"
    run(python, code + "\nprint(0)")


def _median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=15)
    args = parser.parse_args()
    theirs = build_venv()
    ours = sys.executable
    for python in (ours, theirs):
        compile_bytecode(python)
    on = {"MLFLOW_RUN_CONTEXT_PROVIDER": "sysmetrics"}
    samples: dict[str, list[float]] = {}
    tag_counts: dict[str, int] = {}

    def sample(name: str, python: Path | str, code: str, **env: str) -> None:
        ms, count = run(python, code, **env)  # type: ignore[misc]
        samples.setdefault(name, []).append(ms)
        tag_counts[name] = count

    for _ in range(args.samples):  # interleaved, each sample a fresh process
        sample("prefetched ours", ours, PREFETCHED, **on)
        sample("prefetched theirs", theirs, PREFETCHED, **on)
        sample("cold ours", ours, OURS_FIRST)
        sample("cold theirs", theirs, THEIRS_FIRST)
    warm = {
        "ours": _median([run(ours, WARM.format(setup=OURS_SETUP)) for _ in range(5)]),  # type: ignore[misc]
        "theirs": _median([run(theirs, WARM.format(setup=THEIRS_SETUP)) for _ in range(5)]),  # type: ignore[misc]
    }
    with tempfile.TemporaryDirectory() as folder:
        start: dict[str, list[float]] = {"off": [], "ours": [], "theirs": []}
        for _ in range(5):
            start["off"].append(run(ours, START_RUN.format(folder=folder)))  # type: ignore[arg-type]
            start["ours"].append(run(ours, START_RUN.format(folder=folder), **on))  # type: ignore[arg-type]
            start["theirs"].append(run(theirs, START_RUN.format(folder=folder)))  # type: ignore[arg-type]
    imports = {
        "ours": _median([run(ours, IMPORT_COST) for _ in range(5)]),  # type: ignore[misc]
        "theirs": _median([run(theirs, IMPORT_COST) for _ in range(5)]),  # type: ignore[misc]
    }
    off = _median(start["off"])
    rows = [
        (
            "first tags(), 0.5 s after import mlflow, provider on (ms)",
            _median(samples["prefetched ours"]),
            _median(samples["prefetched theirs"]),
            "<= 0.20",
        ),
        (
            "cold first collect()/tags(), mlflow imported (ms)",
            _median(samples["cold ours"]),
            _median(samples["cold theirs"]),
            "<= 3.00",
        ),
        ("warm call (us)", warm["ours"], warm["theirs"], "<= 0.20"),
        (
            "import mlflow, provider off: the plugin's share (ms)",
            imports["ours"],
            imports["theirs"],
            "< 1 ms",
        ),
        (
            "mlflow.start_run() added latency, provider on (ms)",
            _median(start["ours"]) - off,
            _median(start["theirs"]) - off,
            "",
        ),
        (
            "tags written on this machine",
            float(tag_counts["cold ours"]),
            float(tag_counts["cold theirs"]),
            "",
        ),
    ]
    import mlflow

    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, MLflow {mlflow.__version__}"
    )
    print(f"samples: {args.samples} fresh processes per first-call figure, interleaved; medians")
    print(f"plain mlflow.start_run() on a local SQLite store, no provider: {off:.2f} ms")
    print()
    print(f"| {'measure':<58} | {'ours':>8} | {'0.1.3':>8} | {'ours / 0.1.3':>12} | {'target':>7} |")
    print(f"|{'-' * 60}|{'-' * 10}|{'-' * 10}|{'-' * 14}|{'-' * 9}|")
    for label, a, b, target in rows:
        ratio = f"{a / b:.2f}" if b else "-"
        print(f"| {label:<58} | {a:>8.3f} | {b:>8.3f} | {ratio:>12} | {target:>7} |")


if __name__ == "__main__":
    main()
