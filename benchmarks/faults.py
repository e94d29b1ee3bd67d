"""Break the machine at the OS boundary, one way at a time, and time what collect() does.

    python benchmarks/faults.py

Each fault runs in a fresh process against the captured H100 machine
(tests/fixtures/h100-vm) with MLFLOW_SYSMETRICS_TIMEOUT=1.0 and a PATH holding only the
fake tool. Prints, per fault: the first call's time, how many tags were still written, and
the sysmetrics.error it wrote.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
H100 = REPO / "tests" / "fixtures" / "h100-vm"

CODE = """
import json, time, mlflow_sysmetrics
t = time.perf_counter()
tags = mlflow_sysmetrics.collect()
print(json.dumps([(time.perf_counter() - t) * 1e3, len(tags), tags.get("sysmetrics.error", "")]))
"""

FAULTS: dict[str, dict[str, str]] = {
    "none (replayed H100, nvidia-smi answers)": {"nvidia-smi": "replay"},
    "nvidia-smi hangs": {"nvidia-smi": "sleep 60"},
    "nvidia-smi exits 9": {"nvidia-smi": "echo 'NVIDIA-SMI has failed' >&2; exit 9"},
    "nvidia-smi prints binary garbage": {"nvidia-smi": r"printf '\377\376\000garbage'"},
    "nvidia-smi prints 8 MB": {"nvidia-smi": "yes 0123456789 | head -c 8000000"},
    "/proc/cpuinfo never answers (FIFO)": {"nvidia-smi": "replay", "fifo": "proc/cpuinfo"},
    "/proc/meminfo is a folder": {"nvidia-smi": "replay", "folder": "proc/meminfo"},
    "root that does not exist": {"root": "/no/such/root"},
    "MLFLOW_SYSMETRICS_TIMEOUT=abc": {"nvidia-smi": "replay", "timeout": "abc"},
}


def _tool(folder: Path, body: str) -> None:
    if body == "replay":  # the stand-in the tests use, answering as the captured H100's nvidia-smi
        stand_in = Path(__file__).resolve().parents[1] / "tests" / "fakes" / "nvidia_smi.py"
        body = f'exec "{sys.executable}" "{stand_in}" "{H100 / "commands" / "nvidia-smi.json"}" "$@"'
    path = folder / "nvidia-smi"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def main() -> None:
    print("| fault | first call (ms) | tags written | sysmetrics.error |")
    print("|---|---:|---:|---|")
    for label, fault in FAULTS.items():
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch)
            tools = folder / "bin"
            tools.mkdir()
            for name in ("sh", "cat", "sleep", "head", "yes", "printf"):
                found = shutil.which(name)
                if found:
                    (tools / name).symlink_to(found)
            if "nvidia-smi" in fault:
                _tool(tools, fault["nvidia-smi"])
            root = folder / "root"
            shutil.copytree(H100, root, ignore=shutil.ignore_patterns("commands"))
            if "fifo" in fault:
                (root / fault["fifo"]).unlink()
                os.mkfifo(root / fault["fifo"])
            if "folder" in fault:
                (root / fault["folder"]).unlink()
                (root / fault["folder"]).mkdir()
            env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_SYSMETRICS")}
            env.update(
                PATH=str(tools),
                PYTHONPATH=str(REPO),
                MLFLOW_SYSMETRICS_ROOT=fault.get("root", str(root)),
                MLFLOW_SYSMETRICS_TIMEOUT=fault.get("timeout", "1.0"),
            )
            out = subprocess.run(
                [sys.executable, "-c", CODE], capture_output=True, text=True, env=env, timeout=60, check=True
            )
            ms, count, error = json.loads(out.stdout)
            print(f"| {label} | {ms:.1f} | {count} | {error[:110] or '-'} |")


if __name__ == "__main__":
    main()
