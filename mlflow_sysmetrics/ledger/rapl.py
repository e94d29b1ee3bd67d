"""CPU energy: the kernel's powercap RAPL zones (``/sys/class/powercap/intel-rapl:*``).

The zones that add up to the CPU's energy are each package and its DRAM where that is a
domain of its own (``core`` and ``uncore`` are parts of a package; ``psys``, the platform,
holds the packages; ``intel-rapl-mmio`` is a package again). Their ``energy_uj`` counts
microjoules and wraps at ``max_energy_range_uj``: 32 bits of the CPU's energy unit, 262 kJ
for a Xeon package (13.5 min at 324 W), 65.7 kJ for its DRAM and for an AMD EPYC socket
(the kernel's AMD RAPL has energy-status registers only, no power limits).

Each zone is bounded by the most power the platform says it may draw: the highest of its
own ``constraint_*_power_limit_uw`` and ``constraint_*_max_power_uw`` (a 0 is "no limit
stated", not 0 W); a subzone that states none (DRAM) by its package's; a zone whose package
states none either (AMD) by :data:`UNSTATED_ZONE_WATTS`. The span's guard reads the zones at
half the time the quickest of them takes to wrap at that bound, so every wrap is undone,
whatever the run's length.
"""

from __future__ import annotations

import time

from .. import _platform
from .. import tags as T
from .._files import Root, count, positive_int
from .._value import Record
from ._meter import Book, Meter, Uncountable, Unwrapped

POWERCAP = "/sys/class/powercap"
#: The most a zone that states no power limit, in a package that states none, is taken to
#: draw: twice the highest TDP of any server CPU socket sold (500 W), so that the guard reads
#: such a zone (an AMD socket: 65.7 kJ) every 33 s.
UNSTATED_ZONE_WATTS = 1000.0


class Zone(Record):
    """One RAPL zone counted: its folder, where its counter wraps, the most it may draw."""

    folder: str
    modulus: int
    watts: float


def zones(root: Root) -> list[Zone]:
    """The zones that add up to the CPU's energy (see the module); :class:`Uncountable` if none."""
    if not _platform.LINUX:
        raise Uncountable("no RAPL counters on this platform")
    counted: list[tuple[str, int]] = []
    package_watts: dict[str, float | None] = {}
    for name in root.listdir(POWERCAP):
        if not name.startswith("intel-rapl:"):
            continue
        folder = f"{POWERCAP}/{name}"
        kind = (root.read_line(f"{folder}/name") or "").lower()
        depth = name.count(":")
        if depth == 1:
            package_watts[name] = _stated_watts(root, folder)
        if (depth == 1 and kind.startswith("package")) or (depth == 2 and kind == "dram"):
            modulus = positive_int(root.read_line(f"{folder}/max_energy_range_uj"))
            if modulus is None:
                raise Uncountable(f"{name} gives no max_energy_range_uj")
            counted.append((name, modulus))
    if not counted:
        raise Uncountable("no RAPL package zone in /sys/class/powercap")
    return [
        Zone(
            f"{POWERCAP}/{name}",
            modulus,
            _stated_watts(root, f"{POWERCAP}/{name}")
            or package_watts.get(":".join(name.split(":")[:2]))
            or UNSTATED_ZONE_WATTS,
        )
        for name, modulus in counted
    ]


def _stated_watts(root: Root, folder: str) -> float | None:
    """The highest power limit a zone states (its constraints), in watts; ``None`` if it states none."""
    limits = []
    for entry in root.listdir(folder):
        if entry.startswith("constraint_") and entry.endswith(("_max_power_uw", "_power_limit_uw")):
            microwatts = positive_int(root.read_line(f"{folder}/{entry}"))
            if microwatts is not None:
                limits.append(microwatts / 1e6)
    return max(limits) if limits else None


def read_energy(root: Root, folder: str) -> int:
    """A zone's ``energy_uj`` (0 is a reading); :class:`Uncountable` when it cannot be read.

    Root only, since the kernel's fix of CVE-2020-8694 (Linux 5.10, backported).
    """
    try:
        with open(root.join(f"{folder}/energy_uj"), "rb") as handle:
            text = handle.read(64).decode("ascii", "replace")
    except PermissionError:
        raise Uncountable("powercap energy_uj is readable by root only") from None
    except OSError as exc:
        raise Uncountable(f"{folder}/energy_uj: {exc.strerror or exc}") from None
    value = count(text)
    if value is None:
        raise Uncountable(f"{folder}/energy_uj holds no counter ({text.strip()[:20]!r})")
    return value


class RaplMeter(Meter):
    """The CPU packages' and their DRAM's energy (see the module)."""

    name = "cpu energy"

    def __init__(self, root: Root) -> None:
        self.root = root
        self.zones = zones(root)
        # the quickest a zone can wrap, at the most it may draw (the guard reads at half that)
        self.wrap_seconds = min(zone.modulus / (zone.watts * 1e6) for zone in self.zones)
        self._counters: dict[str, Unwrapped] = {}

    def read(self, at: float | None = None) -> dict[str, tuple[int, str | None]]:
        """Each zone's microjoules since the first reading (wraps undone), and why it is unsure.

        ``at``: the moment of the reading on the monotonic clock (by default, now), which
        tells how far a counter can have moved since the last.
        """
        now = time.monotonic() if at is None else at
        totals: dict[str, tuple[int, str | None]] = {}
        for zone in self.zones:
            value = read_energy(self.root, zone.folder)
            counter = self._counters.get(zone.folder)
            if counter is None:
                counter = self._counters[zone.folder] = Unwrapped(value, zone.modulus, zone.watts * 1e6, now)
            totals[zone.folder] = (counter.observe(value, now), counter.lost)
        return totals

    def figures(
        self,
        first: dict[str, tuple[int, str | None]],
        last: dict[str, tuple[int, str | None]],
        seconds: float,
        book: Book,
    ) -> None:
        """``sys.cpu_energy_wh``: the zones' energy between the readings."""
        total = 0
        for zone in self.zones:
            microjoules, lost = last[zone.folder]
            if lost is not None:
                book.lacks(self.name, f"{zone.folder.rsplit('/', 1)[-1]}: {lost}")
                return
            total += microjoules - first[zone.folder][0]
        book.add(T.CPU_ENERGY_WH, round(total / 3.6e9, 6))
