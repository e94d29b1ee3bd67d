"""Running outside commands: no shell, resolved path, timeout with a kill, bounded output."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mlflow_sysmetrics import _proc
from tests.conftest import FakeCommands


def test_output_and_exit_status(fake_commands: FakeCommands) -> None:
    """Standard output comes back as text; a non-zero exit names the first line of stderr."""
    fake_commands(scripts={"tool": "echo hello; echo more", "broken": "echo 'it broke' >&2; echo x; exit 4"})
    assert _proc.run(["tool"], 5) == "hello\nmore\n"
    with pytest.raises(_proc.CommandError, match="broken exited with status 4: it broke"):
        _proc.run(["broken"], 5)


def test_missing_program_is_a_cheap_miss(fake_commands: FakeCommands) -> None:
    """A program not on PATH is FileNotFoundError before any process starts."""
    fake_commands()
    with pytest.raises(FileNotFoundError, match="nvidia-smi is not on PATH"):
        _proc.run(["nvidia-smi"], 5)


def test_timeout_kills_the_process_group(tmp_path: Path, fake_commands: FakeCommands) -> None:
    """A hang is killed at the timeout, children included (the child never writes its mark)."""
    mark = tmp_path / "mark"
    fake_commands(scripts={"hang": f"(sleep 1; echo late > {mark}) &\nsleep 30"})
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"hang gave no answer in 0\.3 s"):
        _proc.run(["hang"], 0.3)
    assert time.monotonic() - started < 10  # cut off, not the 30 s the program would take
    time.sleep(1.2)
    assert not mark.exists()


def test_output_is_bounded(fake_commands: FakeCommands) -> None:
    """Megabytes of output stop at the bound."""
    fake_commands(scripts={"chatty": "yes | head -c 5000000"})
    with pytest.raises(_proc.CommandError, match="printed more than 1000 bytes"):
        _proc.run(["chatty"], 5, max_bytes=1000)


def test_no_time_left(fake_commands: FakeCommands) -> None:
    """With the deadline already passed, nothing is started."""
    fake_commands(scripts={"tool": "echo hi"})
    with pytest.raises(TimeoutError, match="not started"):
        _proc.run(["tool"], 0)
