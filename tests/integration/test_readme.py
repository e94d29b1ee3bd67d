"""Every Python snippet in the README's Usage section runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import REPO

USAGE = (REPO / "README.md").read_text().split("## Usage", 1)[1].split("\n## ", 1)[0]
SNIPPETS = re.findall(r"```python\n(.*?)```", USAGE, flags=re.S)


def test_usage_has_the_three_doors() -> None:
    """The Usage section shows implicit tagging, the with block, the decorator and log_sysmetrics."""
    joined = "\n".join(SNIPPETS)
    for name in ("mlflow.start_run", "sysmetrics_run(", "@with_sysmetrics", "log_sysmetrics(", "collect()"):
        assert name in joined


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[f"snippet{i}" for i in range(len(SNIPPETS))])
def test_snippet_runs(snippet: str, tmp_path: Path) -> None:
    """Run in a fresh interpreter against a SQLite store, implicit tagging on as the README says."""
    env = dict(
        os.environ,
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",
        MLFLOW_RUN_CONTEXT_PROVIDER="sysmetrics",
    )
    out = subprocess.run(
        [sys.executable, "-c", snippet], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    assert out.returncode == 0, f"exit status {out.returncode}: {out.stderr[-3000:]}"
