"""``/proc/self/mountinfo``: its lines as proc(5) lays them out, the mount holding a path, local or not.

The lines are proc(5)'s own example (section "/proc/pid/mountinfo") and those the captured
H100 VM (``tests/fixtures/h100-vm``) recorded.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlflow_sysmetrics._files import Root
from mlflow_sysmetrics.collectors import _mountinfo
from tests.conftest import fixture_root

#: proc(5)'s example: mount id, parent id, major:minor, root, mount point, mount options,
#: one optional field (``master:1``), the separator, type, source, super options.
PROC_5_EXAMPLE = "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n"


def _fields(mount: _mountinfo.Mount) -> tuple[str, str, str, tuple[str, ...]]:
    return (mount.root, mount.mount_point, mount.fstype, mount.super_options)


def test_the_fields_of_proc_5s_example_line() -> None:
    """Root within the file system, mount point, type and super options; the optional field is passed over."""
    (mount,) = _mountinfo.parse(PROC_5_EXAMPLE)
    assert _fields(mount) == ("/mnt1", "/mnt2", "ext3", ("rw", "errors=continue"))
    assert mount.cgroup_version is None


@pytest.mark.parametrize(
    "optional",
    ["", "shared:1", "shared:7 master:2", "shared:3 master:1 propagate_from:1 unbindable"],
    ids=["none", "one", "two", "four"],
)
def test_any_number_of_optional_fields(optional: str) -> None:
    """proc(5): "zero or more fields of the form tag[:value]" before the separator; the type is after it."""
    line = f"36 35 98:0 /mnt1 /mnt2 rw,noatime {optional} - ext3 /dev/root rw,errors=continue"
    (mount,) = _mountinfo.parse(line)
    assert _fields(mount) == ("/mnt1", "/mnt2", "ext3", ("rw", "errors=continue"))


def test_octal_escapes_are_undone() -> None:
    """The kernel writes space, tab, newline and backslash in paths as \\040, \\011, \\012 and \\134."""
    line = r"40 31 0:37 /a\134b /mnt/my\040data\011x\012y rw - ext4 /dev/sda1 rw" + "\n"
    (mount,) = _mountinfo.parse(line)
    assert (mount.root, mount.mount_point) == ("/a\\b", "/mnt/my data\tx\ny")
    assert _mountinfo.unescape("/mnt/plain") == "/mnt/plain"
    assert _mountinfo.unescape("/mnt/x\\9zz") == "/mnt/x\\9zz"  # not three octal digits: kept as written


def test_malformed_lines_are_skipped() -> None:
    """A line without the separator, or too short on either side of it, is no mount; the good lines stay."""
    text = "".join(
        [
            "36 35 98:0 /mnt1 /mnt2 rw,noatime ext3 /dev/root rw\n",  # no separator
            "36 35 98:0 /mnt1 - ext3 /dev/root rw\n",  # no mount point before it
            "36 35 98:0 /mnt1 /mnt2 rw -\n",  # no type after it
            "\n",
            PROC_5_EXAMPLE,
        ]
    )
    assert [_fields(m) for m in _mountinfo.parse(text)] == [
        ("/mnt1", "/mnt2", "ext3", ("rw", "errors=continue"))
    ]


def test_a_line_without_super_options_has_none() -> None:
    """Type and source but no super options: an empty tuple, not an error."""
    (mount,) = _mountinfo.parse("36 35 98:0 / /mnt rw - tmpfs tmpfs\n")
    assert (mount.fstype, mount.super_options) == ("tmpfs", ())


def test_the_captured_vms_mounts() -> None:
    """The H100 VM's ten lines: its ext4 root, the squashfs NVIDIA mount, cgroup v2 at /sys/fs/cgroup."""
    text = (fixture_root("h100-vm") / "proc/self/mountinfo").read_text()
    mounts = _mountinfo.parse(text)
    assert len(mounts) == 10
    by_point = {m.mount_point: m for m in mounts}
    assert (by_point["/"].root, by_point["/"].fstype) == ("/", "ext4")
    assert (
        by_point["/usr/local/nvidia"].fstype,
        by_point["/usr/local/nvidia"].super_options,
    ) == ("squashfs", ("ro", "errors=continue"))
    assert [(m.mount_point, m.cgroup_version) for m in mounts if m.cgroup_version] == [("/sys/fs/cgroup", 2)]


def test_the_mount_holding_a_path_is_the_longest_mount_point_above_it() -> None:
    """/usr/local/nvidia holds its files; /usr/local/nvidiax is the root's; "/" holds what nothing else does."""
    mounts = _mountinfo.parse((fixture_root("h100-vm") / "proc/self/mountinfo").read_text())

    def holder(path: str) -> str | None:
        mount = _mountinfo.holding(mounts, path)
        return None if mount is None else mount.mount_point

    assert holder("/usr/local/nvidia/lib64/libcuda.so") == "/usr/local/nvidia"
    assert holder("/usr/local/nvidia") == "/usr/local/nvidia"
    assert holder("/usr/local/nvidiax/file") == "/"
    assert holder("/dev/shm/torch_123") == "/dev/shm"
    assert holder("/home/user") == "/"
    assert _mountinfo.holding([], "/home") is None


def test_of_two_mounts_on_one_point_the_later_one_holds_it() -> None:
    """The VM mounted /dev/shm twice (tmpfs of 131981020k, then of 134217728k): the later hides the first."""
    mounts = _mountinfo.parse((fixture_root("h100-vm") / "proc/self/mountinfo").read_text())
    mount = _mountinfo.holding(mounts, "/dev/shm/x")
    assert mount is not None
    assert mount.super_options == ("rw", "size=134217728k")


def _root_with(tmp_path: Path, mountinfo: str) -> Root:
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/mountinfo").write_text(mountinfo)
    return Root(str(tmp_path))


def test_a_path_on_a_network_file_system_is_not_local(tmp_path: Path) -> None:
    """The ext4 root is local; an NFS mount below it is not; a path under no known mount is not said local."""
    root = _root_with(
        tmp_path,
        "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
        "80 27 0:52 / /mnt/datasets rw,relatime - nfs4 10.0.0.5:/export rw,vers=4.2\n",
    )
    assert _mountinfo.is_local(root, "/home/user/train.py")
    assert not _mountinfo.is_local(root, "/mnt/datasets/imagenet")
    assert not _mountinfo.is_local(_root_with(tmp_path / "empty", ""), "/")


def test_the_mounts_are_read_once_per_root(tmp_path: Path) -> None:
    """The CPU, memory and disk collectors share one reading: a second look-up reads no file."""
    root = _root_with(tmp_path, PROC_5_EXAMPLE)
    first = _mountinfo.mounts(root)
    (tmp_path / "proc/self/mountinfo").write_text("")
    assert _mountinfo.mounts(root) is first
    assert [m.mount_point for m in first] == ["/mnt2"]
