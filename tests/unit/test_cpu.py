"""The CPU: its model across architectures (as lscpu names it), its cores and the CPUs this process may use."""

from __future__ import annotations

from mlflow_sysmetrics import collect
from mlflow_sysmetrics._files import Root
from mlflow_sysmetrics.collectors import cpu
from tests.conftest import documented, expected

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
    replay("fujitsu-a64fx")
    assert collect()["sys.cpu"] == expected("fujitsu-a64fx")["sys.cpu"]
    replay("cavium-thunderx2")
    from mlflow_sysmetrics import _collection

    _collection.clear_cache()
    assert collect()["sys.cpu"] == expected("cavium-thunderx2")["sys.cpu"]


def test_s390x_model_is_vendor_and_machine_type(replay) -> None:  # type: ignore[no-untyped-def]
    """s390x's cpuinfo has no model name: vendor_id and machine type, as lscpu shows them."""
    replay("ibm-z15-s390x")
    tags = collect()
    assert (tags["sys.cpu"], tags["sys.cpu_cores"]) == documented("ibm-z15-s390x", "sys.cpu", "sys.cpu_cores")


def test_a_replayed_machine_never_gets_this_machines_architecture(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A replayed cpuinfo that names no model leaves sys.cpu out; platform.machine() is this host's."""
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cpuinfo").write_text("processor\t: 0\nfeatures\t: esan3 zarch\n")
    from mlflow_sysmetrics._context import Context

    assert "sys.cpu" not in cpu.collect_linux(Context(Root(str(tmp_path)), 1e12))


def test_smt_off_cores_available_are_the_online_ones(replay) -> None:  # type: ignore[no-untyped-def]
    """Cpus_allowed_list 0-31 with 16 CPUs online: sched_getaffinity would give 16."""
    replay("cpu-smt-off")
    tags = collect()
    assert (tags["sys.cpu_cores"], tags["sys.cpu_available"]) == documented(
        "cpu-smt-off", "sys.cpu_cores", "sys.cpu_available"
    )


def test_cpu_list_counts() -> None:
    """Kernel CPU lists, and malformed ones."""
    assert cpu.parse_cpu_list("0-3,8,10-11\n") == 7
    assert cpu.parse_cpu_list("0") == 1
    assert cpu.parse_cpu_list("3-1") is None
    assert cpu.parse_cpu_list("a-b") is None
