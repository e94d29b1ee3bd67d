"""macOS, replayed from recorded sysctl and system_profiler outputs on PATH.

This machine runs Linux, so the macOS functions are called directly against recordings
of what the commands print on a Mac.
"""

from __future__ import annotations

import time
from pathlib import Path

from mlflow_sysmetrics._context import Context
from mlflow_sysmetrics._files import Root
from mlflow_sysmetrics.collectors import for_platform, macos
from mlflow_sysmetrics.collectors.accelerators import apple as apple_gpus
from mlflow_sysmetrics.collectors.accelerators.device import gpu_tags
from tests.conftest import FakeCommands

M2_MAX_SYSCTL = "machdep.cpu.brand_string: Apple M2 Max\nhw.memsize: 34359738368\n"
INTEL_SYSCTL = "machdep.cpu.brand_string: Intel(R) Core(TM) i9-9880H CPU @ 2.30GHz\nhw.memsize: 17179869184\n"
INTEL_PROFILER = """{
  "SPDisplaysDataType" : [
    {"_name" : "Intel UHD Graphics 630", "spdisplays_vram" : "1536 MB",
     "spdisplays_vendor" : "Intel", "sppci_model" : "Intel UHD Graphics 630"},
    {"_name" : "AMD Radeon Pro 5500M", "spdisplays_vram" : "4 GB",
     "spdisplays_vendor" : "sppci_vendor_amd", "sppci_model" : "AMD Radeon Pro 5500M"}
  ]
}"""


def _context() -> Context:
    return Context(Root("/"), time.monotonic() + 5)


def _record(tmp_path: Path, fake_commands: FakeCommands, sysctl: str, profiler: str | None = None) -> None:
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    (recordings / f"sysctl{''.join(macos.SYSCTL_NAMES)}.txt").write_text(sysctl)
    if profiler is not None:
        (recordings / "system_profilerSPDisplaysDataType-json.txt").write_text(profiler)
    fake_commands(recordings=recordings)


def test_apple_silicon_chip_is_cpu_and_gpu(tmp_path: Path, fake_commands: FakeCommands) -> None:
    """One sysctl call names the chip for both, with unified memory as the GPU's."""
    _record(tmp_path, fake_commands, M2_MAX_SYSCTL)
    ctx = _context()
    cpu = macos.collect_cpu(ctx)
    inventory = apple_gpus.inventory(ctx)
    assert cpu["sys.cpu"] == "Apple M2 Max"
    assert inventory is not None
    tags = gpu_tags(inventory.devices, [inventory])
    assert (tags["sys.gpu"], tags["sys.gpu_count"], tags["sys.gpu_memory_gb"]) == (
        "Apple M2 Max",
        "1",
        "34.36",
    )
    assert inventory.devices[0].unified_memory


def test_intel_mac_asks_system_profiler(tmp_path: Path, fake_commands: FakeCommands) -> None:
    """Only an Intel Mac falls back to system_profiler, whose JSON lists the GPUs."""
    _record(tmp_path, fake_commands, INTEL_SYSCTL, INTEL_PROFILER)
    ctx = _context()
    inventory = apple_gpus.inventory(ctx)
    assert inventory is not None
    tags = gpu_tags(inventory.devices, [inventory])
    assert tags["sys.gpu"] == "1x Intel UHD Graphics 630, 1x AMD Radeon Pro 5500M"
    assert tags["sys.gpu_memory_gb"] == "1.61, 4.29"
    assert macos.collect_cpu(ctx)["sys.cpu"] == "Intel(R) Core(TM) i9-9880H CPU @ 2.30GHz"


def test_sysctl_runs_once_per_process(tmp_path: Path, fake_commands: FakeCommands) -> None:
    """The CPU and GPU collectors share one sysctl answer."""
    counter = tmp_path / "calls"
    fake_commands(scripts={"sysctl": f"echo x >> {counter}\nprintf '{M2_MAX_SYSCTL}'"})
    ctx = _context()
    macos.collect_cpu(ctx)
    apple_gpus.inventory(ctx)
    assert counter.read_text().count("x") == 1


def test_macos_collectors_read_no_linux_files(tmp_path: Path, fake_commands: FakeCommands) -> None:
    """On macOS the CPU comes from sysctl, whatever a Linux file at the root says; no Linux-only tags."""
    (tmp_path / "root" / "proc").mkdir(parents=True)
    (tmp_path / "root" / "proc" / "cpuinfo").write_text("processor\t: 0\nmodel name\t: A LINUX FILE\n")
    _record(tmp_path, fake_commands, M2_MAX_SYSCTL)
    table = {c.name: c for c in for_platform("macos")}
    ctx = Context(Root(str(tmp_path / "root")), time.monotonic() + 5)
    assert table["cpu"].function(ctx)["sys.cpu"] == "Apple M2 Max"
    keys = {key for c in table.values() for key in c.keys}
    assert not keys & {"sys.container", "sys.cloud"}
