"""Topics: partitions, replication and configs, declared or implied by the groups."""

from __future__ import annotations

from infra.model.plan import Derived, Settings, TopicPlan
from infra.model.spec import Consumer, Topic
from infra.model.topology import Topology

DEFAULT_RETENTION_MS = 7 * 86_400_000


def replication_factor(brokers: int) -> Derived:
    reason = (
        "three copies keep data safe while one broker is down for maintenance"
        if brokers >= 3
        else "fewer brokers than three: one copy per broker"
    )
    return Derived(value=min(3, brokers), why=f"min(3, brokers={brokers}): {reason}")


def min_insync_replicas(rf: int) -> Derived:
    if rf == 1:
        return Derived(value=1, why="replication factor 1: the only replica")
    value = min(2, rf - 1)
    return Derived(
        value=value,
        why=f"min(2, rf-1) with rf={rf}: acks=all writes survive one replica being down",
    )


def dlq_topic(consumer: Consumer) -> str:
    return f"{consumer.topic}.dlq"


def _config(topic: Topic, rf: int) -> Settings:
    isr = (
        Derived(value=topic.min_insync_replicas, why="set in the spec")
        if topic.min_insync_replicas
        else min_insync_replicas(rf)
    )
    config: Settings = {"min.insync.replicas": isr}
    if topic.retention is not None:
        config["retention.ms"] = Derived(value=topic.retention, why="set in the spec")
    elif topic.retention_bytes is None:
        config["retention.ms"] = Derived(
            value=DEFAULT_RETENTION_MS, why="7 days: a week of logs can be replayed"
        )
    if topic.retention_bytes is not None:
        config["retention.bytes"] = Derived(
            value=topic.retention_bytes, why="set in the spec (per partition)"
        )
    if topic.compression:
        value = "uncompressed" if topic.compression == "none" else topic.compression
        config["compression.type"] = Derived(value=value, why="set in the spec")
    else:
        config["compression.type"] = Derived(
            value="producer",
            why="keep the producers' compressed batches as they arrive: no recompression",
        )
    return config


def plan_topic(topology: Topology, topic: Topic, origin: str) -> TopicPlan:
    brokers, cores = len(topology.brokers), topology.broker_cores
    if topic.partitions:
        partitions = Derived(value=topic.partitions, why="set in the spec")
    else:
        partitions = Derived(
            value=cores, why=f"one per broker core: the {brokers} broker(s) have {cores} cores"
        )
    rf = (
        Derived(value=topic.replication_factor, why="set in the spec")
        if topic.replication_factor
        else replication_factor(brokers)
    )
    return TopicPlan(
        name=topic.name,
        origin=origin,
        partitions=partitions,
        replication_factor=rf,
        config=_config(topic, int(rf.value)),
    )


def plan_topics(topology: Topology) -> list[TopicPlan]:
    """The spec's topics, then each group's sink and dead-letter topic not declared."""
    spec = topology.spec
    planned = [plan_topic(topology, t, "declared in the spec") for t in spec.topics]
    names = {t.name for t in planned}
    for consumer in spec.consumers:
        for name, role in ((consumer.sink_topic, "sink"), (dlq_topic(consumer), "dead letters")):
            if name and name not in names:
                names.add(name)
                origin = f"{role} of group {consumer.group}"
                planned.append(plan_topic(topology, Topic(name=name), origin))
    return planned
