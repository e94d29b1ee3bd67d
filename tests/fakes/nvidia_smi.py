"""A stand-in for ``nvidia-smi``, answering from a description of the machine's GPUs.

A recording named after one ``--query-gpu`` string replays that one string only: a change
of the fields asked would hide behind "no recording". This program answers whatever fields
it is asked, as ``nvidia-smi`` prints them, from a JSON description (the first argument;
the rest are ``nvidia-smi``'s):

    {"driver_version": "550.90.07", "cuda_version": "12.4",
     "unknown_fields": ["compute_cap"],      # fields an older driver refuses
     "version_flag": true,                   # whether `--version` exists (R5xx on)
     "gpus": [{"name": ..., "uuid": ..., "pci.bus_id": ..., "memory.total": "81559 MiB",
               "power.limit": "700.00 W", "enforced.power.limit": "700.00 W",
               "pcie.link.gen.max": "5", "pcie.link.width.current": "16",
               "mig": [{"profile": "3g.20gb", "uuid": "MIG-..."}]}]}

Values are written as ``nvidia-smi --format=csv`` prints them (``nvidia-smi --help-query-gpu``:
units in the header in brackets, ``[N/A]`` where a field does not apply); ``index`` and
``driver_version`` come from the GPU's place and the driver. What it prints for an unknown
field, ``-L`` and the status table's header follow the real program (see the fixtures'
READMEs for the documents).
"""

from __future__ import annotations

import json
import sys

#: Fields ``nvidia-smi --help-query-gpu`` documents that the stand-in knows, with the unit
#: its CSV header names in brackets (empty: no unit).
FIELDS = {
    "index": "",
    "name": "",
    "uuid": "",
    "serial": "",
    "driver_version": "",
    "pci.bus_id": "",
    "memory.total": "MiB",
    "memory.used": "MiB",
    "memory.free": "MiB",
    "compute_cap": "",
    "mig.mode.current": "",
    "mig.mode.pending": "",
    "power.limit": "W",
    "enforced.power.limit": "W",
    "power.default_limit": "W",
    "power.draw": "W",
    "pcie.link.gen.current": "",
    "pcie.link.gen.max": "",
    "pcie.link.gen.gpumax": "",
    "pcie.link.gen.hostmax": "",
    "pcie.link.width.current": "",
    "pcie.link.width.max": "",
    "ecc.mode.current": "",
    "ecc.errors.uncorrected.volatile.total": "",
    "clocks_throttle_reasons.active": "",
}


def _fail(message: str, status: int = 2) -> None:
    print(message, file=sys.stderr)
    sys.exit(status)


def _query(machine: dict, fields: str, form: str) -> None:
    names = [f.strip() for f in fields.split(",") if f.strip()]
    for name in names:
        if name not in FIELDS or name in machine.get("unknown_fields", ()):
            _fail(f'Field "{name}" is not a valid field to query.')
    options = set(form.split(","))
    if "csv" not in options:
        _fail("Only CSV format is supported by this stand-in.")
    units = "nounits" not in options
    rows = []
    if "noheader" not in options:
        rows.append(", ".join(f"{n} [{FIELDS[n]}]" if FIELDS[n] and units else n for n in names))
    for index, gpu in enumerate(machine["gpus"]):
        values = {"index": str(index), "driver_version": machine["driver_version"], **gpu}
        cells = []
        for name in names:
            value = str(values.get(name, "[N/A]"))
            if not units and FIELDS[name] and value.endswith(" " + FIELDS[name]):
                value = value[: -len(FIELDS[name]) - 1]
            cells.append(value)
        rows.append(", ".join(cells))
    print("\n".join(rows))


def _list(machine: dict) -> None:
    for index, gpu in enumerate(machine["gpus"]):
        print(f"GPU {index}: {gpu['name']} (UUID: {gpu['uuid']})")
        for slot, instance in enumerate(gpu.get("mig", [])):
            print(f"  MIG {instance['profile']:<10} Device {slot:>2}: (UUID: {instance['uuid']})")


def _status(machine: dict) -> None:
    driver, cuda = machine["driver_version"], machine.get("cuda_version", "N/A")
    line = f"| NVIDIA-SMI {driver:<22} Driver Version: {driver:<14} CUDA Version: {cuda:<9}|"
    print("+" + "-" * (len(line) - 2) + "+")
    print(line)
    print("+" + "-" * (len(line) - 2) + "+")


def main(argv: list[str]) -> None:
    with open(argv[0], encoding="utf-8") as handle:
        machine = json.load(handle)
    args = argv[1:]
    if not args:
        _status(machine)
    elif args == ["-L"]:
        _list(machine)
    elif args == ["--version"]:
        if not machine.get("version_flag", True):
            _fail("Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.")
        driver = machine["driver_version"]
        print(f"NVIDIA-SMI version  : {driver}")
        print(f"NVML version        : {driver.rsplit('.', 1)[0]}")
        print(f"DRIVER version      : {driver}")
        print(f"CUDA Version        : {machine.get('cuda_version', 'N/A')}")
    elif len(args) == 2 and args[0].startswith("--query-gpu=") and args[1].startswith("--format="):
        _query(machine, args[0].removeprefix("--query-gpu="), args[1].removeprefix("--format="))
    else:
        _fail(f"this stand-in does not answer: nvidia-smi {' '.join(args)}")


if __name__ == "__main__":
    main(sys.argv[1:])
