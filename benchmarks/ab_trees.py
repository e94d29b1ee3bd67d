"""This checkout beside an earlier revision of it, measured side by side on this machine.

    python benchmarks/ab_trees.py --base 9532f25        # a git revision to compare against

For a change that should cost nothing (a refactoring), the figures say whether it did. The
base revision is checked out once under ``.bench/ab-<rev>``; both trees are then measured
interleaved, each sample in a fresh process, with ``mlflow`` and ``psutil`` already
imported (as in a training script) and bytecode compiled: the first ``collect()`` of a
process, a warm call, and the run's ledger (a process's first span: ``ledger.start()``, then
``finish()``). Prints one table of medians and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests' way to run a fresh interpreter

from tests.fresh import fresh_python  # noqa: E402

FIRST = """
import json, time, mlflow, psutil
import mlflow_sysmetrics
t = time.perf_counter()
mlflow_sysmetrics.collect()
print(json.dumps((time.perf_counter() - t) * 1e3))
"""
WARM = """
import json, time, mlflow, psutil
import mlflow_sysmetrics
mlflow_sysmetrics.collect()
best = []
for _ in range(40):
    t = time.perf_counter()
    for _ in range(25):
        mlflow_sysmetrics.collect()
    best.append((time.perf_counter() - t) / 25 * 1e6)
print(json.dumps(sorted(best)[len(best) // 2]))
"""

LEDGER = """
import json, time, mlflow, psutil
from mlflow_sysmetrics import ledger
t = time.perf_counter()
ledger.start().finish()
print(json.dumps((time.perf_counter() - t) * 1e3))
"""


def checkout(revision: str) -> Path:
    folder = REPO / ".bench" / f"ab-{revision}"
    if not folder.exists():
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(folder), revision], check=True
        )
    return folder


def sample(tree: Path, code: str) -> float:
    value: float = fresh_python(
        code, cwd=tempfile.gettempdir(), repo_on_path=False, env={"PYTHONPATH": str(tree)}
    ).value
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="git revision to compare this checkout against")
    parser.add_argument("--processes", type=int, default=15)
    args = parser.parse_args()
    trees = {"base": checkout(args.base), "this": REPO}
    for tree in trees.values():
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", str(tree / "mlflow_sysmetrics")], check=True
        )
    results: dict[str, dict[str, list[float]]] = {
        name: {"first": [], "warm": [], "ledger": []} for name in trees
    }
    for _ in range(args.processes):
        for name, tree in trees.items():
            results[name]["first"].append(sample(tree, FIRST))
            results[name]["warm"].append(sample(tree, WARM))
            results[name]["ledger"].append(sample(tree, LEDGER))
    print(f"| measure | base {args.base} | this | this / base |")
    print("|---|---:|---:|---:|")
    for measure, label in (
        ("first", "first collect() (ms)"),
        ("warm", "warm collect() (µs)"),
        ("ledger", "first ledger span (ms)"),
    ):
        base = statistics.median(results["base"][measure])
        this = statistics.median(results["this"][measure])
        print(f"| {label} | {base:.2f} | {this:.2f} | {this / base:.2f} |")


if __name__ == "__main__":
    main()
