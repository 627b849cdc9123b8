"""The planner: a spec in, a plan out, every number decided once with its reason.

`build_plan(spec)` is a pure function of the spec (plus this machine's core count,
used only by `cores: auto`): the same spec gives byte-identical JSON. Each concern has
its module (topology, kafka_nodes, zookeeper, topics, groups, sizing); the rules pass
(rules.py) then checks the derived numbers and says which spec field to change.
"""

from __future__ import annotations

from infra.kafka.releases import RELEASES
from infra.model.bounds import check_bounds
from infra.model.groups import plan_groups
from infra.model.kafka_nodes import cluster_id, server_properties
from infra.model.plan import ClusterPlan, ConsumerShare, Derived, Limits, NodePlan, Plan
from infra.model.rules import check_plan
from infra.model.security import plan_security, principal, secret_files
from infra.model.sizing import (
    consumer_memory,
    cpu_shares,
    heap_mb,
    kafka_memory,
    local_heap,
    zookeeper_memory,
)
from infra.model.spec import Node, Spec
from infra.model.topics import plan_topics
from infra.model.topology import DOCKER, EXTERNAL, INTERNAL, Placement, Topology
from infra.model.zookeeper import zookeeper_properties
from infra.problems import Problem, raise_if


def heaps(topology: Topology, node: Node) -> dict[str, Derived]:
    roles = set(node.roles)
    found = {}
    if "broker" in roles:
        found["kafka"] = heap_mb(node.memory_gb, "broker")
    elif "controller" in roles:
        found["kafka"] = heap_mb(node.memory_gb, "controller")
    if "zookeeper" in roles:
        found["zookeeper"] = heap_mb(node.memory_gb, "zookeeper")
    if topology.local:
        return {service: local_heap(heap) for service, heap in found.items()}
    return found


def data_dirs(
    topology: Topology, node: Node, services: dict[str, str], shares: list[ConsumerShare]
) -> dict[str, str]:
    """Per service, the directory its data lives in: a JVM's data, a file sink's output,
    each kept on a volume in Docker so a replaced container loses nothing."""
    found: dict[str, str] = {}
    for service in ("kafka", "zookeeper"):
        if service in services:
            found[service] = topology.data_dir(node, service)
    for share in shares:
        if directory := topology.sink_dir(share.sink):
            found[f"consumer:{share.group}"] = directory
    return found


def limits(
    topology: Topology, node: Node, heaps_mb: dict[str, Derived], shares: list[ConsumerShare]
) -> dict[str, Limits]:
    """Each container's share of the node (Docker only: local processes run unconfined)."""
    if topology.local:
        return {}
    cores = topology.cores[node.name]
    found = {
        f"consumer:{s.group}": Limits(
            memory_mb=consumer_memory(s.processes),
            cpu_shares=cpu_shares(s.processes, f"{s.processes} worker(s)"),
        )
        for s in shares
    }
    if "zookeeper" in heaps_mb:
        found["zookeeper"] = Limits(
            memory_mb=zookeeper_memory(int(heaps_mb["zookeeper"].value)),
            cpu_shares=cpu_shares(cores, "ZooKeeper"),
        )
    if "kafka" in heaps_mb:
        others = {s: int(limit.memory_mb.value) for s, limit in found.items()}
        found["kafka"] = Limits(
            memory_mb=kafka_memory(int(node.memory_gb * 1024), others),
            cpu_shares=cpu_shares(cores, "Kafka"),
        )
    return found


def _cluster(topology: Topology) -> ClusterPlan:
    spec = topology.spec
    return ClusterPlan(
        name=spec.cluster.name,
        placement=topology.placement.kind,
        kafka_version=spec.cluster.kafka_version,
        kafka_release=RELEASES[spec.cluster.kafka_version].version,
        mode=spec.cluster.mode,
        cluster_id=cluster_id(spec.cluster.name, topology.placement.stack),
        spans_hosts=topology.spans_hosts,
        bootstrap_servers=",".join(
            f"{topology.address(b)}:{topology.host_port(b, EXTERNAL)}" for b in topology.brokers
        ),
        internal_bootstrap_servers=",".join(topology.reach(b, INTERNAL) for b in topology.brokers),
    )


def make_plan(topology: Topology) -> Plan:
    topics = plan_topics(topology)
    groups, shares = plan_groups(topology, topics)
    nodes = []
    for n in topology.spec.nodes:
        services = topology.services(n, [share.group for share in shares[n.name]])
        node_heaps = heaps(topology, n)
        nodes.append(
            NodePlan(
                name=n.name,
                host=n.host,
                address=topology.address(n),
                publish_ip=topology.publish_ip(n),
                cores=topology.cores[n.name],
                memory_gb=n.memory_gb,
                roles=list(n.roles),
                node_id=topology.node_ids.get(n.name),
                zookeeper_id=topology.zookeeper_ids.get(n.name),
                containers=services,
                ports=topology.ports(n),
                config_dir=topology.config_dir(n),
                data_dirs=data_dirs(topology, n, services, shares[n.name]),
                heap_mb=node_heaps,
                limits=limits(topology, n, node_heaps, shares[n.name]),
                server_properties=server_properties(topology, n),
                zookeeper_properties=zookeeper_properties(topology, n),
                consumers=shares[n.name],
                secret_files=secret_files(topology, n, services),
                principal=principal(topology, n),
            )
        )
    return Plan(
        cluster=_cluster(topology),
        nodes=nodes,
        topics=topics,
        groups=groups,
        security=plan_security(topology, groups),
    )


def build_plan(
    spec: Spec, source: str, local_cores: int, placement: Placement = DOCKER
) -> tuple[Plan, list[Problem]]:
    """The plan and its warnings; InputError when a number is out of bounds (checked
    before planning) or a derived number breaks a rule."""
    bounded = check_bounds(spec, local_cores)
    raise_if(source, bounded.problems)
    topology = Topology(spec, local_cores, placement)
    plan = make_plan(topology)
    found = check_plan(topology, plan)
    raise_if(source, found.problems)
    return plan, bounded.warnings + found.warnings
