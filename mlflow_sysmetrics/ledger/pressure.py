"""Share of the run some task was stalled waiting for CPU, I/O or memory: the kernel's PSI.

Pressure stall information (Linux ``Documentation/accounting/psi.rst``) keeps, per resource,
the total time, in microseconds, during which at least one task was stalled on it: the
``some`` line's ``total=``. Read at the span's two ends, its growth over the span's wall
time is ``sys.stall_cpu_pct`` (runnable tasks waiting for a CPU), ``sys.stall_io_pct``
(waiting for I/O) and ``sys.stall_memory_pct`` (reclaiming memory, waiting for pages
swapped or thrashed in), in percent: the share of the run when something was waiting, not
how many waited.

The files are the run's cgroup's (v2: ``cpu.pressure``, ``io.pressure``,
``memory.pressure``), counting its own tasks; where the process is in no cgroup v2 group
that has them (cgroup v1, a hybrid host), ``/proc/pressure/cpu``, ``io`` and ``memory``,
which count every task of the host, other containers' included: ``sys.ledger`` says so.
A group's stalls are those of every task in it and in its child groups: where the run is not
alone in it at both ends (on a bare host, often a login session's scope that holds other
jobs; a container's init), ``sys.ledger`` says that the others count too.

PSI is off where the kernel was built without it, or with it off by default and booted
without ``psi=1`` (RHEL 8's default): the files are missing, or reading them fails with
``EOPNOTSUPP``. The figures are then absent with the reason.
"""

from __future__ import annotations

import os
import posixpath

from .. import _platform
from .. import tags as T
from .._files import Root, count, once_per_root
from ._meter import Book, Meter, Uncountable, alone_in

#: The resources, by their metric; each file's name in a cgroup and under ``/proc/pressure``.
RESOURCES: tuple[tuple[str, str, str], ...] = (
    (T.STALL_CPU_PCT, "cpu.pressure", "cpu"),
    (T.STALL_IO_PCT, "io.pressure", "io"),
    (T.STALL_MEMORY_PCT, "memory.pressure", "memory"),
)
#: Why there is nothing to read: the files missing, or there and refusing to be read.
NO_PSI = "no pressure stall information (PSI is off, or the kernel is older than 4.20)"
PSI_OFF = "PSI is off in this kernel (booted with psi=0, or without psi=1 where it is off by default)"


@once_per_root
def pressure_files(root: Root) -> tuple[list[str], bool] | str:
    """The three files read (cpu, io, memory), and whether they are the whole host's; else why none.

    Found once per process: the cgroup a process is in, and whether PSI is on, stay.
    """
    if not _platform.LINUX:
        return "no pressure stall information on this platform"
    from ..collectors import _cgroup

    version, folders = _cgroup.controller_dirs(root, "cpu")
    if version == 2 and folders and root.exists(posixpath.join(folders[0], "cpu.pressure")):
        return [posixpath.join(folders[0], name) for _, name, _ in RESOURCES], False
    if root.exists("/proc/pressure/cpu"):
        return [f"/proc/pressure/{name}" for _, _, name in RESOURCES], True
    return NO_PSI


def read_total(root: Root, path: str) -> int:
    """The ``some`` line's ``total=`` of a PSI file (microseconds); :class:`Uncountable` if not there."""
    try:
        handle = os.open(root.join(path), os.O_RDONLY)  # a few microseconds less than open()
        try:
            text = os.read(handle, 1024).decode("ascii", "replace")
        finally:
            os.close(handle)
    except OSError as exc:
        import errno

        if exc.errno == errno.EOPNOTSUPP:  # the files exist, PSI is off (psi=0)
            raise Uncountable(PSI_OFF) from None
        raise Uncountable(f"{path}: {exc.strerror or exc}") from None
    for line in text.splitlines():
        if line.startswith("some "):
            for field in line.split()[1:]:
                if field.startswith("total="):
                    value = count(field[6:])
                    if value is not None:
                        return value
    raise Uncountable(f"{path} holds no 'some ... total=' line")


class PressureMeter(Meter):
    """The run's cgroup's PSI, else the host's (see the module)."""

    name = "stalls"

    def __init__(self, root: Root) -> None:
        self.root = root
        found = pressure_files(root)
        if isinstance(found, str):
            raise Uncountable(found)
        self.files, self.host = found
        self.pid = os.getpid()
        self.alone = self._alone()

    def _alone(self) -> bool:
        """Whether the cgroup read holds the run's processes only, no child group (True: the host's files)."""
        if self.host:
            return True
        return alone_in(self.root, self.pid, 2, posixpath.dirname(self.files[0]))

    def read(self) -> list[int]:
        """Each resource's ``some`` total now, in microseconds."""
        return [read_total(self.root, path) for path in self.files]

    def figures(self, first: list[int], last: list[int], seconds: float, book: Book) -> None:
        """``sys.stall_cpu_pct``, ``sys.stall_io_pct`` and ``sys.stall_memory_pct``."""
        if self.host:
            book.note(T.LEDGER_HOST_STALLS)
        elif not (self.alone and self._alone()):
            book.note(T.LEDGER_CGROUP_STALLS)
        for (key, _, resource), before, after in zip(RESOURCES, first, last, strict=True):
            if after < before:
                book.lacks(f"{resource} stalls", "the PSI counter went backwards")
                continue
            # PSI adds up each CPU's clock, the span reads the monotonic one: a share a hair
            # above 100 is the clocks' difference, not a stall
            book.add(key, round(min((after - before) / (seconds * 1e6) * 100, 100.0), 3))
