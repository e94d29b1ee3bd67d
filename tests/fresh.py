"""One way to run code in a fresh interpreter, for the tests and the benchmarks alike.

A fresh interpreter is what a user's script is: nothing imported yet, no cache, the
environment it was given. Ours is clean: none of the package's settings
(``MLFLOW_SYSMETRICS_*``, ``MLFLOW_RUN_CONTEXT_PROVIDER``) is inherited unless given, and the
repository comes first on the path, so the code under test is the checkout's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
#: Variables of ours a fresh interpreter does not inherit (they change what is collected).
SETTINGS_PREFIXES = ("MLFLOW_SYSMETRICS_", "MLFLOW_RUN_CONTEXT_PROVIDER")


class Ran:
    """What a fresh interpreter printed: the JSON value of its last line, and its output."""

    __slots__ = ("stderr", "stdout", "value")

    def __init__(self, value: Any, stdout: str, stderr: str) -> None:
        self.value = value
        self.stdout = stdout
        self.stderr = stderr


def fresh_python(
    code: str,
    *flags: str,
    env: Mapping[str, str] | None = None,
    python: str | Path = sys.executable,
    cwd: str | Path | None = REPO,
    timeout: float = 120,
    scrub: tuple[str, ...] = SETTINGS_PREFIXES,
    repo_on_path: bool = True,
) -> Ran:
    """Run ``code`` (``python *flags -c code``) and return what it printed; it must exit 0.

    ``env`` is added to a copy of this process's environment less the variables whose
    names start with one of ``scrub`` (our settings, by default). ``PYTHONPATH`` puts the
    repository first (unless not ``repo_on_path``: another installation of the package, as
    0.1.3 beside ours), then any ``PYTHONPATH`` given in ``env``.
    """
    environ = {k: v for k, v in os.environ.items() if not k.startswith(scrub)}
    given = dict(env or {})
    path = [str(REPO)] if repo_on_path else []
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [*path, given.pop("PYTHONPATH", "")]))
    environ.update(given)
    out = subprocess.run(
        [str(python), *flags, "-c", code],
        capture_output=True,
        text=True,
        env=environ,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    assert out.returncode == 0, f"exit {out.returncode}:\n{out.stderr[-3000:]}"
    lines = out.stdout.strip().splitlines()
    value = json.loads(lines[-1]) if lines else None
    return Ran(value, out.stdout, out.stderr)


def bare_python(code: str, **env: str) -> Any:
    """Run ``code`` in ``python -S`` (no site-packages, no MLflow) with only the repository on the path.

    What a GPU node with nothing but the package installed runs; the value of its last line, as JSON.
    """
    return fresh_python(code, "-S", env=env, scrub=("MLFLOW_", "PYTHON"), timeout=60).value


def python_without_read_anything(folder: Path) -> str:
    """A Python that cannot read a file its mode refuses it, as a process that is not root cannot.

    This interpreter where it is not root; as root, a wrapper script in ``folder`` that runs
    it without root's right to read any file (``setpriv`` drops ``CAP_DAC_OVERRIDE`` and
    ``CAP_DAC_READ_SEARCH``).
    """
    if os.getuid() != 0:
        return sys.executable
    setpriv = shutil.which("setpriv")
    assert setpriv, "util-linux's setpriv is needed to run a process without root's read-anything right"
    wrapper = folder / "python-without-dac"
    drop = "-dac_override,-dac_read_search"
    wrapper.write_text(
        f'#!/bin/sh\nexec "{setpriv}" --bounding-set={drop} --inh-caps={drop} "{sys.executable}" "$@"\n'
    )
    wrapper.chmod(0o755)
    return str(wrapper)
