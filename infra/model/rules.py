"""The plan's cross-field rules: a pass over the spec and its plan that returns problems
and warnings, each naming the spec field to change. Rules that need only the spec live
in infra/model/spec_rules.py."""

from __future__ import annotations

from consumers.settings import OWNED_KEYS as WORKER_OWNED_KEYS
from infra.model.groups import consumer_cores
from infra.model.kafka_nodes import PLAN_OWNED_KEYS
from infra.model.plan import Plan
from infra.model.topics import replication_factor
from infra.model.topology import (
    CONSUMER_METRICS_BELOW,
    FIRST_PORT,
    MAX_GROUPS,
    MAX_PORT,
    PORT_OFFSETS,
    Topology,
)
from infra.problems import Found, Problem

LAST_PORT = max(PORT_OFFSETS, key=PORT_OFFSETS.__getitem__)  # a node's highest port


def _ports(topology: Topology) -> list[Problem]:
    spec, base = topology.spec, topology.placement.port_base
    problems = []
    for i, node in enumerate(spec.nodes):
        # Its consumer groups' metrics ports sit below the node ports, in a block as wide.
        if topology.host_port(node, LAST_PORT) > MAX_PORT or (
            topology.consumer_metrics_port(node, MAX_GROUPS - 1) >= base
        ):
            problems.append(
                Problem(
                    f"nodes[{i}].host",
                    f"too many nodes on Docker host {node.host!r}: the port range ends at "
                    f"{MAX_PORT}, and {CONSUMER_METRICS_BELOW // 10} nodes fit below the block",
                )
            )
    if spec.nodes and topology.consumer_metrics_port(spec.nodes[0], 0) < FIRST_PORT:
        problems.append(
            Problem(
                "--port-base",
                f"port block {base} puts its consumer groups' metrics below {FIRST_PORT}: "
                f"plan a block from {FIRST_PORT + CONSUMER_METRICS_BELOW} up",
            )
        )
    if len(spec.consumers) > MAX_GROUPS:
        problems.append(
            Problem(
                f"consumers[{MAX_GROUPS}]",
                f"at most {MAX_GROUPS} consumer groups: each node keeps {MAX_GROUPS} metrics "
                "ports for them; run further groups from another spec",
            )
        )
    return problems


def _tuning(topology: Topology) -> list[Problem]:
    tuning = topology.spec.tuning
    problems = [
        Problem(
            f"tuning.{kind}.{key}",
            "is set by the consumer workers: servers and group come from "
            "the plan, commits and acks carry at-least-once delivery; remove it",
        )
        for kind, owned in WORKER_OWNED_KEYS.items()
        for key in getattr(tuning, kind)
        if key in owned
    ]
    problems += [
        Problem(
            f"tuning.broker.{key}",
            "is decided by the plan (identity, listeners, storage or the "
            "one-partition-per-core rule); remove it",
        )
        for key in tuning.broker
        if key in PLAN_OWNED_KEYS
    ]
    return problems


def _topics(topology: Topology) -> list[Problem]:
    brokers = len(topology.brokers)
    problems = []
    for i, topic in enumerate(topology.spec.topics):
        where = f"topics[{i}]"
        rf = topic.replication_factor or int(replication_factor(brokers).value)
        if topic.replication_factor and topic.replication_factor > brokers:
            problems.append(
                Problem(
                    f"{where}.replication_factor",
                    f"{topic.replication_factor} exceeds the {brokers} broker(s) of this spec",
                )
            )
        isr = topic.min_insync_replicas
        if isr and (isr != 1 if rf == 1 else isr >= rf):
            rule = (
                "must be 1 when replication_factor is 1"
                if rf == 1
                else f"must be < replication_factor ({rf}) so a replica can fail"
            )
            problems.append(Problem(f"{where}.min_insync_replicas", f"{rule}, got {isr}"))
    return problems


def _processes(topology: Topology, plan: Plan) -> Found:
    found = Found()
    cores = consumer_cores(topology)
    partitions_of = {t.name: int(t.partitions.value) for t in plan.topics}
    for i, consumer in enumerate(topology.spec.consumers):
        wanted, partitions = consumer.processes, partitions_of[consumer.topic]
        if not wanted:
            continue
        if wanted > cores:
            found.problems.append(
                Problem(
                    f"consumers[{i}].processes",
                    f"{wanted} processes need as many cores on consumer nodes, "
                    f"which have {cores} (one process per core)",
                )
            )
        elif wanted > partitions:
            found.warnings.append(
                Problem(
                    f"consumers[{i}].processes",
                    f"{wanted} processes for {partitions} partitions leave "
                    f"{wanted - partitions} idle",
                )
            )
    for i, node in enumerate(plan.nodes):
        running = sum(s.processes for s in node.consumers)
        if "consumer" in node.roles and running > node.cores:
            found.warnings.append(
                Problem(
                    f"nodes[{i}]",
                    f"{node.name} runs {running} consumer processes on {node.cores} cores "
                    "across groups",
                )
            )
    return found


def _partition_default(topology: Topology) -> list[Problem]:
    """Combined nodes with different cores: a topic created without a count gets the
    num.partitions of whichever controller is active, so the default is not one number."""
    combined = [n for n in topology.spec.with_role("controller") if "broker" in n.roles]
    cores = sorted({topology.cores[n.name] for n in combined})
    if topology.spec.cluster.mode != "kraft" or len(cores) < 2:
        return []
    return [
        Problem(
            "nodes",
            "a topic created without a partition count gets the active controller's "
            f"num.partitions, and the combined nodes differ ({', '.join(map(str, cores))} "
            "cores): give every topic a count, or the controllers equal cores",
        )
    ]


def _container_names(plan: Plan) -> list[Problem]:
    """Docker names a container once per host: `<cluster>-<node>-<group>` of one node can be
    another node's `<cluster>-<node>` (node kafka running group parsers, node kafka-parsers)."""
    owner: dict[str, str] = {}
    problems = []
    for i, node in enumerate(plan.nodes):
        for service, name in node.containers.items():
            what = f"{node.name}'s {service.replace('consumer:', 'group ')}"
            if name in owner:
                problems.append(
                    Problem(
                        f"nodes[{i}].name",
                        f"container name {name} is both {owner[name]} and {what}; "
                        "rename the node or the group",
                    )
                )
            owner.setdefault(name, what)
    return problems


def _memory(plan: Plan) -> list[Problem]:
    """A node's containers must fit its memory: the others' limits, and Kafka's heap in
    what is left (the page cache takes whatever remains)."""
    problems = []
    for i, node in enumerate(plan.nodes):
        if not node.limits:
            continue
        need = {s: int(limit.memory_mb.value) for s, limit in node.limits.items() if s != "kafka"}
        if "kafka" in node.limits:
            need["kafka heap"] = int(node.heap_mb["kafka"].value)
        have = int(node.memory_gb * 1024)
        if sum(need.values()) > have:
            detail = ", ".join(f"{s.replace('consumer:', 'group ')} {mb}" for s, mb in need.items())
            problems.append(
                Problem(
                    f"nodes[{i}].memory_gb",
                    f"{node.name}'s containers need {sum(need.values())} MiB ({detail}) but the "
                    f"node has {have}: give it more memory or fewer consumer processes",
                )
            )
    return problems


def check_plan(topology: Topology, plan: Plan) -> Found:
    """Every problem and warning of a plan, in the order an operator fixes them."""
    found = Found(_ports(topology) + _tuning(topology) + _topics(topology) + _container_names(plan))
    found += Found(_memory(plan))
    return found + _processes(topology, plan) + Found(warnings=_partition_default(topology))
