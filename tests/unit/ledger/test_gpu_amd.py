"""AMD GPUs' counters in the ledger, read through the stand-in amdsmi.

Each test runs a fresh interpreter whose ``import amdsmi`` finds ``tests/fakes/amdsmi``,
answering from a description under ``tests/fixtures/amdsmi`` (their README names the
documents each answer follows). The live inventory reads this machine's PCI bus, where no
AMD GPU is, and counts a vendor's counters only there: so the GPUs are the ones our
inventory finds on the replayed machine the description belongs to (``amd.from_sysfs``
reading its tree), each read through ``amd.counters``, and the meter and its guard are
driven as a span drives them (read, guard, read again, figures); a counter that wraps is
read between its moves as the guard reads it, at the moments the guard would. Expected
values come from the described counters and their documented units.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FAKES, FIXTURES
from tests.fresh import fresh_python

SPAN = """
import json, os, threading, time
from mlflow_sysmetrics._files import Root
from mlflow_sysmetrics.collectors.accelerators import amd
from mlflow_sysmetrics.ledger._meter import Book, Guard
from mlflow_sysmetrics.ledger.gpu import Gpu, GpuMeter

inventory = amd.from_sysfs(Root(os.environ["MLFLOW_SYSMETRICS_ROOT"]))
meter = GpuMeter([Gpu("amd", d.name, d, amd.counters) for d in inventory.devices])
lock = threading.Lock()
started = time.monotonic()
with lock:
    first = meter.read()
guard = Guard([meter], lock)
guard.start()
time.sleep(float(os.environ.get("LAST_PAUSE", "0.5")))
guard.stop()
with lock:
    last = meter.read()
seconds = time.monotonic() - started
book = Book()
meter.figures(first, last, seconds, book)
print(json.dumps([book.metrics, book.text(), seconds, guard.period]))
"""
#: The meter read between moves of the described counters, at the moments the guard would
#: read it (``STEP`` s apart by the meter's clock, 0.5 by default): what it counted, and how
#: soon a counter wraps.
GUARDED = """
import json, os
from mlflow_sysmetrics._files import Root
from mlflow_sysmetrics.collectors.accelerators import amd
from mlflow_sysmetrics.ledger._meter import Book
from mlflow_sysmetrics.ledger.gpu import Gpu, GpuMeter

inventory = amd.from_sysfs(Root(os.environ["MLFLOW_SYSMETRICS_ROOT"]))
meter = GpuMeter([Gpu("amd", d.name, d, amd.counters) for d in inventory.devices])
first = last = meter.read(at=0.0)
spec = os.environ["FAKE_AMDSMI_SPEC"]
moves = json.loads(os.environ["MOVES"])
apart = float(os.environ.get("STEP", "0.5"))
for step, text in enumerate(moves, 1):
    with open(spec + ".new", "w") as out:
        out.write(text)
    os.replace(spec + ".new", spec)
    last = meter.read(at=apart * step)
book = Book()
meter.figures(first, last, apart * len(moves), book)
print(json.dumps([book.metrics, book.text(), meter.wrap_seconds]))
"""


class Span:
    """What a span over a replayed AMD machine counted: metrics, ``sys.ledger``, its seconds."""

    def __init__(self, value: Any) -> None:
        self.metrics: dict[str, float] = value[0]
        self.text: str = value[1]
        self.seconds: float = value[2]
        self.guard_period: float = value[3]


def _span(machine: str, spec: str, tmp_path: Path, **env: str) -> Span:
    """A span over ``machine``'s GPUs whose amdsmi answers ``spec``."""
    (tmp_path / "amdsmi.txt").write_text(spec)
    ran = fresh_python(
        SPAN,
        env={
            "PYTHONPATH": str(FAKES),
            "FAKE_AMDSMI_SPEC": str(tmp_path / "amdsmi.txt"),
            "MLFLOW_SYSMETRICS_ROOT": str(FIXTURES / machine),
            **env,
        },
    )
    return Span(ran.value)


def _described(name: str) -> str:
    return (FIXTURES / "amdsmi" / name).read_text()


def test_mi300x_energy_power_busy_errors_and_replays(tmp_path: Path) -> None:
    """Two MI300X with 64-bit counters: 300 J + 200 J in 2^-16 J units, busy 62 % and 18 %."""
    span = _span("amd-mi300x", _described("mi300x.txt"), tmp_path)
    assert "gpu energy" not in span.text
    assert span.metrics["sys.gpu_energy_wh"] == pytest.approx(500 / 3600, abs=1e-6)  # 15.3 uJ: 0.139264
    assert span.metrics["sys.gpu_power_avg_w"] == pytest.approx(500 / span.seconds / 2, rel=1e-3)
    assert span.metrics["sys.gpu_busy_pct"] == pytest.approx((62 + 18) / 2)
    assert (span.metrics["sys.gpu_ecc_errors"], span.metrics["sys.gpu_pcie_replays"]) == (1, 4)
    assert span.guard_period == 0.1  # no counter here can wrap: the guard has no meter to read
    assert "sys.gpu_throttle_power_pct" not in span.metrics  # amdsmi gives no such counter here


#: A W7900's energy unit cut so that its 32-bit range is 300 J (2^32 counts of 0.0698 uJ).
UNIT_UJ = 300e6 / 2**32


def _guarded(tmp_path: Path, steps: list[int], **env: str) -> tuple[dict[str, float], str, float]:
    """The cut W7900's counter, from half way, advanced ``steps`` counts between readings (:data:`GUARDED`)."""
    base = _described("w7900.txt") + f"amdsmi_get_energy_count 0000:03:00.0 counter_resolution {UNIT_UJ!r}\n"
    value = 2**31
    (tmp_path / "amdsmi.txt").write_text(
        base + f"amdsmi_get_energy_count 0000:03:00.0 energy_accumulator {value}\n"
    )
    moves = []
    for step in steps:
        value = (value + step) % 2**32
        moves.append(base + f"amdsmi_get_energy_count 0000:03:00.0 energy_accumulator {value}\n")
    ran = fresh_python(
        GUARDED,
        env={
            "PYTHONPATH": str(FAKES),
            "FAKE_AMDSMI_SPEC": str(tmp_path / "amdsmi.txt"),
            "MLFLOW_SYSMETRICS_ROOT": str(FIXTURES / "amd-w7900"),
            "MOVES": json.dumps(moves),
            **env,
        },
    )
    metrics, text, wrap_seconds = ran.value
    return metrics, text, wrap_seconds


def test_every_wrap_of_a_32_bit_counter_is_undone(tmp_path: Path) -> None:
    """A W7900 whose 32-bit counter wraps three times in the span is counted whole.

    The counter's unit cut so that its range is 300 J (2^32 counts of 0.0698 uJ), which it
    can cross in about a second at the board's 295 W: the guard reads every half second.
    Read so, the counter advancing 0.45 of its range (135 J, 270 W) each time: seven
    readings, three wraps.
    """
    step = 1_932_735_283  # 0.45 of the range
    metrics, text, wrap_seconds = _guarded(tmp_path, [step] * 7)
    assert "gpu energy" not in text
    joules = 7 * step * ctypes.c_float(UNIT_UJ).value / 1e6  # the unit as amdsmi's C float carries it
    assert metrics["sys.gpu_energy_wh"] == pytest.approx(joules / 3600, rel=1e-4)
    assert wrap_seconds == pytest.approx(300 / 295, rel=1e-3)


def test_readings_further_apart_than_a_wrap_are_not_guessed(tmp_path: Path) -> None:
    """The same W7900 read 2 s apart: its 300 J range can be crossed in 1.02 s, so how often it wrapped is not known."""
    metrics, text, _ = _guarded(tmp_path, [429_496_730], STEP="2")  # 0.1 of the range
    assert "sys.gpu_energy_wh" not in metrics
    assert (
        "gpu energy: AMD GPU [1002:7448]: 2 s passed between two readings, time enough to wrap more than once"
        in text
    )


def test_a_driver_reload_is_not_a_wrap_the_board_could_draw(tmp_path: Path) -> None:
    """A 32-bit counter that starts again from 0: taken for a wrap, 4.5 kJ in seconds is above 295 W."""
    span = _span("amd-w7900", _described("w7900-reload.txt"), tmp_path)
    assert "sys.gpu_energy_wh" not in span.metrics
    assert "sys.gpu_power_avg_w" not in span.metrics
    assert "gpu energy: AMD GPU [1002:7448]: the counter went back: a reset, not a wrap" in span.text
    # a 32-bit counter of 2^-16 J wraps every 65,536 J: at 295 W, read every half of that
    assert span.guard_period == pytest.approx(65536 / 295 / 2)


def test_a_counter_that_stands_still_is_not_zero_watt_hours(tmp_path: Path) -> None:
    """An MI100 whose counter answers the same while it draws 150 W: no energy, and why."""
    span = _span("amd-mi100", _described("mi100-still.txt"), tmp_path)
    assert "sys.gpu_energy_wh" not in span.metrics
    assert "sys.gpu_power_avg_w" not in span.metrics
    assert (
        "gpu energy: AMD Instinct MI100's energy counter did not move during the run while it drew 150 W"
        in span.text
    )
    assert "gpu busy: AMD Instinct MI100: its gpu_metrics table has no accumulated activity" in span.text
    assert "sys.gpu_busy_pct" not in span.metrics


@pytest.mark.parametrize(
    ("machine", "described", "why"),
    [
        # An RX 9070 XT (SMU 14.0.2) answers UINT_MAX: "not available", never 0.
        (
            "amd-rx9070xt",
            "rx9070xt.txt",
            "AMD GPU [1002:7550]: the driver marks its energy counter not available (0xffffffff)",
        ),
        # An MI250's second die reads 0 energy and 0 W (the first counts both): no energy for the pair.
        (
            "amd-mi250",
            "mi250.txt",
            "AMD Instinct MI250X / MI250: its energy counter reads 0 (an MI200's second die",
        ),
    ],
    ids=["uint-max-is-not-available", "a-die-that-counts-no-energy"],
)
def test_an_energy_counter_that_counts_nothing_is_named(
    tmp_path: Path, machine: str, described: str, why: str
) -> None:
    """A counter the driver marks not available, or one that reads 0: no energy figure, and why."""
    span = _span(machine, _described(described), tmp_path)
    assert "sys.gpu_energy_wh" not in span.metrics
    assert f"gpu energy: {why}" in span.text


def test_an_amdsmi_lacking_one_function_costs_its_figure_only(tmp_path: Path) -> None:
    """No ``amdsmi_get_gpu_pci_replay_counter`` (an older amdsmi), and one GPU refusing ECC counts."""
    spec = _described("mi300x.txt") + (
        "lacks amdsmi_get_gpu_pci_replay_counter\nerror amdsmi_get_gpu_total_ecc_count 0000:2f:00.0 2\n"
    )
    span = _span("amd-mi300x", spec, tmp_path)
    assert "sys.gpu_pcie_replays" not in span.metrics
    assert "sys.gpu_ecc_errors" not in span.metrics
    assert (
        "gpu PCIe replays: AMD Instinct MI300X: this amdsmi has no amdsmi_get_gpu_pci_replay_counter"
        in span.text
    )
    assert (
        "gpu uncorrected ECC errors: AMD Instinct MI300X: amdsmi's amdsmi_get_gpu_total_ecc_count failed: "
        "AMDSMI_STATUS_NOT_SUPPORTED - Feature not supported"
    ) in span.text
    assert span.metrics["sys.gpu_energy_wh"] == pytest.approx(500 / 3600, abs=1e-6)
    assert span.metrics["sys.gpu_busy_pct"] == pytest.approx(40)


SESSION = """
import json, os
import amdsmi
from mlflow_sysmetrics._files import Root
from mlflow_sysmetrics.collectors.accelerators import amd

device = amd.from_sysfs(Root(os.environ["MLFLOW_SYSMETRICS_ROOT"])).devices[0]
amdsmi.amdsmi_init()
mine = amdsmi.amdsmi_get_processor_handles()[0]
first = amd.counters(device).energy_mj
still_mine = amdsmi.amdsmi_get_gpu_device_bdf(mine)
amdsmi.amdsmi_shut_down()
after_shutdown = amd.counters(device).energy_mj
print(json.dumps([first, still_mine, after_shutdown]))
"""


def test_the_ledger_never_closes_the_programs_amdsmi_session(tmp_path: Path) -> None:
    """The ledger's readings leave the program's amdsmi session open, and go on after it closes it.

    amdsmi keeps one session per process and does not count its users.
    """
    (tmp_path / "amdsmi.txt").write_text(_described("mi300x.txt"))
    ran = fresh_python(
        SESSION,
        env={
            "PYTHONPATH": str(FAKES),
            "FAKE_AMDSMI_SPEC": str(tmp_path / "amdsmi.txt"),
            "MLFLOW_SYSMETRICS_ROOT": str(FIXTURES / "amd-mi300x"),
        },
    )
    # 6,553,600,000,000 and then 6,553,619,660,800 counts of 2^-16 J, in mJ
    assert ran.value == [100_000_000_000, "0000:11:00.0", 100_000_300_000]


@pytest.mark.skipif(importlib.util.find_spec("amdsmi") is not None, reason="amdsmi is installed here")
def test_without_amdsmi_the_counters_say_what_to_install(tmp_path: Path) -> None:
    """No amdsmi package: each AMD figure is absent, naming the package, and the run goes on."""
    machine = {
        "MLFLOW_SYSMETRICS_ROOT": str(FIXTURES / "amd-mi300x"),
        "FAKE_AMDSMI_SPEC": str(tmp_path / "none"),
    }
    ran = fresh_python(SPAN, env={**machine, "LAST_PAUSE": "0"})  # no stand-in on the path
    span = Span(ran.value)
    assert "sys.gpu_energy_wh" not in span.metrics
    assert (
        "gpu energy: AMD Instinct MI300X: ImportError: AMD GPU counters require the amdsmi package"
        in span.text
    )


def test_a_64_bit_counter_is_known_by_its_device_before_it_passes_2_to_the_32(tmp_path: Path) -> None:
    """An MI300X read soon after its driver loaded (below 2^32 counts): no wrap is assumed, no guard."""
    spec = "".join(
        line
        for line in _described("mi300x.txt").splitlines(keepends=True)
        if "energy_accumulator" not in line
    )
    spec += (
        "amdsmi_get_energy_count 0000:11:00.0 energy_accumulator 65536000 85196800\n"  # 1000 J, then +300 J
        "amdsmi_get_energy_count 0000:2f:00.0 energy_accumulator 131072000 144179200\n"  # 2000 J, then +200 J
    )
    span = _span("amd-mi300x", spec, tmp_path)
    assert span.metrics["sys.gpu_energy_wh"] == pytest.approx(500 / 3600, abs=1e-6)
    assert span.guard_period == 0.1  # the guard's floor: it has no counter to read
