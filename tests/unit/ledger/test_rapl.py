"""CPU energy from replayed powercap trees whose counters the tests move, as the hardware would.

Two machines: a two-socket Xeon (``powercap-rapl``: packages with power limits, DRAM
subzones without) and a two-socket AMD EPYC (``powercap-amd-epyc``: no limits at all).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from mlflow_sysmetrics import ledger
from mlflow_sysmetrics._files import Root
from mlflow_sysmetrics.ledger import rapl
from mlflow_sysmetrics.ledger._meter import Book
from tests.conftest import FIXTURES
from tests.fresh import fresh_python, python_without_read_anything

SPAN = """
import json
from mlflow_sysmetrics import ledger
span = ledger.start()
counted = span.finish()
print(json.dumps([counted.metrics, counted.text]))
"""


def _machine(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "machine"
    shutil.copytree(FIXTURES / name, root, symlinks=True)
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(root))
    return root / "sys/class/powercap"


def _add(zone: Path, microjoules: int, wrap_at: int | None = None) -> None:
    value = int((zone / "energy_uj").read_text()) + microjoules
    (zone / "energy_uj").write_text(f"{value % wrap_at if wrap_at else value}\n")


def test_cpu_energy_of_packages_and_dram(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """1 Wh on each package and DRAM counter is 4 Wh; core (inside a package) and MMIO add nothing."""
    zones = _machine("powercap-rapl", tmp_path, monkeypatch)
    span = ledger.Span()
    for name in ("intel-rapl:0", "intel-rapl:0:1", "intel-rapl:1", "intel-rapl:1:1"):
        _add(zones / name, 3_600_000_000)
    for name in ("intel-rapl:0:0", "intel-rapl-mmio:0"):
        _add(zones / name, 99 * 3_600_000_000)
    assert span.finish().metrics["sys.cpu_energy_wh"] == pytest.approx(4.0)


def test_a_zone_without_a_limit_is_bounded_by_its_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Xeon's DRAM zones state no limit (0): bounded by their package's 324 W, not by a guess.

    At 324 W the DRAM counter (65712999613 uJ) wraps every 202.8 s, the package's
    (262143328850 uJ) every 13.5 min: the quickest, DRAM's, sets how often the guard reads.
    """
    _machine("powercap-rapl", tmp_path, monkeypatch)
    meter = rapl.RaplMeter(Root(os.environ["MLFLOW_SYSMETRICS_ROOT"]))
    watts = {zone.folder.rsplit("/", 1)[-1]: zone.watts for zone in meter.zones}
    assert watts == {"intel-rapl:0": 324, "intel-rapl:0:1": 324, "intel-rapl:1": 324, "intel-rapl:1:1": 324}
    assert meter.wrap_seconds == pytest.approx(65712999613 / 324e6)


def _figures(meter: rapl.RaplMeter, first: object, last: object) -> ledger.Ledger:
    """What ``meter`` counted between two of its readings."""
    book = Book()
    meter.figures(first, last, 1.0, book)
    return ledger.Ledger(book.metrics, book.text())


def test_a_wrapped_counter_is_undone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """package-1's counter passes max_energy_range_uj and starts again from 0: still 1 Wh.

    Read 20 s apart (as the meter's clock says): 3,600 J in 20 s is 180 W, within the
    package's 324 W, so the drop is a wrap.
    """
    zones = _machine("powercap-rapl", tmp_path, monkeypatch)
    (zones / "intel-rapl:1/energy_uj").write_text("262143000000\n")
    meter = rapl.RaplMeter(Root(os.environ["MLFLOW_SYSMETRICS_ROOT"]))
    first = meter.read(at=0.0)
    _add(zones / "intel-rapl:1", 3_600_000_000, wrap_at=262143328850)
    assert int((zones / "intel-rapl:1/energy_uj").read_text()) < 262143000000
    assert _figures(meter, first, meter.read(at=20.0)).metrics["sys.cpu_energy_wh"] == pytest.approx(1.0)


def test_a_counter_that_starts_again_is_a_reset_not_a_wrap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """package-1's counter drops from 100 kJ to 1 kJ during a short span (a RAPL reset).

    Taken for a wrap it would have counted 163 kJ, which no 324 W package draws in the time
    between two readings: the energy is absent, and why.
    """
    zones = _machine("powercap-rapl", tmp_path, monkeypatch)
    (zones / "intel-rapl:1/energy_uj").write_text("100000000000\n")
    span = ledger.Span()
    (zones / "intel-rapl:1/energy_uj").write_text("1000000000\n")
    counted = span.finish()
    assert "sys.cpu_energy_wh" not in counted.metrics
    assert "cpu energy: intel-rapl:1: the counter went back: a reset, not a wrap" in counted.text


def test_a_zero_reading_is_a_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """EPYC socket 1's counter reads 0 at the start: counted like any other (0.5 Wh on each socket)."""
    zones = _machine("powercap-amd-epyc", tmp_path, monkeypatch)
    span = ledger.Span()
    _add(zones / "intel-rapl:0", 1_800_000_000, wrap_at=65535999984)
    _add(zones / "intel-rapl:1", 1_800_000_000, wrap_at=65535999984)
    ledger_ = span.finish()
    assert ledger_.metrics["sys.cpu_energy_wh"] == pytest.approx(1.0)
    assert "cpu energy" not in ledger_.text


def test_zones_that_state_no_limit_anywhere_are_read_every_33_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An EPYC states no limit: bounded by 1 kW a socket, its 65.5 kJ counter is read at half 65.5 s."""
    _machine("powercap-amd-epyc", tmp_path, monkeypatch)
    meter = rapl.RaplMeter(Root(os.environ["MLFLOW_SYSMETRICS_ROOT"]))
    assert {zone.watts for zone in meter.zones} == {1000}
    assert meter.wrap_seconds == pytest.approx(65.535999984)
    span = ledger.Span()
    guard = span._guard.thread
    try:
        assert guard is not None
        assert guard.is_alive()
        assert span._guard.period == pytest.approx(65.535999984 / 2)
    finally:
        span.finish()
    assert not guard.is_alive()  # finish() stopped it, and waited for it


def _cut_range(zones: Path, modulus: int) -> None:
    """The EPYC tree's counters' range cut to ``modulus`` uJ, each counter half way."""
    for zone in ("intel-rapl:0", "intel-rapl:1"):
        (zones / zone / "max_energy_range_uj").write_text(f"{modulus}\n")
        (zones / zone / "energy_uj").write_text(f"{modulus // 2}\n")


def test_every_wrap_of_a_long_run_is_undone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A counter that wraps three times during the span is counted whole: it was read between.

    The EPYC tree with its counters' range cut to 1 kJ (wrapping every second at the 1 kW
    bound, so the guard reads every 0.5 s). Read as the guard reads, 0.5 s apart by the
    meter's clock, the counter advancing 450 J (900 W) each time: 3,150 J over 3.5 s.
    """
    zones = _machine("powercap-amd-epyc", tmp_path, monkeypatch)
    _cut_range(zones, 1_000_000_000)
    meter = rapl.RaplMeter(Root(os.environ["MLFLOW_SYSMETRICS_ROOT"]))
    assert meter.wrap_seconds == pytest.approx(1.0)
    first = last = meter.read(at=0.0)
    for step in range(1, 8):
        _add(zones / "intel-rapl:0", 450_000_000, wrap_at=1_000_000_000)
        last = meter.read(at=0.5 * step)
    counted = _figures(meter, first, last)
    assert "cpu energy" not in counted.text
    assert counted.metrics["sys.cpu_energy_wh"] == pytest.approx(7 * 450 / 3600)


def test_the_spans_guard_reads_the_counters_between_its_readings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The span's guard thread reads the RAPL zones on its own (every 0.5 s here), and ends with the span."""
    zones = _machine("powercap-amd-epyc", tmp_path, monkeypatch)
    _cut_range(zones, 1_000_000_000)
    span = ledger.Span()
    meter = next(m for m in span.meters if isinstance(m, rapl.RaplMeter))
    started = {folder: counter.at for folder, counter in meter._counters.items()}

    def read_since() -> bool:
        return all(counter.at != started[folder] for folder, counter in meter._counters.items())

    deadline = time.monotonic() + 60  # however loaded the machine, the guard reads within a minute
    while time.monotonic() < deadline and not read_since():
        time.sleep(0.05)
    guarded = read_since()  # before the span's own last reading
    guard = span._guard.thread
    span.finish()
    assert guarded
    assert guard is not None
    assert not guard.is_alive()


def test_no_guard_where_no_counter_can_wrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No readable RAPL zone (a VM): no thread is started for the span."""
    monkeypatch.setenv("MLFLOW_SYSMETRICS_ROOT", str(FIXTURES / "cgroup-v2-memory-peak"))
    span = ledger.Span()
    assert span._guard.thread is None
    assert "cpu energy: no RAPL package zone in /sys/class/powercap" in span.finish().text


def test_readings_too_far_apart_are_not_guessed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A zone that wraps within microseconds at its bound: two readings cannot tell how often it did."""
    zones = _machine("powercap-rapl", tmp_path, monkeypatch)
    (zones / "intel-rapl:0/max_energy_range_uj").write_text("1000\n")
    span = ledger.Span()
    time.sleep(0.01)
    counted = span.finish()
    assert "sys.cpu_energy_wh" not in counted.metrics
    assert "cpu energy: intel-rapl:0:" in counted.text
    assert "time enough to wrap more than once" in counted.text


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="powercap is Linux's")
def test_root_only_energy_counters_are_named(tmp_path: Path) -> None:
    """energy_uj readable by root only (the kernel's mode 0400): absent, and why.

    The process must be refused the read. The test's files are its own, so they are made
    unreadable to their owner too (mode 000); as root, the process also loses root's right
    to read any file (setpriv drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH), as a job
    that is not root has it.
    """
    root = tmp_path / "machine"
    shutil.copytree(FIXTURES / "powercap-rapl", root, symlinks=True)
    for counter in root.glob("sys/class/powercap/*/energy_uj"):
        counter.chmod(0)
    python = python_without_read_anything(tmp_path)
    metrics, text = fresh_python(SPAN, python=python, env={"MLFLOW_SYSMETRICS_ROOT": str(root)}).value
    assert "sys.cpu_energy_wh" not in metrics
    assert "cpu energy: powercap energy_uj is readable by root only" in text
    assert "sys.gpu_hours" in metrics  # one source failing costs its own figures only
