"""Reading the warm path's environment variables: CPython's store directly vs os.environ.get.

    python benchmarks/env_read.py

Side by side in one process, best of 7 repeats; the ratio is what decides whether
mlflow_sysmetrics._env may read os.environ's private store (it must matter on the warm path).
"""

from __future__ import annotations

import os
import timeit

from mlflow_sysmetrics import _env, collect
from mlflow_sysmetrics._collection import _plans
from mlflow_sysmetrics.collectors import distributed
from mlflow_sysmetrics.settings import ENV_EXCLUDE, ENV_INCLUDE, ENV_ROOT, ENV_TIMEOUT


def main() -> None:
    collect()
    cached_env = tuple(name for plan in _plans.values() for name in plan.env_names)
    names = tuple(
        dict.fromkeys((ENV_TIMEOUT, ENV_INCLUDE, ENV_EXCLUDE, ENV_ROOT, *cached_env, *distributed.ALL_VARS))
    )
    direct = _env.reader(names)

    def public() -> tuple[str | None, ...]:
        return tuple(map(os.environ.get, names))

    number = 20000
    fast = min(timeit.repeat(direct, number=number, repeat=7)) / number * 1e6
    slow = min(timeit.repeat(public, number=number, repeat=7)) / number * 1e6
    warm = min(timeit.repeat(collect, number=5000, repeat=7)) / 5000 * 1e6
    print(f"variables read on a warm call: {len(names)}")
    print("| way | us per warm call's reads |\n|---|---:|")
    print(f"| os.environ's store (_env.reader) | {fast:.1f} |")
    print(f"| os.environ.get | {slow:.1f} |")
    print(f"| ratio get / store | {slow / fast:.1f} |")
    print(f"| a whole warm collect() | {warm:.1f} |")


if __name__ == "__main__":
    main()
