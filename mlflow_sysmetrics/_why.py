"""What held a run back: a few named rules over its tags and ledger, said in words with their numbers.

The rules are pure functions of a run's tags and metrics as MLflow returns them (no MLflow
import, no I/O), each one small and registered in :data:`RULES` with its threshold, so the
documentation's table of rules is that table. A rule reads only figures that are there: an
absent metric never fires a rule and is never read as 0.

In a run a multi-node job shares, each node is judged on its own figures (node 0's plain
keys, node ``k``'s ``sys.node<k>.*``), and ``straggler-node`` compares the nodes.

A finding's **strength** orders the findings, strongest first: the share of the run (0 to 1)
the limit held, where the rule counts one in time; a fact that is not a share of time (a
narrow link, error counts, a peak near the memory limit) has strength 0 and comes after the
counted limits, in the table's order.

:func:`why` is the Python door: it reads the runs through MLflow's client and returns an
:class:`Explanation`, whose ``str()`` is the text the command line prints.
"""

from __future__ import annotations

import re
import statistics

from . import tags as T
from ._format import aligned, differences, format_duration, plain_number
from ._value import Record

TYPE_CHECKING = False  # typing's own import is not free; the checkers read this name alike
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

    #: The figures a finding gives, under the run's own keys: a metric's number or a tag's text.
    Evidence = dict[str, float | str]
    #: What a rule says when it fires: strength, sentence, evidence.
    Verdict = tuple[float, str, Evidence]

# Thresholds, in percent of the run (or of the scheduler's periods) unless said otherwise.
#: cpu-quota: share of the scheduler periods the container's CPU quota throttled.
CPU_QUOTA_PCT = 10.0
#: input-pipeline, gpu-idle: a GPU busy less than this share of the run was waiting for work.
GPU_WAITING_BUSY_PCT = 50.0
#: input-pipeline, gpu-idle, where the busy share was not counted: share of the run the GPU
#: lowered its clocks for lack of work.
GPU_WAITING_LOW_UTIL_PCT = 50.0
#: input-pipeline, cpu-bound: the cores the run could use were at least this busy.
CPU_SATURATED_PCT = 85.0
#: storage: share of the run some task was stalled waiting for I/O.
STORAGE_STALL_PCT = 20.0
#: memory-pressure: share of the run some task was stalled waiting for memory (reclaim, swap).
MEMORY_STALL_PCT = 10.0
#: cpu-contention: share of the run some runnable task waited for a core.
CPU_STALL_PCT = 20.0
#: gpu-power-cap: share of the run the power cap held the GPU's clocks down.
GPU_POWER_CAP_PCT = 10.0
#: gpu-thermal: share of the run the software thermal slowdown held the clocks down.
GPU_THERMAL_PCT = 5.0
#: gpu-hardware-slowdown: share of the run the hardware slowdown (HW thermal, power brake) held them.
GPU_HW_SLOWDOWN_PCT = 1.0
#: gpu-link: the width of a full GPU link; a PCIe link trained narrower fires.
GPU_FULL_LINK_WIDTH = 16
#: gpu-errors: uncorrected ECC errors during the run.
GPU_ECC_ERRORS = 1
#: gpu-errors: PCIe replays during the run (a few are normal; many mean a marginal link).
GPU_PCIE_REPLAYS = 100
#: memory-near-limit: peak resident memory as a share of the container's limit, else of the machine's.
MEMORY_NEAR_LIMIT_PCT = 90.0
#: straggler-node: a node's share above the median of the other nodes', in percentage points.
STRAGGLER_GAP_PCT = 20.0
#: compare: a limit found on both runs differs when its strength differs by this many points of the run.
COMPARE_GAP_PCT = 10.0


class Finding(Record):
    """One limit a rule found: its rule, strength, the sentence for people and the evidence.

    ``evidence`` maps the run's own keys (``sys.node3.cpu_throttled_pct`` for node 3) to the
    figures the sentence gives; ``node`` is the node it was found on in a multi-node run
    (``None`` in a run of one node).
    """

    rule: str
    strength: float
    text: str
    evidence: Evidence
    node: int | None = None


class Node(Record):
    """One node's figures as a rule reads them: keys without the node part (``sys.gpu_busy_pct``)."""

    index: int
    count: int
    tags: dict[str, str]
    metrics: dict[str, float]
    #: The metrics of the run's other nodes, by node (what ``straggler-node`` compares with).
    others: dict[int, dict[str, float]]
    #: The run's wall time, where known.
    duration_s: float | None = None

    def evidence(self, figures: Mapping[str, float | str | None]) -> Evidence:
        """``figures`` under this node's own keys, the absent ones left out."""
        return {T.node_key(key, self.index): value for key, value in figures.items() if value is not None}

    def number(self, key: str) -> float | None:
        """A tag's number (``sys.memory_limit_gb``), or ``None`` where absent or not one number."""
        try:
            return float(self.tags[key])
        except (KeyError, ValueError):
            return None


class Rule(Record):
    """A named rule: its check of one node, one line saying what it finds, and when it fires."""

    name: str
    check: Callable[[Node], Verdict | None]
    description: str
    fires_when: str


def _pct(value: float) -> str:
    return f"{plain_number(value)} %"


def _cpu_quota(node: Node) -> Verdict | None:
    throttled = node.metrics.get(T.CPU_THROTTLED_PCT)
    if throttled is None or throttled < CPU_QUOTA_PCT:
        return None
    held = node.metrics.get(T.CPU_THROTTLED_S)
    cores = node.tags.get(T.CPU_AVAILABLE)
    words = [f"CPU quota: throttled in {_pct(throttled)} of periods"]
    if held is not None:
        words.append(f"{format_duration(held)} held")
    if cores:
        words.append(f"{cores} usable cores")
    evidence = {T.CPU_THROTTLED_PCT: throttled, T.CPU_THROTTLED_S: held, T.CPU_AVAILABLE: cores}
    return throttled / 100, ", ".join(words), node.evidence(evidence)


def _gpu_waiting(node: Node) -> tuple[float, str, dict[str, float]] | None:
    """How long the GPU waited for work (share, words, figures), from the best figure there is."""
    busy = node.metrics.get(T.GPU_BUSY_PCT)
    if busy is not None:
        if busy >= GPU_WAITING_BUSY_PCT:
            return None
        return 1 - busy / 100, f"busy {_pct(busy)} of the run", {T.GPU_BUSY_PCT: busy}
    low = node.metrics.get(T.GPU_LOW_UTIL_PCT)
    if low is None or low < GPU_WAITING_LOW_UTIL_PCT:
        return None
    return low / 100, f"clocks lowered for lack of work {_pct(low)} of the run", {T.GPU_LOW_UTIL_PCT: low}


def _input_pipeline(node: Node) -> Verdict | None:
    waiting = _gpu_waiting(node)
    cpu = node.metrics.get(T.CPU_UTIL_PCT)
    if waiting is None or cpu is None or cpu < CPU_SATURATED_PCT:
        return None
    share, words, figures = waiting
    text = f"GPU waiting for work: {words} while the usable cores were {_pct(cpu)} busy: the input pipeline"
    return share, text, node.evidence({**figures, T.CPU_UTIL_PCT: cpu})


def _gpu_idle(node: Node) -> Verdict | None:
    waiting = _gpu_waiting(node)
    cpu = node.metrics.get(T.CPU_UTIL_PCT)
    if waiting is None or (cpu is not None and cpu >= CPU_SATURATED_PCT):
        return None
    share, words, figures = waiting
    text = f"GPU waiting for work: {words}"
    if cpu is not None:
        # a mean over the usable cores: one core saturated by a single-threaded loader is 3 % of 32
        text += (
            f", the usable cores averaged {_pct(cpu)} busy: not all of them; a single-threaded loader "
            "can still be the limit, as can storage, the network or other ranks"
        )
    return share, text, node.evidence({**figures, T.CPU_UTIL_PCT: cpu})


def _stalls_of_others(node: Node) -> str:
    """What a stall figure covers when it is not the run's alone (its ledger says so), else nothing.

    PSI read from the whole host's ``/proc/pressure``, or from a cgroup that holds other
    processes than the run's.
    """
    ledger = node.tags.get(T.LEDGER, "")
    if T.LEDGER_HOST_STALLS in ledger:
        return " (the whole host's stalls: other processes' count too)"
    if T.LEDGER_CGROUP_STALLS in ledger:
        return " (the cgroup's stalls: other processes in it count too)"
    return ""


def _storage(node: Node) -> Verdict | None:
    stalled = node.metrics.get(T.STALL_IO_PCT)
    if stalled is None or stalled < STORAGE_STALL_PCT:
        return None
    read, written = node.metrics.get(T.IO_READ_GB), node.metrics.get(T.IO_WRITE_GB)
    words = [f"storage: stalled on I/O {_pct(stalled)} of the run"]
    if read is not None:
        rate = f" ({plain_number(1000 * read / node.duration_s)} MB/s)" if node.duration_s else ""
        words.append(f"{plain_number(read)} GB read{rate}")
    if written is not None:
        words.append(f"{plain_number(written)} GB written")
    evidence = {T.STALL_IO_PCT: stalled, T.IO_READ_GB: read, T.IO_WRITE_GB: written}
    return stalled / 100, ", ".join(words) + _stalls_of_others(node), node.evidence(evidence)


def _memory_bound(node: Node) -> tuple[str, float, str] | None:
    """The memory the run could hold: (its key, GB, words): the container's limit, else the machine's."""
    for key, words in (
        (T.MEMORY_LIMIT_GB, "the container's {} GB limit"),
        (T.MEMORY_GB, "the machine's {} GB"),
    ):
        value = node.number(key)
        if value is not None and value > 0:
            return key, value, words.format(plain_number(value))
    return None


def _memory_pressure(node: Node) -> Verdict | None:
    stalled = node.metrics.get(T.STALL_MEMORY_PCT)
    if stalled is None or stalled < MEMORY_STALL_PCT:
        return None
    text = f"memory pressure: stalled waiting for memory {_pct(stalled)} of the run"
    evidence: dict[str, float | str | None] = {T.STALL_MEMORY_PCT: stalled}
    peak, bound = node.metrics.get(T.MEMORY_PEAK_GB), _memory_bound(node)
    if peak is not None:
        text += f", peak {plain_number(peak)} GB" + (f" of {bound[2]}" if bound else "")
        if _peak_holds_page_cache(node):
            text += " (the cgroup's, page cache included)"
        evidence[T.MEMORY_PEAK_GB] = peak
        if bound:
            evidence[bound[0]] = node.tags[bound[0]]
    return stalled / 100, text + _stalls_of_others(node), node.evidence(evidence)


def _cpu_contention(node: Node) -> Verdict | None:
    stalled = node.metrics.get(T.STALL_CPU_PCT)
    if stalled is None or stalled < CPU_STALL_PCT:
        return None
    cores = node.tags.get(T.CPU_AVAILABLE)
    text = f"CPU contention: runnable tasks waited for a core {_pct(stalled)} of the run"
    if cores:
        text += f", {cores} usable cores"
    evidence = {T.STALL_CPU_PCT: stalled, T.CPU_AVAILABLE: cores}
    return stalled / 100, text + _stalls_of_others(node), node.evidence(evidence)


def _cpu_bound(node: Node) -> Verdict | None:
    busy = node.metrics.get(T.CPU_UTIL_PCT)
    if busy is None or busy < CPU_SATURATED_PCT or node.tags.get(T.GPU_COUNT) != "0":
        return None
    cores = node.tags.get(T.CPU_AVAILABLE)
    text = f"CPU-bound: the usable cores{f' ({cores})' if cores else ''} were {_pct(busy)} busy, with no GPU"
    evidence = {T.CPU_UTIL_PCT: busy, T.CPU_AVAILABLE: cores, T.GPU_COUNT: "0"}
    return busy / 100, text, node.evidence(evidence)


def _gpu_clocks(key: str, threshold: float, what: str) -> Callable[[Node], Verdict | None]:
    """A rule on one of the GPU's clock-event shares: ``what`` held the clocks down."""

    def check(node: Node) -> Verdict | None:
        held = node.metrics.get(key)
        if held is None or held < threshold:
            return None
        text = f"{what}: clocks held down {_pct(held)} of the run"
        evidence: dict[str, float | str | None] = {key: held}
        if key == T.GPU_THROTTLE_POWER_PCT:
            limit, mean = node.tags.get(T.GPU_POWER_LIMIT_W), node.metrics.get(T.GPU_POWER_AVG_W)
            if limit:
                text += f", limit {limit} W"
            if mean is not None:
                text += f", mean draw {plain_number(mean)} W"
            evidence.update({T.GPU_POWER_LIMIT_W: limit, T.GPU_POWER_AVG_W: mean})
        return held / 100, text, node.evidence(evidence)

    return check


def _gpu_link(node: Node) -> Verdict | None:
    # The tag gives the width the link trained at, not the widest the card is built for (the
    # NVIDIA A2 and the RTX 4060 Ti are x8 cards): the sentence says what follows only for an x16 card.
    link = node.tags.get(T.GPU_LINK) or ""
    match = re.match(r"PCIe Gen(\d+) x(\d+)", link)
    if match is None or int(match.group(2)) >= GPU_FULL_LINK_WIDTH:
        return None
    width = int(match.group(2))
    share = _pct(100 * width / GPU_FULL_LINK_WIDTH)
    full = f"x{GPU_FULL_LINK_WIDTH}"
    text = (
        f"GPU link PCIe Gen{match.group(1)} x{width}: {share} of the bandwidth of an {full} link, "
        f"if the card is built for {full}"
    )
    return 0.0, text, node.evidence({T.GPU_LINK: link})


def _gpu_errors(node: Node) -> Verdict | None:
    ecc, replays = node.metrics.get(T.GPU_ECC_ERRORS), node.metrics.get(T.GPU_PCIE_REPLAYS)
    if not (
        (ecc is not None and ecc >= GPU_ECC_ERRORS) or (replays is not None and replays >= GPU_PCIE_REPLAYS)
    ):
        return None
    counts = []
    if ecc is not None:
        counts.append(f"{plain_number(ecc)} uncorrected ECC errors")
    if replays is not None:
        counts.append(f"{plain_number(replays)} PCIe replays")
    text = f"GPU errors: {', '.join(counts)} during the run"
    return 0.0, text, node.evidence({T.GPU_ECC_ERRORS: ecc, T.GPU_PCIE_REPLAYS: replays})


def _peak_holds_page_cache(node: Node) -> bool:
    """Whether the memory peak is the cgroup's ``memory.peak``, page cache included (its ledger says)."""
    return T.LEDGER_CGROUP_MEMORY_PEAK in node.tags.get(T.LEDGER, "")


def _memory_near_limit(node: Node) -> Verdict | None:
    peak, bound = node.metrics.get(T.MEMORY_PEAK_GB), _memory_bound(node)
    if peak is None or bound is None or 100 * peak / bound[1] < MEMORY_NEAR_LIMIT_PCT:
        return None
    if _peak_holds_page_cache(node):
        # the page cache fills a group up to its limit, and the kernel reclaims it there: no
        # sign the run's own memory came near it (memory-pressure tells when reclaim held it)
        return None
    key, limit, words = bound
    text = f"memory near its limit: peak {plain_number(peak)} GB of {words} ({_pct(100 * peak / limit)})"
    return 0.0, text, node.evidence({T.MEMORY_PEAK_GB: peak, key: node.tags[key]})


#: The shares of a node's run that ``straggler-node`` compares, with how it says them.
STRAGGLER_FIGURES: dict[str, str] = {
    T.CPU_THROTTLED_PCT: "CPU quota throttled in {} of periods",
    T.GPU_THROTTLE_THERMAL_PCT: "thermal slowdown {} of its run",
    T.GPU_THROTTLE_HW_PCT: "hardware slowdown {} of its run",
    T.GPU_THROTTLE_POWER_PCT: "power cap held its GPU clocks {} of its run",
    T.STALL_IO_PCT: "stalled on I/O {} of its run",
    T.STALL_MEMORY_PCT: "stalled waiting for memory {} of its run",
    T.STALL_CPU_PCT: "waited for a core {} of its run",
}


def _straggler_node(node: Node) -> Verdict | None:
    best: tuple[float, str, list[float]] | None = None
    for key in STRAGGLER_FIGURES:
        mine = node.metrics.get(key)
        theirs = [figures[key] for figures in node.others.values() if key in figures]
        if mine is None or not theirs:
            continue
        gap = mine - statistics.median(theirs)
        if gap >= STRAGGLER_GAP_PCT and (best is None or gap > best[0]):
            best = (gap, key, theirs)
    if best is None:
        return None
    gap, key, theirs = best
    low, high = min(theirs), max(theirs)
    others = _pct(low) if low == high else f"{plain_number(low)}-{_pct(high)}"
    text = (
        f"{STRAGGLER_FIGURES[key].format(_pct(node.metrics[key]))}, the other nodes {others}: "
        "the job waits on its slowest node"
    )
    evidence = node.evidence({key: node.metrics[key]})
    evidence.update(
        {T.node_key(key, other): figures[key] for other, figures in node.others.items() if key in figures}
    )
    return gap / 100, text, {k: evidence[k] for k in T.order(evidence)}


def _rules() -> tuple[Rule, ...]:
    metric = tag = "`{}`".format
    return (
        Rule(
            "straggler-node",
            _straggler_node,
            "One node of a multi-node job was held back where the others were not; the job waits on it.",
            f"one of a node's shares ({', '.join(metric(k) for k in STRAGGLER_FIGURES)}) is "
            f"{plain_number(STRAGGLER_GAP_PCT)} points or more above the median of the other nodes'",
        ),
        Rule(
            "cpu-quota",
            _cpu_quota,
            "The container's CPU quota throttled the run.",
            f"{metric(T.CPU_THROTTLED_PCT)} >= {plain_number(CPU_QUOTA_PCT)}",
        ),
        Rule(
            "input-pipeline",
            _input_pipeline,
            "The GPU waited for work while the cores that feed it were saturated.",
            f"{metric(T.GPU_BUSY_PCT)} < {plain_number(GPU_WAITING_BUSY_PCT)} (else "
            f"{metric(T.GPU_LOW_UTIL_PCT)} >= {plain_number(GPU_WAITING_LOW_UTIL_PCT)}) and "
            f"{metric(T.CPU_UTIL_PCT)} >= {plain_number(CPU_SATURATED_PCT)}",
        ),
        Rule(
            "gpu-idle",
            _gpu_idle,
            "The GPU waited for work while the usable cores were not all busy: a single-threaded "
            "loader, storage, the network or other ranks may have kept it waiting.",
            f"{metric(T.GPU_BUSY_PCT)} < {plain_number(GPU_WAITING_BUSY_PCT)} (else "
            f"{metric(T.GPU_LOW_UTIL_PCT)} >= {plain_number(GPU_WAITING_LOW_UTIL_PCT)}) and "
            f"{metric(T.CPU_UTIL_PCT)} < {plain_number(CPU_SATURATED_PCT)} or not counted",
        ),
        Rule(
            "storage",
            _storage,
            "The run's tasks stalled waiting for storage.",
            f"{metric(T.STALL_IO_PCT)} >= {plain_number(STORAGE_STALL_PCT)}",
        ),
        Rule(
            "memory-pressure",
            _memory_pressure,
            "The run's tasks stalled waiting for memory (reclaim, swap).",
            f"{metric(T.STALL_MEMORY_PCT)} >= {plain_number(MEMORY_STALL_PCT)}",
        ),
        Rule(
            "cpu-contention",
            _cpu_contention,
            "Runnable tasks of the run waited for a core.",
            f"{metric(T.STALL_CPU_PCT)} >= {plain_number(CPU_STALL_PCT)}",
        ),
        Rule(
            "cpu-bound",
            _cpu_bound,
            "A run without a GPU kept the cores it could use busy: more cores would help.",
            f"{metric(T.CPU_UTIL_PCT)} >= {plain_number(CPU_SATURATED_PCT)} and {tag(T.GPU_COUNT)} = 0",
        ),
        Rule(
            "gpu-power-cap",
            _gpu_clocks(T.GPU_THROTTLE_POWER_PCT, GPU_POWER_CAP_PCT, "GPU power cap"),
            "The GPU's power cap held its clocks down.",
            f"{metric(T.GPU_THROTTLE_POWER_PCT)} >= {plain_number(GPU_POWER_CAP_PCT)}",
        ),
        Rule(
            "gpu-thermal",
            _gpu_clocks(T.GPU_THROTTLE_THERMAL_PCT, GPU_THERMAL_PCT, "GPU thermal slowdown"),
            "The GPU slowed its clocks because it ran hot.",
            f"{metric(T.GPU_THROTTLE_THERMAL_PCT)} >= {plain_number(GPU_THERMAL_PCT)}",
        ),
        Rule(
            "gpu-hardware-slowdown",
            _gpu_clocks(T.GPU_THROTTLE_HW_PCT, GPU_HW_SLOWDOWN_PCT, "GPU hardware slowdown"),
            "The GPU's hardware slowdown (HW thermal, power brake) held its clocks down.",
            f"{metric(T.GPU_THROTTLE_HW_PCT)} >= {plain_number(GPU_HW_SLOWDOWN_PCT)}",
        ),
        Rule(
            "gpu-link",
            _gpu_link,
            "The GPU's PCIe link trained narrower than x16: less bandwidth, if the card is built for x16.",
            f"{tag(T.GPU_LINK)} is PCIe narrower than x{GPU_FULL_LINK_WIDTH}",
        ),
        Rule(
            "gpu-errors",
            _gpu_errors,
            "The GPUs saw uncorrected memory errors or many PCIe replays.",
            f"{metric(T.GPU_ECC_ERRORS)} >= {GPU_ECC_ERRORS} or "
            f"{metric(T.GPU_PCIE_REPLAYS)} >= {GPU_PCIE_REPLAYS}",
        ),
        Rule(
            "memory-near-limit",
            _memory_near_limit,
            "The run's peak memory came near the container's limit (else the machine's memory).",
            f"{metric(T.MEMORY_PEAK_GB)} >= {plain_number(MEMORY_NEAR_LIMIT_PCT)} % of "
            f"{tag(T.MEMORY_LIMIT_GB)}, else of {tag(T.MEMORY_GB)}, and the peak is not the cgroup's "
            f"(page cache included: {tag(T.LEDGER)} says so)",
        ),
    )


#: Every rule, by name, in the order findings of equal strength are listed.
RULES: dict[str, Rule] = {rule.name: rule for rule in _rules()}


def rules_table() -> str:
    """The rules as a Markdown table (rule, what it finds, when it fires): the one in the docs."""
    rows = ["| rule | what it finds | fires when |", "| --- | --- | --- |"]
    rows += [f"| `{r.name}` | {r.description} | {r.fires_when} |" for r in RULES.values()]
    return "\n".join(rows)


def nodes(
    tags: Mapping[str, str], metrics: Mapping[str, float], duration_s: float | None = None
) -> list[Node]:
    """The run's nodes as the rules read them: node 0's plain keys, node ``k``'s ``sys.node<k>.*``.

    A run of one node is one :class:`Node`. The count is ``sys.dist.nodes`` where it is a
    number at least as large as the nodes seen, else the highest node seen plus one.
    """
    node_tags: dict[int, dict[str, str]] = {0: {}}
    node_metrics: dict[int, dict[str, float]] = {0: {}}
    for key, text in tags.items():
        if T.is_system_key(key):
            node_tags.setdefault(_node_of(key), {})[T.plain_key(key)] = text
    for key, value in metrics.items():
        if T.is_system_key(key):
            node_metrics.setdefault(_node_of(key), {})[T.plain_key(key)] = float(value)
    indexes = sorted(set(node_tags) | set(node_metrics))
    try:
        declared = int(tags.get(T.DIST_NODES, ""))
    except ValueError:
        declared = 0
    count = max(declared, indexes[-1] + 1)
    return [
        Node(
            index,
            count,
            node_tags.get(index, {}),
            node_metrics.get(index, {}),
            {other: node_metrics.get(other, {}) for other in indexes if other != index},
            duration_s,
        )
        for index in indexes
    ]


def _node_of(key: str) -> int:
    split = T.split_node_key(key)
    return 0 if split is None else split[0]


def explain(
    tags: Mapping[str, str], metrics: Mapping[str, float], duration_s: float | None = None
) -> list[Finding]:
    """Every rule over one run: what likely held it back, strongest first (empty when nothing).

    ``tags`` and ``metrics`` are the run's (``run.data.tags``, ``run.data.metrics``). Each
    node of a multi-node run is judged on its own figures, and its findings begin with
    ``node k of N:``. ``duration_s`` (the run's wall time) turns totals into rates where
    a sentence gives one (the storage rule's MB/s); no rule needs it to fire.
    """
    found: list[Finding] = []
    run_nodes = nodes(tags, metrics, duration_s)
    for rule in RULES.values():
        for node in run_nodes:
            verdict = rule.check(node)
            if verdict is None:
                continue
            strength, text, evidence = verdict
            where = None
            if node.count > 1:
                where, text = node.index, f"node {node.index} of {node.count}: {text}"
            found.append(Finding(rule.name, round(strength, 3), text, evidence, where))
    found.sort(key=lambda finding: -finding.strength)  # stable: equal ones stay in the table's order
    return found


def has_ledger(metrics: Mapping[str, float]) -> bool:
    """Whether the run carries a ledger (any metric of the key table, on any node)."""
    return any(T.plain_key(key) in T.METRIC_KEYS for key in metrics)


def not_counted(tags: Mapping[str, str]) -> dict[int, str]:
    """What each node's ledger could not count (its ``sys.ledger``), by node.

    A node whose ledger missed nothing is left out.
    """
    found: dict[int, str] = {}
    for key, value in tags.items():
        if T.plain_key(key) == T.LEDGER and value != T.LEDGER_EVERYTHING_COUNTED:
            found[_node_of(key)] = value
    return dict(sorted(found.items()))


def _notes(tags: Mapping[str, str], metrics: Mapping[str, float]) -> list[str]:
    notes = []
    if not has_ledger(metrics):
        notes.append(
            "The run has no ledger, so only its tags were read: sysmetrics_run(), @with_sysmetrics "
            "and `mlflow-sysmetrics run` count one."
        )
    missed = not_counted(tags)
    for node, text in missed.items():
        notes.append(f"The ledger's notes{f' on node {node}' if len(missed) > 1 or node else ''}: {text}")
    return notes


def format_findings(findings: list[Finding], tags: Mapping[str, str], metrics: Mapping[str, float]) -> str:
    """The findings for people: one line each (rule, sentence), then what was not counted."""
    if findings:
        count = f"{len(findings)} likely limit{'s' if len(findings) > 1 else ''}"
        lines = [
            f"{count}, strongest first:",
            *aligned([["", f.rule, f.text] for f in findings]).splitlines(),
        ]
    else:
        lines = ["Nothing found: no rule fired on what the run counted."]
    return "\n".join([*lines, *_notes(tags, metrics)])


def findings_dict(
    findings: list[Finding], tags: Mapping[str, str], metrics: Mapping[str, float]
) -> dict[str, Any]:
    """The findings as JSON can hold them (``--json``), with whether there was a ledger and what it missed."""
    return {
        "findings": [finding._asdict() for finding in findings],
        "ledger": has_ledger(metrics),
        "not_counted": {str(node): text for node, text in not_counted(tags).items()},
    }


class LimitChange(Record):
    """A limit found on one run and not the other, or on both with strengths far apart."""

    rule: str
    node: int | None
    a: Finding | None
    b: Finding | None


class Comparison(Record):
    """What differs between runs A and B: facts first, then the counted limits, and their durations."""

    #: The system tags that differ, key -> (A's, B's), the likeliest causes first.
    facts: dict[str, tuple[str | None, str | None]]
    limits: list[LimitChange]
    findings_a: list[Finding]
    findings_b: list[Finding]
    duration_a: float | None = None
    duration_b: float | None = None

    @property
    def duration_ratio(self) -> float | None:
        """A's duration over B's (``None`` when either is unknown)."""
        if self.duration_a is None or not self.duration_b:
            return None
        return round(self.duration_a / self.duration_b, 3)


def compare(
    tags_a: Mapping[str, str],
    metrics_a: Mapping[str, float],
    tags_b: Mapping[str, str],
    metrics_b: Mapping[str, float],
    duration_a: float | None = None,
    duration_b: float | None = None,
) -> Comparison:
    """Why run A differs from run B: the facts that differ, then the limits that differ.

    Facts are the system tags (``sys.ledger`` aside), the likeliest causes of a slowdown
    first (:func:`_format.differences`). A limit differs when a rule fires on one run (or
    on a node of it) and not on the other, or on both with strengths at least
    :data:`COMPARE_GAP_PCT` points of the run apart; a fact-like finding (strength 0) found
    on both is the same limit, and the facts above say how its tag differs.
    """

    def facts(tags: Mapping[str, str]) -> dict[str, str]:
        return {k: v for k, v in tags.items() if T.is_system_key(k) and T.plain_key(k) != T.LEDGER}

    found_a, found_b = explain(tags_a, metrics_a, duration_a), explain(tags_b, metrics_b, duration_b)
    by_a = {(f.rule, f.node): f for f in found_a}
    by_b = {(f.rule, f.node): f for f in found_b}
    limits = []
    for rule, node in dict.fromkeys([*by_a, *by_b]):
        a, b = by_a.get((rule, node)), by_b.get((rule, node))
        # rounded: strengths are rounded to 3 decimals, and 0.41 - 0.31 is 0.0999... in floats
        if a is None or b is None or round(100 * abs(a.strength - b.strength), 6) >= COMPARE_GAP_PCT:
            limits.append(LimitChange(rule, node, a, b))
    limits.sort(key=lambda change: -max(f.strength for f in (change.a, change.b) if f is not None))
    return Comparison(
        differences(facts(tags_a), facts(tags_b)), limits, found_a, found_b, duration_a, duration_b
    )


def format_comparison(comparison: Comparison, names: tuple[str, str] = ("run A", "run B")) -> str:
    """The comparison for people: the durations, the facts that differ, the limits that differ."""
    a, b = names
    blocks = []
    ratio = comparison.duration_ratio
    if ratio is not None:
        blocks.append(
            f"{a[:1].upper()}{a[1:]} took {plain_number(ratio)}x the time of {b} "
            f"({format_duration(comparison.duration_a)} vs {format_duration(comparison.duration_b)})."
        )
    if comparison.facts:
        rows = [["", "tag", a, b]] + [
            ["", k, va or "-", vb or "-"] for k, (va, vb) in comparison.facts.items()
        ]
        blocks.append("Facts that differ, the likeliest causes first:\n" + aligned(rows))
    else:
        blocks.append("Same facts: the runs' system tags do not differ.")
    if comparison.limits:
        lines = ["Limits that differ:"]
        for change in comparison.limits:
            lines.append(f"  {change.rule}")
            for name, finding in ((a, change.a), (b, change.b)):
                lines.append(f"    {name}: {finding.text if finding else 'not found'}")
        blocks.append("\n".join(lines))
    else:
        blocks.append("No counted limit differs: the rules found the same on both runs.")
    return "\n\n".join(blocks)


def comparison_dict(comparison: Comparison) -> dict[str, Any]:
    """The comparison as JSON can hold it (``--json``); ``a`` and ``b`` as in ``diff --json``."""

    def shown(finding: Finding | None) -> dict[str, Any] | None:
        return None if finding is None else finding._asdict()

    return {
        "duration_s": {"a": comparison.duration_a, "b": comparison.duration_b},
        "duration_ratio": comparison.duration_ratio,
        "facts": {k: {"a": va, "b": vb} for k, (va, vb) in comparison.facts.items()},
        "limits": [
            {"rule": c.rule, "node": c.node, "a": shown(c.a), "b": shown(c.b)} for c in comparison.limits
        ],
        "findings": {
            "a": [f._asdict() for f in comparison.findings_a],
            "b": [f._asdict() for f in comparison.findings_b],
        },
    }


class Explanation(Record):
    """What :func:`why` found: the run's findings, or, with ``than``, its comparison with another run.

    ``str()`` gives the text the command line prints; :meth:`as_dict` what ``--json`` prints.
    """

    run_id: str
    findings: list[Finding]
    tags: dict[str, str]
    metrics: dict[str, float]
    duration_s: float | None = None
    than: str | None = None
    comparison: Comparison | None = None

    def __str__(self) -> str:
        if self.comparison is not None:
            names = (f"run {self.run_id}", f"run {self.than}")
            return format_comparison(self.comparison, names)
        heading = f"Run {self.run_id}" + (f" ({format_duration(self.duration_s)})" if self.duration_s else "")
        return f"{heading}\n\n{format_findings(self.findings, self.tags, self.metrics)}"

    def as_dict(self) -> dict[str, Any]:
        """The same as JSON can hold it: the run, its duration and findings, and the comparison."""
        found = {"run": self.run_id, "duration_s": self.duration_s}
        found.update(findings_dict(self.findings, self.tags, self.metrics))
        if self.comparison is None:
            return found
        return {**found, "than": self.than, "comparison": comparison_dict(self.comparison)}


def why(
    run_id: str,
    than: str | None = None,
    *,
    tracking_uri: str | None = None,
    client: MlflowClient | None = None,
) -> Explanation:
    """What likely held run ``run_id`` back, strongest first; with ``than``, why it differs from that run.

    Reads each run once (its tags, ledger metrics and duration) and applies the rules of
    :data:`RULES` to them. ``print(why(run_id))`` gives the findings with their numbers, or
    says plainly that nothing was found; ``why(run_id, than=other)`` lists the facts that
    differ between the two runs (hardware and software), then the limits counted on one and
    not the other, and how their durations compare. ``tracking_uri`` or ``client`` name the
    store, as for :func:`log_sysmetrics` (default: MLflow's current tracking URI).
    """
    for name, value in (("run_id", run_id), ("than", than)):
        if (name == "run_id" or value is not None) and (not isinstance(value, str) or not value.strip()):
            raise TypeError(
                f"why({name}=...) takes a run id string such as run.info.run_id, got {value!r}: "
                "why(run.info.run_id) or why(run.info.run_id, than=other.info.run_id)"
            )
    if client is not None and tracking_uri is not None:
        raise TypeError("why() takes tracking_uri= or client=, not both")
    from mlflow.tracking import MlflowClient

    client = client or MlflowClient(tracking_uri=tracking_uri)
    run = client.get_run(run_id.strip())
    return explained(run, None if than is None else client.get_run(than.strip()))


def explained(run: Run, than: Run | None = None) -> Explanation:
    """:func:`why` of runs already read (what the command line does after its own checks)."""
    tags, metrics, duration = _figures(run)
    findings = explain(tags, metrics, duration)
    if than is None:
        return Explanation(run.info.run_id, findings, tags, metrics, duration)
    other_tags, other_metrics, other_duration = _figures(than)
    comparison = compare(tags, metrics, other_tags, other_metrics, duration, other_duration)
    return Explanation(run.info.run_id, findings, tags, metrics, duration, than.info.run_id, comparison)


def _figures(run: Run) -> tuple[dict[str, str], dict[str, float], float | None]:
    """A run's tags, metrics and duration in seconds (``None`` while it runs)."""
    start, end = run.info.start_time, run.info.end_time
    duration = (end - start) / 1000 if start and end else None
    return dict(run.data.tags), {k: float(v) for k, v in run.data.metrics.items()}, duration
