"""Parsers for CPU, memory, cgroup and OS files, on real formats."""

from __future__ import annotations

from mlflow_sysmetrics._value import decimal, gb
from mlflow_sysmetrics.collectors import _cgroup, cpu, memory, system

BIG_LITTLE = "".join(
    f"processor\t: {i}\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU part\t: {part}\n\n"
    for i, part in enumerate(["0xd05"] * 4 + ["0xd0b"] * 4)
)
RASPBERRY_PI_32 = "processor\t: 0\nmodel name\t: ARMv7 Processor rev 3 (v7l)\nCPU implementer\t: 0x41\nCPU part\t: 0xd08\n\nHardware\t: BCM2711\n"
POWER9 = "processor\t: 0\ncpu\t\t: POWER9 (raw), altivec supported\nclock\t\t: 2166.000000MHz\n"
RISCV = "processor\t: 0\nhart\t\t: 1\nisa\t\t: rv64imafdc\nmmu\t\t: sv39\nuarch\t\t: sifive,u74-mc\n"
GRACE = "processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd4f\n"


def test_cpu_models_across_architectures() -> None:
    """x86 model name; ARM by implementer and part; POWER's cpu; RISC-V's uarch."""
    assert cpu.model_from_cpuinfo(BIG_LITTLE) == "ARM Cortex-A55 + ARM Cortex-A76"
    assert cpu.model_from_cpuinfo(RASPBERRY_PI_32) == "ARM Cortex-A72"
    assert cpu.model_from_cpuinfo(POWER9) == "POWER9"
    assert cpu.model_from_cpuinfo(RISCV) == "sifive,u74-mc"
    assert cpu.model_from_cpuinfo(GRACE) == "ARM Neoverse-V2"
    assert cpu.model_from_cpuinfo("processor\t: 0\nCPU implementer\t: 0x99\nCPU part\t: 0x123\n") == (
        "implementer 0x99 part 0x123"
    )
    assert cpu.model_from_cpuinfo("") is None


def test_arm_names_as_lscpu_prints_them(replay) -> None:  # type: ignore[no-untyped-def]
    """util-linux's lscpu-arm.c tables: FUJITSU in capitals, Cavium's ThunderX2-99xx."""
    from mlflow_sysmetrics import collect

    replay("fujitsu-a64fx")
    assert collect()["sys.cpu"] == "FUJITSU A64FX"
    replay("cavium-thunderx2")
    from mlflow_sysmetrics import _collection

    _collection.clear_cache()
    assert collect()["sys.cpu"] == "Cavium ThunderX2-99xx"


def test_s390x_model_is_vendor_and_machine_type(replay) -> None:  # type: ignore[no-untyped-def]
    """s390x's cpuinfo has no model name: vendor_id and machine type, as lscpu shows them."""
    from mlflow_sysmetrics import collect

    replay("ibm-z15-s390x")
    tags = collect()
    assert (tags["sys.cpu"], tags["sys.cpu_cores"]) == ("IBM/S390 8561", "4")


def test_a_replayed_machine_never_gets_this_machines_architecture(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A replayed cpuinfo that names no model leaves sys.cpu out; platform.machine() is this host's."""
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cpuinfo").write_text("processor\t: 0\nfeatures\t: esan3 zarch\n")
    from mlflow_sysmetrics._context import Context
    from mlflow_sysmetrics._files import Root

    assert "sys.cpu" not in cpu.collect_linux(Context(Root(str(tmp_path)), 1e12))


def test_smt_off_cores_available_are_the_online_ones(replay) -> None:  # type: ignore[no-untyped-def]
    """Cpus_allowed_list 0-31 with 16 CPUs online: sched_getaffinity would give 16."""
    from mlflow_sysmetrics import collect

    replay("cpu-smt-off")
    tags = collect()
    assert (tags["sys.cpu_cores"], tags["sys.cpu_available"]) == ("16", "16")


def test_cpu_list_counts() -> None:
    """Kernel CPU lists, and malformed ones."""
    assert cpu.parse_cpu_list("0-3,8,10-11\n") == 7
    assert cpu.parse_cpu_list("0") == 1
    assert cpu.parse_cpu_list("3-1") is None
    assert cpu.parse_cpu_list("a-b") is None


def test_meminfo_total() -> None:
    """MemTotal in kB to bytes."""
    assert memory.meminfo_total("MemFree: 1 kB\nMemTotal:  131981020 kB\n") == 135148564480
    assert memory.meminfo_total("MemTotal: lots\n") is None


def test_gb_and_decimal_formats() -> None:
    """10^9 bytes to two decimals; plain decimals without trailing zeros."""
    assert (gb(85520809984), gb(10**9), gb(0)) == ("85.52", "1.0", "0.0")
    assert (decimal(2.0), decimal(1.5), decimal(1 / 3), decimal(2.499)) == ("2", "1.5", "0.33", "2.5")
    # a quota of 400 us per 100 ms is 0.004 cores, not 0
    assert (decimal(0.004), decimal(0.0049), decimal(0.00001), decimal(0.006)) == (
        "0.004",
        "0.0049",
        "0.00001",
        "0.01",
    )


def test_mountinfo_escapes_and_hybrid_hosts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Octal escapes in mount points; a hybrid host's v2 mount that lacks the cpu controller."""
    mounts = _cgroup.parse_mountinfo("40 31 0:37 / /sys/fs/cgroup/my\\040dir rw - cgroup2 cgroup2 rw\n")
    assert mounts[0].mount_point == "/sys/fs/cgroup/my dir"
    from mlflow_sysmetrics._files import Root

    for name, text in {
        "proc/self/cgroup": "1:cpu:/\n0::/\n",
        "proc/self/mountinfo": (
            "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"
            "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
        ),
        "sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n",
        "sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
        "sys/fs/cgroup/unified/cgroup.controllers": "hugetlb\n",
        "sys/fs/cgroup/unified/memory.max": "1000\n",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    root = Root(str(tmp_path))
    assert _cgroup.cpu_quota(root) is None  # -1: no quota
    assert _cgroup.memory_limit(root) is None  # the v2 mount does not hold memory here


def test_os_release_quoting() -> None:
    """Quotes and backslash escapes are undone; NAME VERSION stands in for PRETTY_NAME."""
    values = system.parse_os_release('PRETTY_NAME="Fancy \\"OS\\" 1"\nNAME=\'Plain\'\n# comment\nbad line\n')
    assert values == {"PRETTY_NAME": 'Fancy "OS" 1', "NAME": "Plain"}
    assert system.os_name_from_release({"NAME": "Rocky Linux", "VERSION_ID": "9.4"}) == "Rocky Linux 9.4"
    assert system.os_name_from_release({}) is None
    assert system.macos_name("15.1") == "macOS 15.1"
