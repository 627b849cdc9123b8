"""Consumer groups: one process per partition, spread over the consumer nodes by cores,
and the client settings the workers run with."""

from __future__ import annotations

from typing import Any

from consumers.settings import WORKER_CONSUMER_KEYS, WORKER_PRODUCER_KEYS
from infra.model.plan import ConsumerShare, Derived, GroupPlan, Settings, TopicPlan
from infra.model.security import connection
from infra.model.spec import Consumer, Node
from infra.model.topics import dlq_topic
from infra.model.topology import CONSUMER_METRICS_PORT, Topology

# Client defaults for a log pipeline; the worker and `produce` read these.
CLIENT_DEFAULTS: dict[str, Settings] = {
    "producer": {
        "acks": Derived(
            value=WORKER_PRODUCER_KEYS["acks"],
            why="set by the workers: acknowledged once every in-sync replica has it",
        ),
        "compression.type": Derived(
            value="lz4", why="log lines compress several-fold; lz4 costs the least CPU per byte"
        ),
        "linger.ms": Derived(
            value=20,
            why="wait up to 20 ms to fill a batch: fewer, larger, better-compressed requests",
        ),
        "batch.size": Derived(
            value=524288,
            why="512 KiB batches amortize requests at log rates and stay under the "
            "broker's 1 MiB message.max.bytes",
        ),
    },
    "consumer": {
        "fetch.min.bytes": Derived(
            value=65536, why="a fetch waits for 64 KiB: fewer round trips under load"
        ),
        "fetch.wait.max.ms": Derived(
            value=100, why="bounds the wait fetch.min.bytes adds when traffic is light"
        ),
        "max.poll.records": Derived(
            value=1000, why="records per worker batch: parsing, sink writes and commits amortize"
        ),
        "enable.auto.commit": Derived(
            value=WORKER_CONSUMER_KEYS["enable.auto.commit"],
            why="set by the workers: they commit after the sink acknowledges (at-least-once)",
        ),
        "auto.offset.reset": Derived(
            value="earliest", why="a new group starts at the oldest record: no log skipped"
        ),
    },
}
SESSION_TIMEOUT_MS = 10_000
SESSION_WHY = (
    "a dead worker's partitions move to the others within 10 s; heartbeats run on "
    "librdkafka's own thread, so long batches do not trip it"
)


def group_protocol(kafka_version: str) -> Settings:
    """The consumer group protocol the release runs best, and what it brings."""
    if kafka_version == "3.9":  # KIP-848 is a preview there
        return {
            "group.protocol": Derived(
                value="classic", why="Kafka 3.9's consumer protocol (KIP-848) is a preview"
            ),
            "partition.assignment.strategy": Derived(
                value="cooperative-sticky",
                why="a rebalance moves only the partitions that must move",
            ),
            "session.timeout.ms": Derived(value=SESSION_TIMEOUT_MS, why=SESSION_WHY),
        }
    return {
        "group.protocol": Derived(
            value="consumer",
            why="KIP-848 (GA in Kafka 4.0): the broker assigns, and a rebalance moves only "
            "the partitions that must move without stopping the other members; the session "
            "timeout is the brokers' group.consumer.session.timeout.ms",
        )
    }


def client_defaults(kind: str, kafka_version: str) -> Settings:
    """The plan's settings for a worker's producer or consumer on this release."""
    extra = group_protocol(kafka_version) if kind == "consumer" else {}
    return {**CLIENT_DEFAULTS[kind], **extra}


def client_settings(kind: str, overrides: dict[str, Any], kafka_version: str) -> Settings:
    settings = client_defaults(kind, kafka_version)
    for key, value in overrides.items():
        planned = f" (the plan would set {settings[key].value})" if key in settings else ""
        settings[key] = Derived(value=value, why=f"operator override in tuning.{kind}{planned}")
    return settings


def spread(total: int, capacity: list[int]) -> list[int]:
    """`total` items over slots in proportion to capacity, none above its capacity.

    Largest remainder, ties to the earlier slot: deterministic, and exact when
    total <= sum(capacity).
    """
    whole = sum(capacity)
    exact = [total * c / whole for c in capacity]
    shares = [min(int(e), c) for e, c in zip(exact, capacity, strict=True)]
    by_remainder = sorted(range(len(capacity)), key=lambda i: (-(exact[i] - int(exact[i])), i))
    for i in by_remainder:
        if sum(shares) == total:
            break
        if shares[i] < capacity[i]:
            shares[i] += 1
    return shares


def consumer_cores(topology: Topology) -> int:
    return sum(topology.cores[n.name] for n in topology.spec.with_role("consumer"))


def processes(consumer: Consumer, partitions: int, cores: int) -> Derived:
    if consumer.processes:
        return Derived(value=consumer.processes, why="set in the spec")
    if partitions <= cores:
        return Derived(
            value=partitions,
            why=f"= partitions of {consumer.topic} ({partitions}): one process per partition",
        )
    return Derived(
        value=cores,
        why=f"= consumer cores ({cores}) < partitions ({partitions}): "
        "one process per core, each owning several partitions",
    )


def user(topology: Topology, consumer: Consumer) -> str | None:
    """Each group connects as a user of its own name (with SASL)."""
    security = topology.spec.locks
    return consumer.group if security is not None and security.mechanism else None


def _metrics(topology: Topology, node: Node, index: int) -> dict[str, str]:
    """Where a share's supervisor serves metrics: on loopback locally; in its container on
    every interface, published on its Docker host."""
    published = topology.consumer_metrics_port(node, index)
    target = f"{topology.address(node)}:{published}"
    if topology.local:
        return {"metrics": target, "metrics_target": target}
    return {"metrics": f"0.0.0.0:{CONSUMER_METRICS_PORT}", "metrics_target": target}


def plan_groups(
    topology: Topology, topics: list[TopicPlan]
) -> tuple[list[GroupPlan], dict[str, list[ConsumerShare]]]:
    """The groups, and per node the shares of them it runs."""
    spec = topology.spec
    version = spec.cluster.kafka_version
    partitions_of = {t.name: int(t.partitions.value) for t in topics}
    consumer_nodes = spec.with_role("consumer")
    capacity = [topology.cores[n.name] for n in consumer_nodes]
    shares: dict[str, list[ConsumerShare]] = {n.name: [] for n in spec.nodes}
    groups = []
    for index, consumer in enumerate(spec.consumers):
        partitions = partitions_of[consumer.topic]
        count = processes(consumer, partitions, sum(capacity))
        n_processes = int(count.value)
        owned = [list(range(p, partitions, n_processes)) for p in range(n_processes)]
        start = 0
        for node, n in zip(consumer_nodes, spread(n_processes, capacity), strict=True):
            if n:
                shares[node.name].append(
                    ConsumerShare(
                        group=consumer.group,
                        processes=n,
                        partitions=owned[start : start + n],
                        status_file=topology.status_file(node, consumer.group),
                        sink=topology.sink(node, consumer.sink),
                        connection=connection(
                            topology, node, f"consumer:{consumer.group}", user(topology, consumer)
                        ),
                        **_metrics(topology, node, index),
                    )
                )
            start += n
        groups.append(
            GroupPlan(
                group=consumer.group,
                topic=consumer.topic,
                sink=consumer.sink,
                dlq=dlq_topic(consumer),
                partitions=partitions,
                processes=count,
                consumer=client_settings("consumer", spec.tuning.consumer, version),
                producer=client_settings("producer", spec.tuning.producer, version),
                user=user(topology, consumer),
            )
        )
    return groups, shares
