"""Windows' registry: how it is read, and the CPU model and firmware facts in it (no subprocess).

The registry is read through :class:`Registry`, whose real form wraps :mod:`winreg`; tests
replay recorded registry values through the same interface. The display adapters are read
from it too, by :mod:`.accelerators.windows` (the Windows GPU vendor module).
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from .. import tags as T
from .._context import Context
from . import cpu

CPU_KEY = r"HARDWARE\DESCRIPTION\System\CentralProcessor\0"
BIOS_KEY = r"HARDWARE\DESCRIPTION\System\BIOS"


class Registry(Protocol):
    """Read access to ``HKEY_LOCAL_MACHINE``."""

    def values(self, path: str) -> dict[str, Any]:
        """Values of the key at ``path`` (empty when it does not exist)."""
        ...

    def subkeys(self, path: str) -> list[str]:
        """Names of the subkeys of ``path`` (empty when it does not exist)."""
        ...


class WinRegistry:  # pragma: no cover - needs Windows
    """The real registry, through :mod:`winreg`."""

    def values(self, path: str) -> dict[str, Any]:
        """Values of the key at ``path`` (empty when it does not exist)."""
        winreg: Any = importlib.import_module("winreg")

        found: dict[str, Any] = {}
        try:
            with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, path) as key:
                index = 0
                while True:
                    try:
                        name, value, _ = winreg.EnumValue(key, index)
                    except OSError:
                        break
                    found[name] = value
                    index += 1
        except OSError:
            pass
        return found

    def subkeys(self, path: str) -> list[str]:
        """Names of the subkeys of ``path`` (empty when it does not exist)."""
        winreg: Any = importlib.import_module("winreg")

        names: list[str] = []
        try:
            with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, path) as key:
                index = 0
                while True:
                    try:
                        names.append(winreg.EnumKey(key, index))
                    except OSError:
                        break
                    index += 1
        except OSError:
            pass
        return names


def cpu_model(registry: Registry) -> str | None:
    """``ProcessorNameString`` of the first processor."""
    name = registry.values(CPU_KEY).get("ProcessorNameString")
    return " ".join(name.split()) if isinstance(name, str) and name.strip() else None


def dmi(registry: Registry) -> dict[str, str]:
    """Firmware strings under their Linux DMI names (``sys_vendor``, ``product_name``, ...)."""
    values = registry.values(BIOS_KEY)
    names = {
        "SystemManufacturer": "sys_vendor",
        "SystemProductName": "product_name",
        "SystemVersion": "product_version",
        "BIOSVendor": "bios_vendor",
        "BIOSVersion": "bios_version",
        "BaseBoardManufacturer": "board_vendor",
    }
    return {dmi_name: str(values[key]).strip() for key, dmi_name in names.items() if values.get(key)}


def collect_cpu(ctx: Context, registry: Registry | None = None) -> dict[str, str]:
    """CPU tags on Windows: the registry's processor name, counts from ``os`` and psutil."""
    found = cpu.collect_counts(ctx)
    model = cpu_model(registry or WinRegistry())
    if model:
        found[T.CPU] = model
    return found
