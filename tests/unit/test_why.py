"""``why``: the rules that say what held a run back, one by one, and the comparison of two runs.

Inputs are a run's tags and metrics as MLflow returns them (``run.data.tags``, strings;
``run.data.metrics``, floats): the boundary the rules stand behind. Expected sentences are
written out by hand from the figures given.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import pytest

import mlflow_sysmetrics
from mlflow_sysmetrics import _why
from mlflow_sysmetrics import tags as T

REPO = Path(__file__).resolve().parents[2]


class Case(NamedTuple):
    """A run with exactly one limit, its sentence, and the changes that keep the rule quiet."""

    tags: dict[str, str]
    metrics: dict[str, float]
    text: str
    strength: float
    #: the figure just short of the threshold
    below: dict[str, Any]
    #: the figures whose absence keeps the rule from firing
    absent: tuple[str, ...]


CASES: dict[str, Case] = {
    "cpu-quota": Case(
        {T.CPU_AVAILABLE: "2.5"},
        {T.CPU_THROTTLED_PCT: 41.0, T.CPU_THROTTLED_S: 560.0},
        "CPU quota: throttled in 41 % of periods, 9.3 min held, 2.5 usable cores",
        0.41,
        {T.CPU_THROTTLED_PCT: 9.9},
        (T.CPU_THROTTLED_PCT,),
    ),
    "input-pipeline": Case(
        {},
        {T.GPU_BUSY_PCT: 23.0, T.CPU_UTIL_PCT: 97.0},
        "GPU waiting for work: busy 23 % of the run while the usable cores were 97 % busy: the input pipeline",
        0.77,
        {T.CPU_UTIL_PCT: 84.9},
        (T.CPU_UTIL_PCT,),
    ),
    "gpu-idle": Case(
        {},
        {T.GPU_BUSY_PCT: 23.0, T.CPU_UTIL_PCT: 40.0},
        "GPU waiting for work: busy 23 % of the run, the usable cores averaged 40 % busy: not all of "
        "them; a single-threaded loader can still be the limit, as can storage, the network or other ranks",
        0.77,
        {T.GPU_BUSY_PCT: 50.0},
        (T.GPU_BUSY_PCT,),
    ),
    "storage": Case(
        {},
        {T.STALL_IO_PCT: 35.0, T.IO_READ_GB: 410.0},
        "storage: stalled on I/O 35 % of the run, 410 GB read (114 MB/s)",
        0.35,
        {T.STALL_IO_PCT: 19.9},
        (T.STALL_IO_PCT,),
    ),
    "memory-pressure": Case(
        {T.MEMORY_GB: "64", T.MEMORY_LIMIT_GB: "8"},
        {T.STALL_MEMORY_PCT: 15.0, T.MEMORY_PEAK_GB: 6.0},
        "memory pressure: stalled waiting for memory 15 % of the run, peak 6 GB of the container's 8 GB limit",
        0.15,
        {T.STALL_MEMORY_PCT: 9.9},
        (T.STALL_MEMORY_PCT,),
    ),
    "cpu-contention": Case(
        {T.CPU_AVAILABLE: "4"},
        {T.STALL_CPU_PCT: 25.0},
        "CPU contention: runnable tasks waited for a core 25 % of the run, 4 usable cores",
        0.25,
        {T.STALL_CPU_PCT: 19.9},
        (T.STALL_CPU_PCT,),
    ),
    "cpu-bound": Case(
        {T.CPU_AVAILABLE: "8", T.GPU_COUNT: "0", T.GPU: "None"},
        {T.CPU_UTIL_PCT: 97.0},
        "CPU-bound: the usable cores (8) were 97 % busy, with no GPU",
        0.97,
        {T.CPU_UTIL_PCT: 84.9},
        (T.CPU_UTIL_PCT,),
    ),
    "gpu-power-cap": Case(
        {T.GPU_POWER_LIMIT_W: "500"},
        {T.GPU_THROTTLE_POWER_PCT: 31.0, T.GPU_POWER_AVG_W: 480.0},
        "GPU power cap: clocks held down 31 % of the run, limit 500 W, mean draw 480 W",
        0.31,
        {T.GPU_THROTTLE_POWER_PCT: 9.9},
        (T.GPU_THROTTLE_POWER_PCT,),
    ),
    "gpu-thermal": Case(
        {},
        {T.GPU_THROTTLE_THERMAL_PCT: 30.0},
        "GPU thermal slowdown: clocks held down 30 % of the run",
        0.30,
        {T.GPU_THROTTLE_THERMAL_PCT: 4.9},
        (T.GPU_THROTTLE_THERMAL_PCT,),
    ),
    "gpu-hardware-slowdown": Case(
        {},
        {T.GPU_THROTTLE_HW_PCT: 3.0},
        "GPU hardware slowdown: clocks held down 3 % of the run",
        0.03,
        {T.GPU_THROTTLE_HW_PCT: 0.9},
        (T.GPU_THROTTLE_HW_PCT,),
    ),
    "gpu-link": Case(
        {T.GPU_LINK: "PCIe Gen4 x8, NVLink 4 links"},
        {},
        "GPU link PCIe Gen4 x8: 50 % of the bandwidth of an x16 link, if the card is built for x16",
        0.0,
        {T.GPU_LINK: "PCIe Gen4 x16, NVLink 4 links"},
        (T.GPU_LINK,),
    ),
    "gpu-errors": Case(
        {},
        {T.GPU_ECC_ERRORS: 2.0, T.GPU_PCIE_REPLAYS: 340.0},
        "GPU errors: 2 uncorrected ECC errors, 340 PCIe replays during the run",
        0.0,
        {T.GPU_ECC_ERRORS: 0.0, T.GPU_PCIE_REPLAYS: 99.0},
        (T.GPU_ECC_ERRORS, T.GPU_PCIE_REPLAYS),
    ),
    "memory-near-limit": Case(
        {T.MEMORY_GB: "64", T.MEMORY_LIMIT_GB: "8"},
        {T.MEMORY_PEAK_GB: 7.6},
        "memory near its limit: peak 7.6 GB of the container's 8 GB limit (95 %)",
        0.0,
        {T.MEMORY_PEAK_GB: 7.19},
        (T.MEMORY_PEAK_GB,),
    ),
}

#: A run that nothing held back: every figure counted, each on the right side of its rule.
HEALTHY_TAGS = {
    T.CPU_AVAILABLE: "16",
    T.MEMORY_GB: "128",
    T.GPU_COUNT: "1",
    T.GPU_LINK: "PCIe Gen5 x16, NVLink 18 links",
    T.GPU_POWER_LIMIT_W: "700",
    T.LEDGER: "everything counted",
}
HEALTHY_METRICS = {
    T.CPU_UTIL_PCT: 60.0,
    T.CPU_THROTTLED_PCT: 0.0,
    T.CPU_THROTTLED_S: 0.0,
    T.STALL_CPU_PCT: 3.0,
    T.STALL_IO_PCT: 2.0,
    T.STALL_MEMORY_PCT: 0.0,
    T.GPU_BUSY_PCT: 95.0,
    T.GPU_LOW_UTIL_PCT: 0.0,
    T.GPU_THROTTLE_POWER_PCT: 1.0,
    T.GPU_THROTTLE_THERMAL_PCT: 0.0,
    T.GPU_THROTTLE_HW_PCT: 0.0,
    T.GPU_ECC_ERRORS: 0.0,
    T.GPU_PCIE_REPLAYS: 0.0,
    T.MEMORY_PEAK_GB: 40.0,
    T.IO_READ_GB: 3.0,
    T.GPU_HOURS: 1.0,
}


def _rules(tags: dict[str, str], metrics: dict[str, float]) -> list[str]:
    return [finding.rule for finding in _why.explain(tags, metrics, 3600.0)]


def test_every_rule_has_its_case() -> None:
    """Each rule of the table is proven below on a run of its own (straggler-node on a multi-node run)."""
    assert {*CASES, "straggler-node"} == set(_why.RULES)


@pytest.mark.parametrize("rule", sorted(CASES))
def test_a_run_with_one_limit_gets_that_rule_alone(rule: str) -> None:
    """The run's one limit, and only it, is found, with its sentence, strength and evidence."""
    case = CASES[rule]
    findings = _why.explain(case.tags, case.metrics, 3600.0)
    assert [rule] == [f.rule for f in findings]
    (finding,) = findings
    assert case.text == finding.text
    assert case.strength == finding.strength
    assert finding.node is None
    assert set(finding.evidence) <= set(case.tags) | set(case.metrics)
    assert all(
        finding.evidence[key] in (case.tags.get(key), case.metrics.get(key)) for key in finding.evidence
    )


@pytest.mark.parametrize("rule", sorted(CASES))
def test_a_rule_is_quiet_just_below_its_threshold(rule: str) -> None:
    """The figure just short of the threshold fires nothing of this rule."""
    case = CASES[rule]
    tags = {**case.tags, **{k: v for k, v in case.below.items() if isinstance(v, str)}}
    metrics = {**case.metrics, **{k: v for k, v in case.below.items() if not isinstance(v, str)}}
    assert rule not in _rules(tags, metrics)


@pytest.mark.parametrize("rule", sorted(CASES))
def test_a_rule_is_quiet_when_its_figure_is_absent(rule: str) -> None:
    """An absent figure is not 0: without it the rule does not fire."""
    case = CASES[rule]
    tags = {k: v for k, v in case.tags.items() if k not in case.absent}
    metrics = {k: v for k, v in case.metrics.items() if k not in case.absent}
    assert rule not in _rules(tags, metrics)


def test_a_run_with_no_limit_finds_nothing_and_says_so() -> None:
    """Every figure counted and none over its threshold: no finding, and a plain sentence."""
    findings = _why.explain(HEALTHY_TAGS, HEALTHY_METRICS, 3600.0)
    assert findings == []
    assert (
        _why.format_findings(findings, HEALTHY_TAGS, HEALTHY_METRICS)
        == "Nothing found: no rule fired on what the run counted."
    )
    assert _why.findings_dict(findings, HEALTHY_TAGS, HEALTHY_METRICS) == {
        "findings": [],
        "ledger": True,
        "not_counted": {},
    }


def test_what_was_not_counted_is_named() -> None:
    """A run whose ledger missed figures says which, from sys.ledger; one with no ledger says that."""
    tags = {T.LEDGER: "cpu energy: no RAPL package zone in /sys/class/powercap; stall: PSI is off"}
    metrics = {T.MEMORY_PEAK_GB: 0.782, T.GPU_HOURS: 0.0}
    assert _why.format_findings([], tags, metrics).splitlines() == [
        "Nothing found: no rule fired on what the run counted.",
        "The ledger's notes: cpu energy: no RAPL package zone in /sys/class/powercap; stall: PSI is off",
    ]
    untagged = {T.CPU: "Intel(R) Xeon(R) Processor", T.GPU_COUNT: "1"}
    assert _why.format_findings([], untagged, {"loss": 0.1}).splitlines() == [
        "Nothing found: no rule fired on what the run counted.",
        "The run has no ledger, so only its tags were read: sysmetrics_run(), @with_sysmetrics "
        "and `mlflow-sysmetrics run` count one.",
    ]
    assert _why.findings_dict([], untagged, {}) == {"findings": [], "ledger": False, "not_counted": {}}


def test_findings_come_strongest_first_with_their_rule() -> None:
    """Counted limits by the share of the run they held, facts (strength 0) after them."""
    tags = {**CASES["cpu-quota"].tags, **CASES["gpu-link"].tags}
    metrics = {**CASES["cpu-quota"].metrics, **CASES["storage"].metrics}
    findings = _why.explain(tags, metrics, 3600.0)
    assert [f.rule for f in findings] == ["cpu-quota", "storage", "gpu-link"]
    assert [
        "3 likely limits, strongest first:",
        f"  cpu-quota  {CASES['cpu-quota'].text}",
        f"  storage    {CASES['storage'].text}",
        f"  gpu-link   {CASES['gpu-link'].text}",
    ] == _why.format_findings(findings, tags, metrics).splitlines()


def test_gpu_waiting_without_a_busy_share_reads_the_low_utilization_clocks() -> None:
    """Where the busy share was not counted, the clocks lowered for lack of work tell the wait."""
    metrics = {T.GPU_LOW_UTIL_PCT: 60.0}
    (finding,) = _why.explain({}, metrics)
    assert (
        finding.rule,
        finding.text,
        finding.strength,
    ) == ("gpu-idle", "GPU waiting for work: clocks lowered for lack of work 60 % of the run", 0.6)
    assert _why.explain({}, {T.GPU_LOW_UTIL_PCT: 49.9}) == []
    # the busy share, where counted, is the better figure and wins
    assert _why.explain({}, {T.GPU_LOW_UTIL_PCT: 60.0, T.GPU_BUSY_PCT: 80.0}) == []


def test_memory_near_the_machines_memory_without_a_container_limit() -> None:
    """Without a container limit, the peak is measured against the machine's memory."""
    (finding,) = _why.explain({T.MEMORY_GB: "64"}, {T.MEMORY_PEAK_GB: 60.0})
    assert finding.text == "memory near its limit: peak 60 GB of the machine's 64 GB (93.8 %)"
    assert finding.evidence == {T.MEMORY_PEAK_GB: 60.0, T.MEMORY_GB: "64"}


def _eight_nodes(throttled: dict[int, float]) -> tuple[dict[str, str], dict[str, float]]:
    """A run eight nodes share (node 0 plain keys, node k sys.node<k>.*), throttled as given."""
    tags: dict[str, str] = {T.DIST_NODES: "8"}
    metrics: dict[str, float] = {}
    for node in range(8):
        tags[T.node_key(T.CPU_AVAILABLE, node)] = "2.5"
        metrics[T.node_key(T.CPU_THROTTLED_PCT, node)] = throttled.get(node, 0.0)
        metrics[T.node_key(T.CPU_THROTTLED_S, node)] = 0.0 if node not in throttled else 560.0
    return tags, metrics


def test_node_3_of_8_throttled_is_the_straggler() -> None:
    """Node 3's quota throttled it and no other node's: it is named, with the other nodes' figure."""
    tags, metrics = _eight_nodes({3: 41.0})
    straggler, quota = _why.explain(tags, metrics, 3600.0)
    assert (
        _why.Finding(
            "straggler-node",
            0.41,
            "node 3 of 8: CPU quota throttled in 41 % of periods, the other nodes 0 %: "
            "the job waits on its slowest node",
            {T.node_key(T.CPU_THROTTLED_PCT, node): 41.0 if node == 3 else 0.0 for node in range(8)},
            3,
        )
        == straggler
    )
    assert (
        _why.Finding(
            "cpu-quota",
            0.41,
            "node 3 of 8: CPU quota: throttled in 41 % of periods, 9.3 min held, 2.5 usable cores",
            {
                "sys.node3.cpu_throttled_pct": 41.0,
                "sys.node3.cpu_throttled_s": 560.0,
                "sys.node3.cpu_available": "2.5",
            },
            3,
        )
        == quota
    )


def test_no_straggler_when_the_nodes_are_held_alike_or_nearly() -> None:
    """All nodes throttled alike: each node's quota is found, no straggler; a gap short of 20 points: none."""
    tags, metrics = _eight_nodes(dict.fromkeys(range(8), 41.0))
    assert _rules(tags, metrics) == ["cpu-quota"] * 8
    assert list(range(8)) == [f.node for f in _why.explain(tags, metrics)]
    tags, metrics = _eight_nodes({3: 19.9})
    assert _rules(tags, metrics) == ["cpu-quota"]


def test_each_node_is_judged_on_its_own_figures() -> None:
    """Node 0's idle GPU and node 1's busy cores are two nodes' figures: no input pipeline."""
    tags = {T.DIST_NODES: "2"}
    metrics = {
        T.GPU_BUSY_PCT: 23.0,
        T.CPU_UTIL_PCT: 40.0,
        "sys.node1.gpu_busy_pct": 90.0,
        "sys.node1.cpu_util_pct": 97.0,
    }
    (finding,) = _why.explain(tags, metrics)
    assert (finding.rule, finding.node) == ("gpu-idle", 0)
    assert finding.text.startswith("node 0 of 2: GPU waiting for work: busy 23 % of the run")
    assert finding.evidence == {T.GPU_BUSY_PCT: 23.0, T.CPU_UTIL_PCT: 40.0}


H100 = {
    T.CPU: "Intel(R) Xeon(R) Platinum 8480+",
    T.CPU_AVAILABLE: "26",
    T.GPU: "NVIDIA H100 80GB HBM3",
    T.GPU_COUNT: "1",
    T.GPU_POWER_LIMIT_W: "700",
    T.GPU_LINK: "PCIe Gen5 x16, NVLink 18 links",
    T.LEDGER: "everything counted",
    "mlflow.runName": "baseline",
}


def test_compare_two_runs_that_differ_by_one_fact() -> None:
    """One GPU's power limit 500 W, the other's 700 W, the same figures: the fact, and no limit."""
    capped = {**H100, T.GPU_POWER_LIMIT_W: "500", "mlflow.runName": "capped", T.LEDGER: "gpu busy: off"}
    comparison = _why.compare(capped, HEALTHY_METRICS, H100, HEALTHY_METRICS, 5400.0, 3600.0)
    assert comparison.facts == {T.GPU_POWER_LIMIT_W: ("500", "700")}
    assert comparison.limits == []
    assert comparison.duration_ratio == 1.5
    assert _why.format_comparison(comparison).splitlines() == [
        "Run A took 1.5x the time of run B (1.5 h vs 1.0 h).",
        "",
        "Facts that differ, the likeliest causes first:",
        "  tag                    run A  run B",
        "  sys.gpu_power_limit_w  500    700",
        "",
        "No counted limit differs: the rules found the same on both runs.",
    ]


def test_compare_two_runs_that_differ_by_one_counted_limit() -> None:
    """The same machine, one run stalled on storage: no fact differs, the storage limit does."""
    stalled = {**HEALTHY_METRICS, **CASES["storage"].metrics}
    comparison = _why.compare(H100, stalled, H100, HEALTHY_METRICS, 3600.0, 1800.0)
    assert comparison.facts == {}
    (change,) = comparison.limits
    assert (change.rule, change.node) == ("storage", None)
    assert change.b is None
    assert change.a is not None
    assert [
        "Run A took 2x the time of run B (1.0 h vs 30.0 min).",
        "",
        "Same facts: the runs' system tags do not differ.",
        "",
        "Limits that differ:",
        "  storage",
        f"    run A: {CASES['storage'].text}",
        "    run B: not found",
    ] == _why.format_comparison(comparison).splitlines()
    data = json.loads(json.dumps(_why.comparison_dict(comparison)))
    assert data["duration_s"] == {"a": 3600.0, "b": 1800.0}
    assert [{"rule": "storage", "node": None, "a": change.a._asdict(), "b": None}] == data["limits"]
    assert [change.a._asdict()] == data["findings"]["a"]


def test_a_limit_on_both_runs_differs_only_when_far_apart() -> None:
    """Found on both: listed when the shares are 10 points of the run apart or more, not at 9.9."""

    def quota(pct: float) -> dict[str, float]:
        return {**HEALTHY_METRICS, T.CPU_THROTTLED_PCT: pct}

    assert _why.compare(H100, quota(40.9), H100, quota(31.0)).limits == []
    (change,) = _why.compare(H100, quota(41.0), H100, quota(31.0)).limits
    assert (
        change.rule,
        change.a and change.a.strength,
        change.b and change.b.strength,
    ) == ("cpu-quota", 0.41, 0.31)
    assert None is _why.compare(H100, {}, H100, {}).duration_ratio


def test_the_docs_table_of_rules_is_the_rule_table() -> None:
    """docs/why.md carries the table of rules as the code builds it, and every rule's name."""
    page = (REPO / "docs" / "why.md").read_text()
    assert _why.rules_table() in page
    for name in _why.RULES:
        assert f"`{name}`" in page


def test_the_docs_examples_are_what_the_rules_print() -> None:
    """The two example outputs in docs/why.md are what why() gives for those figures."""
    page = (REPO / "docs" / "why.md").read_text()
    tags = {
        T.CPU_AVAILABLE: "2.5",
        T.GPU_COUNT: "1",
        T.LEDGER: "cpu energy: powercap energy_uj is readable by root only",
    }
    metrics = {
        T.CPU_THROTTLED_PCT: 41.0,
        T.CPU_THROTTLED_S: 560.0,
        T.CPU_UTIL_PCT: 97.0,
        T.GPU_BUSY_PCT: 23.0,
        T.STALL_IO_PCT: 35.0,
        T.IO_READ_GB: 410.0,
    }
    run = "3f2a9c1e0b7d4e5f8a6b1c2d3e4f5a6b"
    one = _why.Explanation(run, _why.explain(tags, metrics, 3600.0), tags, metrics, 3600.0)
    assert f"```text\n{one}\n```" in page
    capped = {T.GPU: "NVIDIA H100 80GB HBM3", T.GPU_COUNT: "8", T.GPU_POWER_LIMIT_W: "500"}
    full = {**capped, T.GPU_POWER_LIMIT_W: "700"}
    capped_metrics = {T.GPU_THROTTLE_POWER_PCT: 31.0, T.GPU_POWER_AVG_W: 495.0, T.GPU_BUSY_PCT: 92.0}
    full_metrics = {T.GPU_THROTTLE_POWER_PCT: 0.0, T.GPU_POWER_AVG_W: 610.0, T.GPU_BUSY_PCT: 94.0}
    comparison = _why.compare(capped, capped_metrics, full, full_metrics, 4920.0, 4080.0)
    two = _why.Explanation("3f2a9c1e", [], capped, capped_metrics, 4920.0, "91c0d2e3", comparison)
    assert f"```text\n{two}\n```" in page


def test_why_says_how_to_call_it() -> None:
    """A run id that is not a string, or both a store and a client: a TypeError that shows the call."""
    with pytest.raises(
        TypeError, match=r"why\(run_id=\.\.\.\) takes a run id string .* why\(run.info.run_id\)"
    ):
        mlflow_sysmetrics.why(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"why\(than=\.\.\.\) takes a run id string"):
        mlflow_sysmetrics.why("0" * 32, than=" ")
    with pytest.raises(TypeError, match="tracking_uri= or client=, not both"):
        mlflow_sysmetrics.why("0" * 32, tracking_uri="sqlite:///x.db", client=object())  # type: ignore[arg-type]


def test_stalls_read_from_the_hosts_psi_say_so() -> None:
    """A run whose ledger read /proc/pressure (cgroup v1, a hybrid host): the storage finding says it is the host's."""
    from mlflow_sysmetrics._why import explain

    tags = {T.LEDGER: f"cpu energy: no RAPL package zone in /sys/class/powercap; {T.LEDGER_HOST_STALLS}"}
    (finding,) = explain(tags, {T.STALL_IO_PCT: 35.0})
    assert finding.rule == "storage"
    assert finding.text.endswith("(the whole host's stalls: other processes' count too)")
    (own,) = explain({T.LEDGER: T.LEDGER_EVERYTHING_COUNTED}, {T.STALL_IO_PCT: 35.0})
    assert "whole host" not in own.text


@pytest.mark.parametrize(
    ("metrics", "rule"),
    [
        ({T.STALL_IO_PCT: 35.0}, "storage"),
        ({T.STALL_MEMORY_PCT: 15.0}, "memory-pressure"),
        ({T.STALL_CPU_PCT: 25.0}, "cpu-contention"),
    ],
)
def test_stalls_of_a_cgroup_shared_with_other_processes_say_so(metrics: dict[str, float], rule: str) -> None:
    """A run not alone in its cgroup (a login session's scope): each stall finding says the others count too."""
    from mlflow_sysmetrics._why import explain

    tags = {T.LEDGER: f"cpu energy: no RAPL package zone in /sys/class/powercap; {T.LEDGER_CGROUP_STALLS}"}
    (finding,) = explain(tags, metrics)
    assert rule == finding.rule
    assert finding.text.endswith("(the cgroup's stalls: other processes in it count too)")


def test_an_idle_gpu_beside_mostly_idle_cores_does_not_clear_the_cpu() -> None:
    """A single-threaded loader saturates one core of 32 (3 %): the finding does not say the CPU is not the limit."""
    (finding,) = _why.explain({T.CPU_AVAILABLE: "32"}, {T.GPU_BUSY_PCT: 20.0, T.CPU_UTIL_PCT: 3.1})
    assert finding.rule == "gpu-idle"
    assert "not the CPU" not in finding.text
    assert finding.text.endswith(
        "the usable cores averaged 3.1 % busy: not all of them; a single-threaded loader can still be "
        "the limit, as can storage, the network or other ranks"
    )


@pytest.mark.parametrize(("link", "share"), [("PCIe Gen4 x8", "50 %"), ("PCIe Gen3 x4", "25 %")])
def test_a_narrow_link_is_told_against_an_x16_card_only(link: str, share: str) -> None:
    """The tag is the trained width, not the card's: an x8 card (NVIDIA A2) is at full width, so the sentence says 'if'."""
    (finding,) = _why.explain({T.GPU_LINK: link}, {})
    assert finding.rule == "gpu-link"
    assert finding.strength == 0.0
    assert (
        f"GPU link {link}: {share} of the bandwidth of an x16 link, if the card is built for x16"
        == finding.text
    )


def test_a_cgroup_peak_with_its_page_cache_is_not_near_the_limit() -> None:
    """memory.peak holds the page cache, which fills a group to its limit: no memory-near-limit finding.

    Where the run stalled on memory, the memory-pressure finding says whose peak it gives.
    """
    tags = {T.MEMORY_GB: "64", T.MEMORY_LIMIT_GB: "8", T.LEDGER: T.LEDGER_CGROUP_MEMORY_PEAK}
    assert _rules(tags, {T.MEMORY_PEAK_GB: 7.9}) == []
    (finding,) = _why.explain(tags, {T.MEMORY_PEAK_GB: 7.9, T.STALL_MEMORY_PCT: 15.0})
    assert finding.rule == "memory-pressure"
    assert finding.text.endswith(
        "peak 7.9 GB of the container's 8 GB limit (the cgroup's, page cache included)"
    )
