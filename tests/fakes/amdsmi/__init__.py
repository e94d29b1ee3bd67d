"""A stand-in for AMD's ``amdsmi`` Python package, for tests on machines without an AMD GPU.

Put the folder above this one on ``PYTHONPATH`` (a fresh interpreter: ``tests/fresh.py``)
and ``import amdsmi`` finds it. It answers the calls the package makes from a plain-text
description of a machine named by ``FAKE_AMDSMI_SPEC``, one fact per line (``#`` starts a
comment):

    gpu <bdf>                                 a GPU, one processor handle, in amdsmi's order
    <function> <bdf> <field> <v1> [<v2> ...]  a field of what <function> answers for that GPU:
                                              the first call answers v1, the next v2, and so
                                              on, the last repeating
    error <function> <bdf> <status>           that call raises AmdSmiLibraryException(status)
    lacks <function>                          this amdsmi has no such function (an older one)

Values are integers (decimal or ``0x`` hex), decimals, or ``N/A``. The description is read
again at every call, so that a test can move a counter by rewriting it (atomically:
``os.replace``). What each function answers follows amdsmi's Python API reference
(``py-interface/README.md``) and ``py-interface/amdsmi_interface.py``:

- ``amdsmi_get_energy_count``: ``energy_accumulator`` and, as newer amdsmi does, the same
  value as ``power`` (an older amdsmi gives ``power`` alone: describe only that field);
  ``counter_resolution`` a C ``float`` (15.3 unless described: ``rocm_smi.cc``
  ``kEnergyCounterResolution``, so 15.300000190734863); ``timestamp`` in ns;
- ``amdsmi_get_gpu_metrics_info``: every documented field, ``"N/A"`` where not described
  (amdsmi's ``_validate_if_max_uint`` for a field the GPU's gpu_metrics table lacks);
- ``amdsmi_get_power_cap_info`` (microwatts), ``amdsmi_get_gpu_total_ecc_count``,
  ``amdsmi_get_gpu_asic_info``, ``amdsmi_get_gpu_vram_info``,
  ``amdsmi_get_gpu_driver_info``: the described fields;
- ``amdsmi_get_gpu_pci_replay_counter``: a number (describe it as the field ``value``).

A function with no line for a GPU raises ``AMDSMI_STATUS_NOT_SUPPORTED``. ``amdsmi_init``
opens one session for the process and does nothing while one is open;
``amdsmi_shut_down`` closes it for every caller and makes its handles stale
(``amd_smi.cc``: one ``initialized_lib`` flag, no count of users); a call before
``amdsmi_init`` raises ``AMDSMI_STATUS_NOT_INIT``.
"""

from __future__ import annotations

import ctypes
import os
import time
from enum import IntEnum
from typing import Any

AMDSMI_STATUS_INVAL = 1
AMDSMI_STATUS_NOT_SUPPORTED = 2
AMDSMI_STATUS_NOT_INIT = 32
#: ``amdsmi_exception.py``'s texts for the statuses the stand-in raises.
_STATUS_TEXT = {
    AMDSMI_STATUS_INVAL: "AMDSMI_STATUS_INVAL - Invalid parameters",
    AMDSMI_STATUS_NOT_SUPPORTED: "AMDSMI_STATUS_NOT_SUPPORTED - Feature not supported",
    10: "AMDSMI_STATUS_NO_PERM - Permission Denied",
    31: "AMDSMI_STATUS_NOT_FOUND - Device Not found",
    AMDSMI_STATUS_NOT_INIT: "AMDSMI_STATUS_NOT_INIT - Device not initialized",
}
#: The fields ``amdsmi_get_gpu_metrics_info`` answers (amdsmi's Python API reference).
METRICS_FIELDS = (
    "temperature_edge",
    "temperature_hotspot",
    "temperature_mem",
    "temperature_vrgfx",
    "temperature_vrsoc",
    "temperature_vrmem",
    "average_gfx_activity",
    "average_umc_activity",
    "average_mm_activity",
    "average_socket_power",
    "energy_accumulator",
    "system_clock_counter",
    "average_gfxclk_frequency",
    "average_socclk_frequency",
    "average_uclk_frequency",
    "current_gfxclk",
    "current_socclk",
    "current_uclk",
    "throttle_status",
    "current_fan_speed",
    "pcie_link_width",
    "pcie_link_speed",
    "gfx_activity_acc",
    "mem_activity_acc",
    "firmware_timestamp",
    "indep_throttle_status",
    "current_socket_power",
    "pcie_replay_count_acc",
    "accumulation_counter",
    "prochot_residency_acc",
    "ppt_residency_acc",
    "socket_thm_residency_acc",
    "vr_thm_residency_acc",
    "hbm_thm_residency_acc",
)
#: The functions answered with a dictionary of the described fields, and with one number.
_DICTS = frozenset(
    {
        "amdsmi_get_energy_count",
        "amdsmi_get_gpu_metrics_info",
        "amdsmi_get_power_cap_info",
        "amdsmi_get_gpu_total_ecc_count",
        "amdsmi_get_gpu_asic_info",
        "amdsmi_get_gpu_vram_info",
        "amdsmi_get_gpu_driver_info",
    }
)
_NUMBERS = frozenset({"amdsmi_get_gpu_pci_replay_counter"})


class AmdSmiInitFlags(IntEnum):
    INIT_ALL_PROCESSORS = 0xFFFFFFFF
    INIT_AMD_GPUS = 2


class AmdSmiException(Exception):
    """Base smi exception class (as amdsmi's)."""


class AmdSmiLibraryException(AmdSmiException):
    def __init__(self, err_code: int) -> None:
        super().__init__(err_code)
        self.err_code = abs(err_code)
        self.err_info = _STATUS_TEXT.get(
            self.err_code, "AMDSMI_STATUS_UNKNOWN_ERROR - An unknown error occurred"
        )

    def __str__(self) -> str:
        return f"Error code:\n\t{self.err_code} | {self.err_info}"

    def get_error_code(self) -> int:
        return self.err_code

    def get_error_info(self) -> str:
        return self.err_info


class AmdSmiParameterException(AmdSmiException):
    def __init__(self, received: object, expected: type) -> None:
        super().__init__(None)
        self.err_msg = f"Invalid parameter:\nActual type: {type(received)}\nExpected type: {expected}"

    def __str__(self) -> str:
        return self.err_msg


class amdsmi_processor_handle:  # amdsmi_wrapper's name
    __slots__ = ("bdf", "session")

    def __init__(self, bdf: str, session: int) -> None:
        self.bdf = bdf
        self.session = session


_session = 0  # the open session's number; 0: none open
_sessions = 0
_calls: dict[tuple[str, str], int] = {}


def _value(text: str) -> Any:
    if text == "N/A":
        return text
    try:
        return int(text, 0)
    except ValueError:
        return float(text)


class _Machine:
    def __init__(self) -> None:
        self.gpus: list[str] = []
        self.fields: dict[tuple[str, str], dict[str, list[Any]]] = {}
        self.errors: dict[tuple[str, str], int] = {}
        self.lacks: set[str] = set()


def _machine() -> _Machine:
    machine = _Machine()
    with open(os.environ["FAKE_AMDSMI_SPEC"], encoding="utf-8") as spec:
        for raw in spec:
            words = raw.split("#", 1)[0].split()
            if not words:
                continue
            if words[0] == "gpu":
                machine.gpus.append(words[1])
            elif words[0] == "lacks":
                machine.lacks.add(words[1])
            elif words[0] == "error":
                machine.errors[(words[1], words[2])] = int(words[3])
            else:
                function, bdf, field, *values = words
                machine.fields.setdefault((function, bdf), {})[field] = [_value(v) for v in values]
    return machine


def _check_session(handle: object) -> str:
    if not isinstance(handle, amdsmi_processor_handle):
        raise AmdSmiParameterException(handle, amdsmi_processor_handle)
    if not _session:
        raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_INIT)
    if handle.session != _session:
        raise AmdSmiLibraryException(AMDSMI_STATUS_INVAL)
    return handle.bdf


def amdsmi_init(flag: AmdSmiInitFlags = AmdSmiInitFlags.INIT_AMD_GPUS) -> None:
    global _session, _sessions
    if not isinstance(flag, AmdSmiInitFlags):
        raise AmdSmiParameterException(flag, AmdSmiInitFlags)
    if not _session:
        _sessions += 1
        _session = _sessions


def amdsmi_shut_down() -> None:
    global _session
    _session = 0


def amdsmi_get_processor_handles() -> list[amdsmi_processor_handle]:
    if not _session:
        raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_INIT)
    return [amdsmi_processor_handle(bdf, _session) for bdf in _machine().gpus]


def amdsmi_get_gpu_device_bdf(handle: amdsmi_processor_handle) -> str:
    return _check_session(handle)


def _answer(function: str, handle: amdsmi_processor_handle) -> Any:
    bdf = _check_session(handle)
    machine = _machine()
    if (function, bdf) in machine.errors:
        raise AmdSmiLibraryException(machine.errors[(function, bdf)])
    described = machine.fields.get((function, bdf))
    if described is None:
        raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_SUPPORTED)
    call = _calls[(function, bdf)] = _calls.get((function, bdf), -1) + 1
    fields = {name: values[min(call, len(values) - 1)] for name, values in described.items()}
    if function in _NUMBERS:
        return fields["value"]
    if function == "amdsmi_get_gpu_metrics_info":
        return {name: fields.get(name, "N/A") for name in (*METRICS_FIELDS, *fields)}
    if function == "amdsmi_get_energy_count":
        if "energy_accumulator" in fields:
            fields.setdefault("power", fields["energy_accumulator"])
        fields["counter_resolution"] = ctypes.c_float(fields.get("counter_resolution", 15.3)).value
        fields.setdefault("timestamp", time.monotonic_ns())
    return fields


def __getattr__(name: str) -> Any:
    if (name in _DICTS or name in _NUMBERS) and name not in _machine().lacks:
        return lambda handle: _answer(name, handle)
    raise AttributeError(f"module 'amdsmi' has no attribute {name!r}")
