"""Bounds on every number an operator writes or the plan derives, each with its source.

Beyond a hard bound the spec is refused (one line naming the field, the bound and where
the figure comes from); beyond a soft one the plan warns. The checks run on the spec
before anything is planned, and the derived totals are computed arithmetically, so a
typo such as `cores: 1000000000000` costs nothing before it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.model.spec import Spec
from infra.problems import Found, Problem


@dataclass(frozen=True)
class Bound:
    hard: float
    hard_source: str  # why nothing beyond `hard` can be right
    soft: float | None = None
    soft_source: str = ""  # why a value beyond `soft` deserves a second look


# Thread counts and heap derive from cores and memory (infra/model/sizing.py), so these
# two bound them too.
CORES = Bound(
    hard=8192,
    hard_source="Linux on x86-64 runs at most 8,192 CPUs (CONFIG_NR_CPUS)",
    soft=768,
    soft_source="the largest two-socket servers sold in 2026 (2 x AMD EPYC 9965) "
    "have 768 hardware threads",
)
MEMORY_GB = Bound(
    hard=4 * 1024 * 1024,
    hard_source="x86-64 addresses at most 4 PiB of physical memory (52 bits)",
    soft=12 * 1024,
    soft_source="a two-socket AMD EPYC 9005 server holds at most 12 TiB",
)
CLUSTER_PARTITIONS = Bound(
    hard=2_000_000,
    hard_source="about 2 million is the most any published KRaft test reached",
    soft=200_000,
    soft_source="KIP-578 recommends at most 200,000 partitions per cluster",
)
BROKER_REPLICAS = Bound(
    hard=float("inf"),
    hard_source="",
    soft=4000,
    soft_source="KIP-578 recommends at most 4,000 partition replicas per broker",
)
KAFKA_LONG = 2**63 - 1  # retention.ms and retention.bytes are Java longs


def _number(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e18:
        return f"{int(value):,}"
    return f"{value:,g}"


def _above(value: float, bound: Bound, where: str, what: str, found: Found) -> None:
    if value > bound.hard:
        line = f"{what}{_number(value)} is more than {_number(bound.hard)}: {bound.hard_source}"
        found.problems.append(Problem(where, line))
    elif bound.soft is not None and value > bound.soft:
        line = f"{what}{_number(value)} is more than {_number(bound.soft)}: {bound.soft_source}"
        found.warnings.append(Problem(where, line))


def _nodes(spec: Spec, local_cores: int, found: Found) -> None:
    for i, node in enumerate(spec.nodes):
        cores = local_cores if node.cores == "auto" else node.cores
        _above(cores, CORES, f"nodes[{i}].cores", "", found)
        _above(node.memory_gb, MEMORY_GB, f"nodes[{i}].memory_gb", "", found)


def _partitions(spec: Spec, local_cores: int, found: Found) -> None:
    """Totals the plan would derive, from the numbers alone (no list per partition)."""
    brokers = spec.with_role("broker")
    if not brokers:
        return  # refused by the spec's own rules
    broker_cores = sum(local_cores if n.cores == "auto" else n.cores for n in brokers)
    declared = {t.name: t for t in spec.topics}
    implied = {
        name
        for c in spec.consumers
        for name in (c.sink_topic, f"{c.topic}.dlq")
        if name and name not in declared
    }
    default_rf = min(3, len(brokers))
    total = replicas = 0
    for topic in (*declared.values(), *(None for _ in implied)):
        partitions = topic.partitions if topic and topic.partitions else broker_cores
        total += partitions
        replicas += partitions * ((topic and topic.replication_factor) or default_rf)
    where = "topics" if spec.topics else "nodes"
    _above(total, CLUSTER_PARTITIONS, where, "the cluster's partitions: ", found)
    if total <= CLUSTER_PARTITIONS.hard:
        per_broker = replicas / len(brokers)
        _above(per_broker, BROKER_REPLICAS, where, "partition replicas per broker: ", found)


def _retention(spec: Spec, found: Found) -> None:
    for i, topic in enumerate(spec.topics):
        for field, value in (
            ("retention", topic.retention),
            ("retention_bytes", topic.retention_bytes),
        ):
            if value is not None and value > KAFKA_LONG:
                found.problems.append(
                    Problem(
                        f"topics[{i}].{field}",
                        f"{value:,} does not fit Kafka's 64-bit setting (at most {KAFKA_LONG:,})",
                    )
                )


def check_bounds(spec: Spec, local_cores: int) -> Found:
    found = Found()
    _nodes(spec, local_cores, found)
    if not found.problems:  # totals over absurd nodes would only repeat the same line
        _partitions(spec, local_cores, found)
    _retention(spec, found)
    return found
