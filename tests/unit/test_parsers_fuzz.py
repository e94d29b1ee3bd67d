"""Every parser of outside text, under hypothesis: never raises, never a non-string value."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mlflow_sysmetrics.collectors import (
    _cgroup,
    cloud,
    cpu,
    distributed,
    macos,
    memory,
    system,
    windows_registry,
)
from mlflow_sysmetrics.collectors.accelerators import amd, visibility
from mlflow_sysmetrics.collectors.accelerators import apple as apple_gpus
from mlflow_sysmetrics.collectors.accelerators import windows as display_adapters
from mlflow_sysmetrics.collectors.accelerators.device import gpu_tags
from mlflow_sysmetrics.collectors.accelerators.nvidia import fallback as nvidia_fallback

# Text shaped like the files: key/value lines, separators, numbers, stray bytes.
line = st.one_of(
    st.text(max_size=60),
    st.builds(
        lambda k, v: f"{k}\t: {v}",
        st.sampled_from(
            [
                "model name",
                "CPU implementer",
                "CPU part",
                "processor",
                "cpu",
                "uarch",
                "physical id",
                "core id",
            ]
        ),
        st.text(max_size=20),
    ),
    st.builds(
        lambda k, v: f"{k}={v}",
        st.sampled_from(["PRETTY_NAME", "NAME", "VERSION", "VERSION_ID"]),
        st.text(max_size=30),
    ),
    st.builds(lambda a, b: f"{a}:{b}:/{b}", st.integers(-3, 20), st.text(max_size=15)),
)
blob = st.lists(line, max_size=30).map("\n".join)


def _strings(mapping: dict[str, Any]) -> bool:
    return all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items())


@settings(max_examples=300, deadline=None)
@given(blob)
def test_text_parsers_never_raise(text: str) -> None:
    """cpuinfo, os-release, cgroup, mountinfo, meminfo, driver files, sysctl, CSV and -L output."""
    model = cpu.model_from_cpuinfo(text)
    assert model is None or isinstance(model, str)
    assert cpu.logical_from_cpuinfo(text) is None or cpu.logical_from_cpuinfo(text) >= 1  # type: ignore[operator]
    cpu.physical_from_cpuinfo(text)
    cpu.parse_cpu_list(text)
    assert _strings(system.parse_os_release(text))
    name = system.os_name_from_release(system.parse_os_release(text))
    assert name is None or isinstance(name, str)
    _cgroup.parse_proc_cgroup(text)
    _cgroup.parse_mountinfo(text)
    memory.meminfo_total(text)
    assert _strings(nvidia_fallback.parse_information(text))
    nvidia_fallback.parse_driver_version(text)
    nvidia_fallback.parse_cuda_version(text)
    devices, _driver = nvidia_fallback.parse_query_csv(text)
    assert all(isinstance(d.name, str) for d in devices)
    assert _strings(gpu_tags(devices, []))
    nvidia_fallback.parse_list(text)
    assert _strings(macos.parse_sysctl(text))
    assert _strings(cloud.classify({"sys_vendor": text, "product_name": text}))
    seen = visibility.cuda(devices, text, None)
    assert len(seen.devices) <= len(devices)
    assert len(visibility.rocm(devices, text, text)) <= len(devices)
    assert all(isinstance(i, (int, str)) for i in visibility.parse_cuda(text))


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
        max_leaves=12,
    )
)
def test_json_parsers_never_raise_beyond_value_error(data: Any) -> None:
    """rocm-smi, system_profiler and PowerShell JSON of any shape: devices or a ValueError."""
    text = json.dumps(data)
    for parse in (amd.parse_rocm_smi, apple_gpus.parse_system_profiler, display_adapters.parse_cim):
        try:
            result = parse(text)
        except ValueError:
            continue
        devices = result[0] if isinstance(result, tuple) else result
        assert _strings(gpu_tags(devices, []))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(distributed.ALL_VARS), st.text(max_size=6), max_size=10))
def test_launcher_variables_never_raise(env: dict[str, str]) -> None:
    """Any launcher variables, garbage included, give whole numbers or nothing."""
    info = distributed.read(env)
    for value in (info.rank, info.local_rank, info.world_size, info.node_rank, info.nodes):
        assert value is None or (isinstance(value, int) and value >= 0)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "DriverDesc",
                "MatchingDeviceId",
                "DriverVersion",
                "HardwareInformation.qwMemorySize",
                "HardwareInformation.MemorySize",
                "ProcessorNameString",
            ]
        ),
        st.one_of(st.text(max_size=30), st.integers(-5, 2**40), st.binary(max_size=9)),
    ),
    st.text(max_size=20),
)
def test_registry_values_never_raise(values: dict[str, Any], version: str) -> None:
    """Registry values of any type in any field: adapters, CPU name and driver numbers."""

    class Registry:
        def values(self, path: str) -> dict[str, Any]:
            return values

        def subkeys(self, path: str) -> list[str]:
            return ["0000", "Properties"] if path == display_adapters.DISPLAY_CLASS_KEY else []

    devices, drivers = display_adapters.adapters(Registry())
    assert _strings(gpu_tags(devices, []))
    assert _strings(drivers)
    model = windows_registry.cpu_model(Registry())
    assert model is None or isinstance(model, str)
    driver = display_adapters.nvidia_driver_from_windows(version)
    assert driver is None or isinstance(driver, str)
    assert _strings(windows_registry.dmi(Registry()))
