"""What the first collection would pay for the standard library's convenient answers.

    python benchmarks/cold_imports.py [--samples 15]

Each row is measured side by side in fresh processes (``python -S`` with site-packages put
back on the path, as a bare GPU node would run ``collect()``), medians. The package reads
these facts itself where the standard function costs milliseconds on a cold start:

- MLflow's version from the name of its ``.dist-info`` folder, against
  ``importlib.metadata.version`` (which imports ``csv``, ``email``, ``zipfile`` ...);
- ``sys.platform`` from ``os.uname`` and ``confstr``, against ``platform.platform()`` (which
  runs ``uname -p`` in a subprocess on Python 3.11 and 3.12);
- the logger, created on first use, against ``import logging`` at import time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SITE = [p for p in sys.path if p.endswith("site-packages")]

TIMED = """
import sys, time, json
sys.path.extend({site!r})
{setup}
t = time.perf_counter()
{body}
print(json.dumps((time.perf_counter() - t) * 1e3))
"""

#: (fact, the standard way, ours, what ours needs imported first: the modules a first
#: collect() imports anyway, so only the call is ours to pay)
ROWS = [
    (
        "MLflow's version",
        "from importlib import metadata\nmetadata.version('mlflow')",
        "software.mlflow_version()",
        "from mlflow_sysmetrics.collectors import software",
    ),
    (
        "sys.platform",
        "import platform\nplatform.platform()",
        "system.linux_platform()",
        "from mlflow_sysmetrics.collectors import system",
    ),
    (
        "the logger",
        "import logging\nlogging.getLogger('x')",
        "import mlflow_sysmetrics._log",
        "import mlflow_sysmetrics",
    ),
]


def run(body: str, setup: str = "") -> float:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    environ["PYTHONPATH"] = str(REPO)
    out = subprocess.run(
        [sys.executable, "-S", "-c", TIMED.format(site=SITE, setup=setup, body=body)],
        capture_output=True,
        text=True,
        env=environ,
        check=True,
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=15)
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, {args.samples} fresh processes per figure, medians")
    print()
    print(f"| {'fact':<18} | {'standard library (ms)':>22} | {'ours (ms)':>10} |")
    print(f"|{'-' * 20}|{'-' * 24}|{'-' * 12}|")
    for label, standard, ours, setup in ROWS:
        a: list[float] = []
        b: list[float] = []
        for _ in range(args.samples):  # interleaved
            a.append(run(standard))
            b.append(run(ours, setup))
        print(f"| {label:<18} | {statistics.median(a):>22.2f} | {statistics.median(b):>10.2f} |")


if __name__ == "__main__":
    main()
