"""Storage bytes: ``/proc/<pid>/io`` replayed, and read for real from children that write and read.

The replayed process is ``pod-proc-counters`` (its README names the documents); the real
children write with ``fsync`` and read around the page cache.

The real children run in a fresh interpreter whose span counts them; the expected figures are
the bytes they wrote and read, within a margin for what starting an interpreter may read.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mlflow_sysmetrics import ledger
from tests.conftest import FIXTURES
from tests.fresh import REPO, fresh_python, python_without_read_anything

MIB = 1 << 20
#: What a child may read or write besides what it was told to (an interpreter's own start).
MARGIN = 4 * MIB
#: The pod's ``/proc/self/io`` at the start (``pod-proc-counters``).
START = {"read_bytes": 52428800000, "write_bytes": 8589934592, "cancelled_write_bytes": 1048576}

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/<pid>/io is Linux's")


def _io(read: int, write: int, cancelled: int = 0) -> str:
    """``/proc/<pid>/io`` as ``do_io_accounting`` prints it."""
    return (
        f"rchar: {read + 4096}\nwchar: {write}\nsyscr: 10\nsyscw: 10\n"
        f"read_bytes: {read}\nwrite_bytes: {write}\ncancelled_write_bytes: {cancelled}\n"
    )


def _pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "pod"
    shutil.copytree(FIXTURES / "pod-proc-counters", root, symlinks=True)
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(root))
    return root


def _self(root: Path, read: int = 0, write: int = 0, cancelled: int = 0) -> None:
    """The process's counters grown by these many bytes since the fixture's."""
    (root / "proc/self/io").write_text(
        _io(
            START["read_bytes"] + read,
            START["write_bytes"] + write,
            START["cancelled_write_bytes"] + cancelled,
        )
    )


def _children(root: Path, *pids: int) -> None:
    """The test process's live children, as ``/proc/<pid>/task/<tid>/children`` lists them."""
    folder = root / f"proc/{os.getpid()}/task/{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "children").write_text(" ".join(map(str, pids)) + (" " if pids else ""))


def _process(root: Path, pid: int, read: int, write: int) -> None:
    (root / f"proc/{pid}/task/{pid}").mkdir(parents=True, exist_ok=True)
    (root / f"proc/{pid}/io").write_text(_io(read, write))


def test_the_growth_of_read_and_write_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """2 GB fetched from storage and 1 GB written during the run; rchar (reads from the cache too) ignored."""
    root = _pod(tmp_path, monkeypatch)
    span = ledger.Span()
    _self(root, read=2 * 10**9, write=10**9)
    counted = span.finish()
    assert counted.metrics["sys.io_read_gb"] == 2.0
    assert counted.metrics["sys.io_write_gb"] == 1.0
    assert "storage io" not in counted.text


def test_writes_dropped_before_writeback_are_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """1 GB written, of which 0.25 GB truncated before it reached the disk: the figure stays, with a note."""
    root = _pod(tmp_path, monkeypatch)
    span = ledger.Span()
    _self(root, write=10**9, cancelled=250_000_000)
    counted = span.finish()
    assert counted.metrics["sys.io_write_gb"] == 1.0
    assert (
        "storage io: 0.25 GB of the writes were dropped before writeback (files truncated or deleted)"
        in counted.text
    )


def test_live_children_count_their_growth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two DataLoader workers alive at the end: 4242 read 1 GB more, 4343 (new) 0.25 GB: 1.25 GB.

    4242 was alive at the start too: its 5 GB read before are not the run's.
    """
    root = _pod(tmp_path, monkeypatch)
    _children(root, 4242)
    _process(root, 4242, read=5 * 10**9, write=0)
    span = ledger.Span()
    _children(root, 4242, 4343)
    _process(root, 4242, read=6 * 10**9, write=0)
    _process(root, 4343, read=250_000_000, write=10**8)
    counted = span.finish()
    assert counted.metrics["sys.io_read_gb"] == 1.25
    assert counted.metrics["sys.io_write_gb"] == 0.1


def test_a_child_reaped_during_the_run_moves_its_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker 4242 (5 GB read before the run) reads 1 GB more and is reaped: the run's figure is 1 GB.

    Reaped, its 6 GB join its parent's counters (``wait_task_zombie``).
    """
    root = _pod(tmp_path, monkeypatch)
    _children(root, 4242)
    _process(root, 4242, read=5 * 10**9, write=0)
    span = ledger.Span()
    _children(root)
    shutil.rmtree(root / "proc/4242")
    _self(root, read=6 * 10**9)
    counted = span.finish()
    assert counted.metrics["sys.io_read_gb"] == 1.0
    assert counted.metrics["sys.io_write_gb"] == 0.0


def test_a_child_that_left_the_run_makes_it_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """4242, a grandchild at the start, is orphaned (still alive, no longer below this process): unknown."""
    root = _pod(tmp_path, monkeypatch)
    _children(root, 4242)
    _process(root, 4242, read=5 * 10**9, write=0)
    span = ledger.Span()
    _children(root)
    counted = span.finish()
    assert not {"sys.io_read_gb", "sys.io_write_gb"} & set(counted.metrics)
    assert (
        "storage io: process 4242, the run's at its start, left it (orphaned) before its end" in counted.text
    )


def test_no_task_accounting_is_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel built without CONFIG_TASK_IO_ACCOUNTING has no /proc/self/io: no figures, and why."""
    root = _pod(tmp_path, monkeypatch)
    (root / "proc/self/io").unlink()
    counted = ledger.Span().finish()
    assert not {"sys.io_read_gb", "sys.io_write_gb"} & set(counted.metrics)
    assert "storage io: no /proc/self/io (a kernel without task I/O accounting)" in counted.text


UNREADABLE = """
import json, os
from mlflow_sysmetrics import ledger
counted = ledger.Span().finish()
print(json.dumps([counted.metrics, counted.text]))
"""


@linux_only
def test_a_child_whose_file_is_not_ours_to_read(tmp_path: Path) -> None:
    """A live child whose /proc/<pid>/io is refused (another user's: ptrace read access): unknown, and why.

    The replayed child's file is made unreadable (mode 000); as root, the process reading it
    also drops root's right to read any file (setpriv), as a process refused it would be.
    """
    root = tmp_path / "pod"
    shutil.copytree(FIXTURES / "pod-proc-counters", root, symlinks=True)
    python = python_without_read_anything(tmp_path)
    # the fresh interpreter's own pid is not known before it starts: it lists its child itself
    code = (
        "import os, pathlib\n"
        f"root = pathlib.Path({str(root)!r})\n"
        "task = root / f'proc/{os.getpid()}/task/{os.getpid()}'\n"
        "task.mkdir(parents=True)\n"
        "(task / 'children').write_text('4242 ')\n"
        "(root / 'proc/4242').mkdir()\n"
        "(root / 'proc/4242/io').write_text('read_bytes: 1\\nwrite_bytes: 1\\ncancelled_write_bytes: 0\\n')\n"
        "(root / 'proc/4242/io').chmod(0)\n" + UNREADABLE
    )
    metrics, text = fresh_python(code, python=python, env={"MLFLOW_SYSMETRICS_ROOT": str(root)}).value
    assert not {"sys.io_read_gb", "sys.io_write_gb"} & set(metrics)
    assert (
        "storage io: /proc/4242/io, of a process of the run, cannot be read (another user's, or not dumpable)"
        in text
    )


# Real processes: the files they read and write are on a disk, not in memory (tmpfs counts nothing).

MEMORY_FILE_SYSTEMS = {"tmpfs", "ramfs"}


def _file_system(path: Path) -> str:
    """The type of the file system ``path`` is on (``/proc/self/mountinfo``: the longest mount point above it)."""
    best, kind = "", "unknown"
    real = os.path.realpath(path)
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        mount = fields[4].replace("\\040", " ")
        after = line.split(" - ", 1)[1].split()
        inside = real == mount or real.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, kind = mount, after[0]
    return kind


@contextmanager
def _on_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on a disk-backed file system: ``tmp_path``, else one beside the tests; skips if neither."""
    if _file_system(tmp_path) not in MEMORY_FILE_SYSTEMS:
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(dir=REPO / "tests") as folder:
        if _file_system(Path(folder)) in MEMORY_FILE_SYSTEMS:
            pytest.skip("no disk-backed folder to write to: tmpfs does no storage I/O to count")
        yield Path(folder)


def _make(path: Path, size: int) -> None:
    """A file of ``size`` bytes, on the disk (fsync), clean in the page cache."""
    with open(path, "wb") as handle:
        handle.write(b"r" * size)
        handle.flush()
        os.fsync(handle.fileno())


#: A child that writes ``argv[2]`` bytes to ``argv[1]`` and syncs them, then reads ``argv[3]``
#: around the page cache: O_DIRECT into a page-aligned buffer, else after dropping the file's
#: clean pages from the cache (POSIX_FADV_DONTNEED). Prints how it read, and how much.
WRITE_AND_READ = r"""
import mmap, os, sys
out, size, source = sys.argv[1], int(sys.argv[2]), sys.argv[3]
fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
for _ in range(size >> 20):
    os.write(fd, b"w" * (1 << 20))
os.fsync(fd)
os.close(fd)
buffer = mmap.mmap(-1, 1 << 20)
def read_all(flags):
    fd = os.open(source, os.O_RDONLY | flags)
    try:
        if not flags:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        got = 0
        while True:
            n = os.readv(fd, [buffer])
            if not n:
                return got
            got += n
    finally:
        os.close(fd)
try:
    how, got = "O_DIRECT", read_all(os.O_DIRECT)
except OSError:  # a file system that refuses O_DIRECT
    how, got = "after dropping it from the page cache", read_all(0)
print(how, got)
"""

SPAN_OVER_CHILD = """
import json, subprocess, sys
from mlflow_sysmetrics import ledger
span = ledger.start()
ran = subprocess.run([sys.executable, "-c", {child!r}, *{args!r}], capture_output=True, text=True, check=True)
counted = span.finish()
print(json.dumps([counted.metrics, counted.text, ran.stdout.strip()]))
"""


@linux_only
def test_a_child_that_writes_and_reads_around_the_cache(tmp_path: Path) -> None:
    """A child writes 24 MiB with fsync and reads 16 MiB past the page cache: those are the figures.

    Both counted once the child is reaped (its counts join its parent's). The read file was
    written before the run: its own writing is not the run's.
    """
    with _on_disk(tmp_path) as folder:
        source = folder / "source.bin"
        _make(source, 16 * MIB)
        args = [str(folder / "out.bin"), str(24 * MIB), str(source)]
        metrics, text, how = fresh_python(SPAN_OVER_CHILD.format(child=WRITE_AND_READ, args=args)).value
    assert how.endswith(str(16 * MIB)), how
    assert 24 * MIB <= metrics["sys.io_write_gb"] * 1e9 <= 24 * MIB + MARGIN
    assert 16 * MIB <= metrics["sys.io_read_gb"] * 1e9 <= 16 * MIB + MARGIN, how
    assert "storage io" not in text


#: A worker that writes ``argv[2]`` bytes before the run, ``argv[4]`` during it when told, and
#: stays alive until told to end (a DataLoader worker alive when the run ends).
WORKER = r"""
import os, sys
def write(path, size):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    for _ in range(size >> 20):
        os.write(fd, b"w" * (1 << 20))
    os.fsync(fd)
    os.close(fd)
write(sys.argv[1], int(sys.argv[2]))
print("ready", flush=True)
sys.stdin.readline()
write(sys.argv[3], int(sys.argv[4]))
print("written", flush=True)
sys.stdin.readline()
"""

SPAN_OVER_WORKER = """
import json, subprocess, sys
from mlflow_sysmetrics import ledger
worker = subprocess.Popen([sys.executable, "-c", {worker!r}, *{args!r}], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True)
assert worker.stdout.readline().strip() == "ready"
span = ledger.start()
worker.stdin.write("go\\n"); worker.stdin.flush()
assert worker.stdout.readline().strip() == "written"
counted = span.finish()
worker.stdin.write("end\\n"); worker.stdin.flush(); worker.wait()
print(json.dumps([counted.metrics, counted.text]))
"""


@linux_only
def test_a_worker_alive_at_both_ends_counts_what_it_did_during_the_run(tmp_path: Path) -> None:
    """A worker wrote 32 MiB before the run and 8 MiB during it, and is alive at the end: 8 MiB."""
    with _on_disk(tmp_path) as folder:
        args = [str(folder / "before.bin"), str(32 * MIB), str(folder / "during.bin"), str(8 * MIB)]
        metrics, _ = fresh_python(SPAN_OVER_WORKER.format(worker=WORKER, args=args)).value
    assert 8 * MIB <= metrics["sys.io_write_gb"] * 1e9 <= 8 * MIB + MARGIN


#: ``mlflow-sysmetrics run``'s way: the program started after the span, followed, waited for with
#: wait4; meanwhile this process writes 16 MiB of its own, which is not the program's.
SPAN_FOLLOWING = """
import json, os, subprocess, sys
from mlflow_sysmetrics import ledger
span = ledger.start()
program = subprocess.Popen([sys.executable, "-c", {child!r}, *{args!r}], stdout=subprocess.DEVNULL)
span.follow_program(program.pid)
fd = os.open({own!r}, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
for _ in range(16):
    os.write(fd, b"o" * (1 << 20))
os.fsync(fd)
os.close(fd)
_, status, usage = os.wait4(program.pid, 0)
span.program_exited(ledger.ProgramExit(program.pid, usage.ru_maxrss))
counted = span.finish()
print(json.dumps([counted.metrics, counted.text]))
"""


@linux_only
def test_a_followed_program_counts_without_its_launcher(tmp_path: Path) -> None:
    """The program writes 8 MiB and reads 4 MiB; the process running it writes 16 MiB: the figures are 8 and 4."""
    with _on_disk(tmp_path) as folder:
        source = folder / "source.bin"
        _make(source, 4 * MIB)
        args = [str(folder / "out.bin"), str(8 * MIB), str(source)]
        code = SPAN_FOLLOWING.format(child=WRITE_AND_READ, args=args, own=str(folder / "own.bin"))
        metrics, text = fresh_python(code).value
    assert 8 * MIB <= metrics["sys.io_write_gb"] * 1e9 <= 8 * MIB + MARGIN
    assert 4 * MIB <= metrics["sys.io_read_gb"] * 1e9 <= 4 * MIB + MARGIN
    assert "storage io" not in text
