"""Storage bytes the run's processes made the kernel read and write: ``/proc/<pid>/io``.

``read_bytes`` and ``write_bytes`` (proc(5), ``Documentation/filesystems/proc.rst``) count
what a process caused the storage layer to fetch and to be sent, not what it asked of the
file system:

- a read served from the page cache costs nothing; a read counts when the kernel submits
  it to a block device (``submit_bio``: direct I/O, readahead, a page fault on a mapped
  file), and where a network file system's client counts what it fetches from its server
  (NFS and the kernel's ``netfs`` clients, SMB and Ceph among them, on recent kernels). A
  FUSE mount (s3fs, gcsfuse, ...) is fetched by its daemon, another process: it counts
  nothing here;
- a write counts when the process first dirties a page of the page cache, before it is
  written back (direct I/O when it is submitted): a file written and then deleted or
  truncated before writeback counts as written. ``cancelled_write_bytes`` counts the dirty
  pages so dropped, by whichever process dropped them; when it grew, ``sys.ledger`` says
  by how much.

``/proc/<pid>/io`` holds the process (its threads, live or ended) and the children it
reaped, each with what it had reaped in turn: ``wait_task_zombie`` (``kernel/exit.c``)
adds a reaped child's counts to its parent's, and ``do_io_accounting`` (``fs/proc/base.c``)
reports them with the live threads'. A child still alive is not in it: every live
descendant's own file is read too, at both ends (a DataLoader worker alive when the run
ends). The figure is the growth of the sum, so a descendant alive at the start counts only
what it did since, and one reaped during the run by a process of the run moves its counts
within the sum. A process whose file cannot be read (another user's, or one made not
dumpable: reading it needs ``ptrace`` read access), or a descendant alive at the start that
is alive outside the run at the end (orphaned), makes the figure unknown: absent, with the
reason. What leaves the tree unseen is lost to the figure: a process orphaned during the
run that was born during it, or that ended before the run did (its counts go to whichever
process reaps it), and the children of a parent that ignores ``SIGCHLD`` (the kernel reaps
them and keeps no count).

Under ``mlflow-sysmetrics run`` the run is the program: from the program's start, this
process's live threads' own counts (``/proc/self/task/<tid>/io``) are taken out at both
ends, so the figure is what the program and its descendants did (a thread of this process
that ends meanwhile leaves its counts in the process's: counted).
"""

from __future__ import annotations

import os

from .. import _platform
from .. import tags as T
from .._files import Root
from .._value import Record
from ._meter import Book, Meter, Uncountable, descendants, read_text

#: The fields counted (proc(5)): bytes fetched from storage, bytes sent to it (at the time
#: the pages were dirtied), and dirty bytes dropped before writeback.
FIELDS = ("read_bytes", "write_bytes", "cancelled_write_bytes")


class Counts(Record):
    """The run's processes' counts at one moment, and what could not be read of them."""

    read: int
    write: int
    cancelled: int
    #: The live descendants read.
    processes: frozenset[int]
    #: A process of the run whose file could not be read, if any.
    unreadable: int | None


def counters(root: Root, folder: str) -> tuple[int, int, int] | None:
    """``read_bytes``, ``write_bytes``, ``cancelled_write_bytes`` of ``<folder>/io``.

    ``None`` when the process (or thread) is gone; :class:`OSError` when its file cannot be
    read (``PermissionError``: not ours to read); :class:`Uncountable` when it does not hold
    the three fields.
    """
    try:
        text = read_text(root, f"{folder}/io", whole=True)
    except (FileNotFoundError, ProcessLookupError):
        return None
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name in FIELDS:
            try:
                values[name] = int(value)
            except ValueError:
                break
    if len(values) != len(FIELDS):
        raise Uncountable(f"{folder}/io does not hold {', '.join(FIELDS)}")
    return values["read_bytes"], values["write_bytes"], values["cancelled_write_bytes"]


class IoMeter(Meter):
    """Storage bytes read and written by the run's processes (see the module)."""

    name = "storage io"

    def __init__(self, root: Root) -> None:
        if not _platform.LINUX:
            raise Uncountable("no /proc/self/io on this platform")
        self.root = root
        self.pid = os.getpid()
        self.following = False
        #: The counts when the followed program started (``mlflow-sysmetrics run``), or why none.
        self.program_start: Counts | str | None = None

    def read(self) -> Counts:
        """The counts of this process and its live descendants (less its own threads' when following)."""
        try:
            own = counters(self.root, "/proc/self")
        except OSError as exc:
            raise Uncountable(f"/proc/self/io cannot be read ({exc.strerror or exc})") from None
        if own is None:
            raise Uncountable("no /proc/self/io (a kernel without task I/O accounting)")
        read, write, cancelled = own
        if self.following:
            for tid in self.root.listdir("/proc/self/task"):
                try:
                    thread = counters(self.root, f"/proc/self/task/{tid}")
                except OSError as exc:
                    raise Uncountable(
                        f"/proc/self/task/{tid}/io cannot be read ({exc.strerror or exc})"
                    ) from None
                if thread is not None:
                    read, write, cancelled = read - thread[0], write - thread[1], cancelled - thread[2]
        unreadable = None
        processes = frozenset(descendants(self.root, self.pid))
        for pid in processes:
            try:
                found = counters(self.root, f"/proc/{pid}")
            except OSError:
                unreadable = pid
                continue
            if found is not None:
                read, write, cancelled = read + found[0], write + found[1], cancelled + found[2]
        return Counts(read, write, cancelled, processes, unreadable)

    def follow_program(self, pid: int) -> None:
        """The run is program ``pid``: counted from now, without this process's own threads."""
        self.following = True
        try:
            self.program_start = self.read()
        except Exception as exc:  # said when the figures are made
            self.program_start = str(exc) if isinstance(exc, Uncountable) else f"{type(exc).__name__}: {exc}"

    def figures(self, first: Counts, last: Counts, seconds: float, book: Book) -> None:
        """``sys.io_read_gb``, ``sys.io_write_gb``."""
        start = first
        if self.following:
            if not isinstance(self.program_start, Counts):
                raise Uncountable(self.program_start or "the program's start was not read")
            start = self.program_start
        unreadable = start.unreadable or last.unreadable
        if unreadable is not None:
            raise Uncountable(
                f"/proc/{unreadable}/io, of a process of the run, cannot be read "
                "(another user's, or not dumpable)"
            )
        left = sorted(p for p in start.processes - last.processes if self.root.exists(f"/proc/{p}"))
        if left:
            raise Uncountable(f"process {left[0]}, the run's at its start, left it (orphaned) before its end")
        read, write, cancelled = (
            last.read - start.read,
            last.write - start.write,
            last.cancelled - start.cancelled,
        )
        if read < 0 or write < 0:
            raise Uncountable("the counts fell: a process of the run at its start left it before its end")
        book.add(T.IO_READ_GB, round(read / 1e9, 9))
        book.add(T.IO_WRITE_GB, round(write / 1e9, 9))
        if cancelled > 0:
            book.note(
                f"storage io: {cancelled / 1e9:.3g} GB of the writes were dropped before writeback "
                "(files truncated or deleted)"
            )
