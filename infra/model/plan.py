"""The plan: every number of the cluster, decided here once, each with its reason.

`build_plan(spec)` is a pure function of the spec (plus this machine's core count,
used only by `cores: auto`): the same spec gives byte-identical JSON. Rendering,
provisioning and verification read the plan and decide nothing themselves.
"""

from __future__ import annotations

import base64
import functools
import json
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict

from consumers.settings import OWNED_KEYS as WORKER_OWNED_KEYS
from consumers.settings import WORKER_CONSUMER_KEYS, WORKER_PRODUCER_KEYS
from infra.kafka.catalog import load as load_catalog
from infra.model.spec import Consumer, Node, Spec, Topic
from infra.problems import Problem, raise_if

# Where things live inside the containers (provisioning mounts and uploads here).
CONFIG_DIR = "/etc/kafka-log-cluster"
# The data directories the official apache/kafka and zookeeper images create for their
# unprivileged users, so a fresh named volume mounted there is writable by them.
KAFKA_DATA_DIR = "/var/lib/kafka/data"
ZOOKEEPER_DATA_DIR = "/data"
DATA_DIRS = {"kafka": KAFKA_DATA_DIR, "zookeeper": ZOOKEEPER_DATA_DIR}
# Each consumer container's supervisor keeps its workers' partitions here (for verify).
CONSUMER_STATUS_FILE = "/tmp/consumers-status.json"

# Listener names and the ports they bind inside a container.
INTERNAL, EXTERNAL, CONTROLLER = "INTERNAL", "EXTERNAL", "CONTROLLER"
LISTENER_PURPOSE = {
    INTERNAL: "for the cluster's containers",
    EXTERNAL: "for clients on the Docker host",
    CONTROLLER: "for the quorum",
}
CONTAINER_PORTS = {
    INTERNAL: 9092,
    CONTROLLER: 9093,
    EXTERNAL: 9094,
    "zookeeper-client": 2181,
    "zookeeper-peer": 2888,
    "zookeeper-election": 3888,
}


def port_service(name: str) -> str:
    """Which of a node's containers binds port `name`."""
    return "zookeeper" if name.startswith("zookeeper-") else "kafka"


# On its Docker host, the k-th node of that host owns host ports BLOCK + 10k + offset,
# so node 0 publishes its client listener on 19092, node 1 on 19102, and so on.
PORT_BLOCK = 19090
PORT_OFFSETS = {
    "zookeeper-client": 1,
    EXTERNAL: 2,
    INTERNAL: 3,
    CONTROLLER: 4,
    "zookeeper-peer": 8,
    "zookeeper-election": 9,
}
MAX_PORT = 65535

KAFKA_RELEASES = {"4.1": "4.1.1", "3.9": "3.9.1"}
DEFAULT_RETENTION_MS = 7 * 86_400_000
# Plan-owned broker keys: identity and topology, which an override would break.
PLAN_OWNED_KEYS = frozenset(
    {
        "node.id",
        "broker.id",
        "process.roles",
        "listeners",
        "advertised.listeners",
        "listener.security.protocol.map",
        "inter.broker.listener.name",
        "controller.listener.names",
        "controller.quorum.voters",
        "controller.quorum.bootstrap.servers",
        "zookeeper.connect",
        "log.dirs",
        "log.dir",
        "num.partitions",
    }
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Derived(_Frozen):
    """A planned value and the rule (with its inputs) that produced it."""

    value: int | bool | str
    why: str


Settings = dict[str, Derived]


class Port(_Frozen):
    name: str
    service: str  # the container that binds it: "zookeeper" for ZooKeeper's, else "kafka"
    container: int
    published: int | None  # on the node's Docker host; None: reachable only in-network


class ConsumerShare(_Frozen):
    group: str
    processes: int
    partitions: list[list[int]]  # per process, the partitions it is expected to own


class NodePlan(_Frozen):
    name: str
    host: str  # the spec's Docker host: local, ssh://..., tcp://...
    address: str  # how clients and other hosts reach that Docker host
    publish_ip: str  # the host interface published ports bind to
    cores: int
    memory_gb: float
    roles: list[str]
    node_id: int | None  # KRaft node.id, or broker.id in ZooKeeper mode
    zookeeper_id: int | None
    containers: dict[str, str]  # service (kafka, zookeeper, consumer) -> container name
    ports: list[Port]
    heap_mb: dict[str, Derived]  # per JVM service
    server_properties: dict[str, Settings]  # section title -> settings; empty: no Kafka
    zookeeper_properties: Settings
    consumers: list[ConsumerShare]


class TopicPlan(_Frozen):
    name: str
    origin: str
    partitions: Derived
    replication_factor: Derived
    config: Settings


class GroupPlan(_Frozen):
    group: str
    topic: str
    sink: str
    dlq: str
    partitions: int
    processes: Derived
    consumer: Settings
    producer: Settings


class ClusterPlan(_Frozen):
    name: str
    kafka_version: str
    kafka_release: str
    mode: str
    cluster_id: str  # KRaft storage id, derived from the name so re-plans agree
    spans_hosts: bool
    bootstrap_servers: str  # for clients on the Docker hosts (published listeners)
    internal_bootstrap_servers: str  # for containers of the cluster


class Plan(_Frozen):
    cluster: ClusterPlan
    nodes: list[NodePlan]
    topics: list[TopicPlan]
    groups: list[GroupPlan]

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2) + "\n"

    def node(self, name: str) -> NodePlan:
        return next(n for n in self.nodes if n.name == name)


# ------------------------------------------------------------- rules --


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


def heap_mb(memory_gb: float, service: str) -> Derived:
    """A bounded share of memory for a JVM, leaving the rest to the page cache."""
    floor, cap = {"broker": (512, 6144), "controller": (256, 1024), "zookeeper": (256, 2048)}[
        service
    ]
    memory_mb = int(memory_gb * 1024)
    value = min(cap, max(floor, memory_mb // 4), memory_mb // 2)
    return Derived(
        value=value,
        why=f"memory/4 of {memory_mb} MiB within [{floor}, {cap}] MiB and at most half: "
        "Kafka reads and writes through the page cache, which gets the rest",
    )


def broker_threads(cores: int, brokers: int, version: str) -> Settings:
    recovery_default = load_catalog(version).default("num.recovery.threads.per.data.dir")
    fetchers = (
        Derived(value=1, why="a single broker has nothing to replicate")
        if brokers == 1
        else Derived(
            value=max(1, cores // 4),
            why=f"max(1, cores/4) with {cores} cores: "
            "parallel replication without starving request handling",
        )
    )
    return {
        "num.network.threads": Derived(
            value=max(3, cores // 2),
            why=f"max(3, cores/2) with {cores} cores: sockets need less than request handling",
        ),
        "num.io.threads": Derived(
            value=max(8, 2 * cores),
            why=f"max(8, 2*cores) with {cores} cores: request handlers block on disk, "
            "so two per core keep every core busy",
        ),
        "num.recovery.threads.per.data.dir": Derived(
            value=max(recovery_default, cores),
            why=f"max(Kafka {version} default {recovery_default}, cores={cores}): "
            "log recovery after an unclean stop runs while nothing else does",
        ),
        "num.replica.fetchers": fetchers,
    }


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


# ------------------------------------------------------------ planner --


class _Planner:
    def __init__(self, spec: Spec, local_cores: int):
        self.spec = spec
        self.version = spec.cluster.kafka_version
        self.mode = spec.cluster.mode
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.cores = {n.name: local_cores if n.cores == "auto" else n.cores for n in spec.nodes}
        self.brokers = spec.with_role("broker")
        self.broker_cores = sum(self.cores[n.name] for n in self.brokers)
        self.spans_hosts = len({n.host for n in spec.nodes}) > 1
        self.slots = self._port_slots()
        kafka_nodes = [n for n in spec.nodes if {"broker", "controller"} & set(n.roles)]
        id_nodes = kafka_nodes if self.mode == "kraft" else self.brokers
        self.node_ids = {n.name: i + 1 for i, n in enumerate(id_nodes)}
        self.zk_ids = {n.name: i + 1 for i, n in enumerate(spec.with_role("zookeeper"))}
        # Kafka and ZooKeeper containers; build() adds each node's consumer groups.
        self.containers = {n.name: self._services(n, []) for n in spec.nodes}

    # -- addresses and ports

    def _port_slots(self) -> dict[str, int]:
        slots: dict[str, int] = {}
        per_host: dict[str, int] = {}
        for i, node in enumerate(self.spec.nodes):
            slots[node.name] = per_host.get(node.host, 0)
            per_host[node.host] = slots[node.name] + 1
            if PORT_BLOCK + 10 * slots[node.name] + 9 > MAX_PORT:
                self.problems.append(
                    Problem(
                        f"nodes[{i}].host",
                        f"too many nodes on Docker host {node.host!r}: "
                        f"the port range ends at {MAX_PORT}",
                    )
                )
        return slots

    def host_port(self, node: Node, name: str) -> int:
        return PORT_BLOCK + 10 * self.slots[node.name] + PORT_OFFSETS[name]

    @staticmethod
    def address(node: Node) -> str:
        if node.host == "local":
            return "127.0.0.1"
        return node.host.split("://", 1)[1].rsplit("@", 1)[-1].split(":")[0]

    def container(self, node: Node, service: str) -> str:
        return self.containers[node.name][service]

    def _services(self, node: Node, groups: list[str]) -> dict[str, str]:
        """Service -> container. The node's first service is `<cluster>-<node>`, the others
        `<cluster>-<node>-<service>`; each consumer group it runs is a service of its own
        (`consumer:<group>`, container suffix `<group>`), as each runs its own supervisor."""
        roles = set(node.roles)
        services = [
            s for s, role in (("kafka", "broker"), ("kafka", "controller")) if role in roles
        ]
        services = services[:1] + (["zookeeper"] if "zookeeper" in roles else [])
        services += [f"consumer:{group}" for group in groups]
        base = f"{self.spec.cluster.name}-{node.name}"
        return {
            s: base if i == 0 else f"{base}-{s.removeprefix('consumer:')}"
            for i, s in enumerate(services)
        }

    def reach(self, node: Node, name: str) -> str:
        """host:port at which other containers of the cluster reach `name` on `node`."""
        if self.spans_hosts:
            return f"{self.address(node)}:{self.host_port(node, name)}"
        return f"{self.container(node, port_service(name))}:{CONTAINER_PORTS[name]}"

    def ports(self, node: Node) -> list[Port]:
        roles = set(node.roles)
        names = []
        if "broker" in roles:
            names += [INTERNAL, EXTERNAL]
        if "controller" in roles:
            names.append(CONTROLLER)
        if "zookeeper" in roles:
            names += ["zookeeper-client", "zookeeper-peer", "zookeeper-election"]
        ports = []
        for name in names:
            published = None
            container = CONTAINER_PORTS[name]
            if name == EXTERNAL or self.spans_hosts:
                published = self.host_port(node, name)
                # ZooKeeper binds the peer ports its own server.N line names.
                if self.spans_hosts and name in ("zookeeper-peer", "zookeeper-election"):
                    container = published
            ports.append(
                Port(
                    name=name,
                    service=port_service(name),
                    container=container,
                    published=published,
                )
            )
        return ports

    # -- Kafka nodes

    def listeners(self, node: Node) -> Settings:
        roles = set(node.roles)
        names = ([INTERNAL, EXTERNAL] if "broker" in roles else []) + (
            [CONTROLLER] if "controller" in roles else []
        )
        settings: Settings = {
            "listeners": Derived(
                value=",".join(f"{n}://:{CONTAINER_PORTS[n]}" for n in names),
                why="bind every interface of the container; "
                + ", ".join(f"{n} {LISTENER_PURPOSE[n]}" for n in names),
            )
        }
        if "broker" in roles:
            settings["advertised.listeners"] = Derived(
                value=f"{INTERNAL}://{self.reach(node, INTERNAL)},"
                f"{EXTERNAL}://{self.address(node)}:{self.host_port(node, EXTERNAL)}",
                why="INTERNAL: how the cluster's containers reach this broker; "
                "EXTERNAL: the port published on its Docker host",
            )
        # A KRaft broker names the controller listener too: it dials the quorum through it.
        mapped = names + ([CONTROLLER] if self.mode == "kraft" and CONTROLLER not in names else [])
        settings["listener.security.protocol.map"] = Derived(
            value=",".join(f"{n}:PLAINTEXT" for n in mapped),
            why="named listeners need an explicit protocol; TLS/SASL are not planned yet",
        )
        if "broker" in roles:
            settings["inter.broker.listener.name"] = Derived(
                value=INTERNAL, why="replication stays on the cluster's own listener"
            )
        if self.mode == "kraft":
            settings["controller.listener.names"] = Derived(
                value=CONTROLLER, why="the quorum listener"
            )
            settings["controller.quorum.voters"] = self.quorum
        else:
            settings["zookeeper.connect"] = self.quorum
        return settings

    @functools.cached_property
    def quorum(self) -> Derived:
        """controller.quorum.voters (KRaft) or zookeeper.connect: one value for every node."""
        if self.mode == "kraft":
            controllers = self.spec.with_role("controller")
            return Derived(
                value=",".join(
                    f"{self.node_ids[c.name]}@{self.reach(c, CONTROLLER)}" for c in controllers
                ),
                why=f"static quorum of the {len(controllers)} controller node(s)",
            )
        zookeepers = self.spec.with_role("zookeeper")
        return Derived(
            value=",".join(self.reach(z, "zookeeper-client") for z in zookeepers),
            why=f"the ensemble of {len(zookeepers)} ZooKeeper node(s)",
        )

    def identity(self, node: Node) -> Settings:
        node_id = self.node_ids[node.name]
        if self.mode == "kraft":
            roles = [r for r in ("broker", "controller") if r in node.roles]
            return {
                "process.roles": Derived(value=",".join(roles), why="the node's roles in the spec"),
                "node.id": Derived(value=node_id, why="position among Kafka nodes in the spec"),
            }
        return {
            "broker.id": Derived(value=node_id, why="position among brokers in the spec"),
            "broker.id.generation.enable": Derived(
                value=False, why="ids are assigned by the plan, never generated"
            ),
        }

    def replication(self) -> Settings:
        rf = replication_factor(len(self.brokers))
        isr = min_insync_replicas(int(rf.value))
        return {
            "default.replication.factor": rf,
            "min.insync.replicas": isr,
            "offsets.topic.replication.factor": rf,
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": isr,
            "auto.create.topics.enable": Derived(
                value=False,
                why="every topic is planned; a mistyped name must fail, "
                "not create a topic with default settings",
            ),
        }

    def server_properties(self, node: Node) -> dict[str, Settings]:
        if not {"broker", "controller"} & set(node.roles):
            return {}
        cores = self.cores[node.name]
        storage_why = "the node's data volume"
        sections: dict[str, Settings] = {
            "Identity": self.identity(node),
            "Listeners": self.listeners(node),
            "Storage": {"log.dirs": Derived(value=KAFKA_DATA_DIR, why=storage_why)},
        }
        if "broker" in node.roles:
            sections[f"Sizing ({cores} cores, {node.memory_gb:g} GiB)"] = {
                "num.partitions": Derived(
                    value=cores,
                    why=f"= this broker's cores ({cores}): one partition per core",
                ),
                **broker_threads(cores, len(self.brokers), self.version),
            }
            sections["Replication"] = self.replication()
        return self._with_tuning(sections)

    def _with_tuning(self, sections: dict[str, Settings]) -> dict[str, Settings]:
        extra: Settings = {}
        for key, value in self.spec.tuning.broker.items():
            if key in PLAN_OWNED_KEYS:
                continue  # reported once, in tuning_problems()
            owner = next((s for s in sections.values() if key in s), None)
            planned = f" (the plan would set {owner[key].value})" if owner else ""
            derived = Derived(value=value, why=f"operator override in tuning.broker{planned}")
            (owner if owner is not None else extra)[key] = derived
        if extra:
            sections["Operator tuning"] = extra
        return sections

    def tuning_problems(self) -> None:
        for kind, owned in WORKER_OWNED_KEYS.items():
            for key in getattr(self.spec.tuning, kind):
                if key in owned:
                    self.problems.append(
                        Problem(
                            f"tuning.{kind}.{key}",
                            "is set by the consumer workers: servers and group come from "
                            "the plan, commits and acks carry at-least-once delivery; remove it",
                        )
                    )
        for key in self.spec.tuning.broker:
            if key in PLAN_OWNED_KEYS:
                self.problems.append(
                    Problem(
                        f"tuning.broker.{key}",
                        "is decided by the plan (identity, listeners, storage or the "
                        "one-partition-per-core rule); remove it",
                    )
                )

    # -- ZooKeeper nodes

    def zookeeper_properties(self, node: Node) -> Settings:
        if "zookeeper" not in node.roles:
            return {}
        ensemble = self.spec.with_role("zookeeper")
        settings: Settings = {
            "tickTime": Derived(value=2000, why="ZooKeeper's base time unit (ms)"),
            "initLimit": Derived(value=10, why="followers have 10 ticks to connect and sync"),
            "syncLimit": Derived(value=5, why="a follower more than 5 ticks behind is dropped"),
            "dataDir": Derived(value=ZOOKEEPER_DATA_DIR, why="the node's data volume"),
            "clientPort": Derived(value=CONTAINER_PORTS["zookeeper-client"], why="for brokers"),
            "autopurge.snapRetainCount": Derived(value=3, why="keep the last 3 snapshots"),
            "autopurge.purgeInterval": Derived(
                value=24, why="ZooKeeper never deletes old snapshots unless told (hours)"
            ),
            "4lw.commands.whitelist": Derived(
                value="ruok,srvr,mntr", why="health and status checks only"
            ),
            "admin.enableServer": Derived(value=False, why="no embedded Jetty on port 8080"),
        }
        if self.spans_hosts:
            settings["quorumListenOnAllIPs"] = Derived(
                value=True, why="peers are addressed by Docker host, not container"
            )
        for peer in ensemble:
            peer_port, election = (
                self.reach(peer, "zookeeper-peer"),
                self.reach(peer, "zookeeper-election").rsplit(":", 1)[1],
            )
            settings[f"server.{self.zk_ids[peer.name]}"] = Derived(
                value=f"{peer_port}:{election}", why=f"ensemble member {peer.name}"
            )
        return settings

    # -- topics and consumer groups

    def topic(self, topic: Topic, index: int | None, origin: str) -> TopicPlan:
        where = f"topics[{index}]" if index is not None else None
        brokers = len(self.brokers)
        if topic.partitions:
            partitions = Derived(value=topic.partitions, why="set in the spec")
        else:
            partitions = Derived(
                value=self.broker_cores,
                why=f"one per broker core: the {brokers} broker(s) have {self.broker_cores} cores",
            )
        if topic.replication_factor:
            rf = Derived(value=topic.replication_factor, why="set in the spec")
            if where and topic.replication_factor > brokers:
                self.problems.append(
                    Problem(
                        f"{where}.replication_factor",
                        f"{topic.replication_factor} exceeds the {brokers} broker(s) of this spec",
                    )
                )
        else:
            rf = replication_factor(brokers)
        rf_value = int(rf.value)
        if topic.min_insync_replicas:
            isr = Derived(value=topic.min_insync_replicas, why="set in the spec")
            bad = (
                topic.min_insync_replicas != 1
                if rf_value == 1
                else (topic.min_insync_replicas >= rf_value)
            )
            if where and bad:
                rule = (
                    "must be 1 when replication_factor is 1"
                    if rf_value == 1
                    else (f"must be < replication_factor ({rf_value}) so a replica can fail")
                )
                self.problems.append(
                    Problem(
                        f"{where}.min_insync_replicas",
                        f"{rule}, got {topic.min_insync_replicas}",
                    )
                )
        else:
            isr = min_insync_replicas(rf_value)
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
        return TopicPlan(
            name=topic.name,
            origin=origin,
            partitions=partitions,
            replication_factor=rf,
            config=config,
        )

    def topics(self) -> list[TopicPlan]:
        planned = [self.topic(t, i, "declared in the spec") for i, t in enumerate(self.spec.topics)]
        names = {t.name for t in planned}
        for consumer in self.spec.consumers:
            for name, role in (
                (consumer.sink_topic, "sink"),
                (dlq_topic(consumer), "dead letters"),
            ):
                if name and name not in names:
                    names.add(name)
                    planned.append(
                        self.topic(Topic(name=name), None, f"{role} of group {consumer.group}")
                    )
        return planned

    def groups(
        self, topics: list[TopicPlan]
    ) -> tuple[list[GroupPlan], dict[str, list[ConsumerShare]]]:
        partitions_of = {t.name: int(t.partitions.value) for t in topics}
        consumer_nodes = self.spec.with_role("consumer")
        capacity = [self.cores[n.name] for n in consumer_nodes]
        shares: dict[str, list[ConsumerShare]] = {n.name: [] for n in self.spec.nodes}
        groups = []
        for i, consumer in enumerate(self.spec.consumers):
            partitions = partitions_of[consumer.topic]
            processes = self._processes(i, consumer, partitions, sum(capacity))
            count = int(processes.value)
            owned = [list(range(p, partitions, count)) for p in range(count)]
            start = 0
            for node, n in zip(consumer_nodes, spread(count, capacity), strict=True):
                if n:
                    shares[node.name].append(
                        ConsumerShare(
                            group=consumer.group, processes=n, partitions=owned[start : start + n]
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
                    processes=processes,
                    consumer=client_settings("consumer", self.spec.tuning.consumer),
                    producer=client_settings("producer", self.spec.tuning.producer),
                )
            )
        for node in consumer_nodes:
            running = sum(s.processes for s in shares[node.name])
            if running > self.cores[node.name]:
                self.warnings.append(
                    Problem(
                        f"nodes[{self.spec.nodes.index(node)}]",
                        f"{node.name} runs {running} consumer processes on "
                        f"{self.cores[node.name]} cores across groups",
                    )
                )
        return groups, shares

    def _processes(self, i: int, consumer: Consumer, partitions: int, cores: int) -> Derived:
        if consumer.processes:
            if consumer.processes > cores:
                self.problems.append(
                    Problem(
                        f"consumers[{i}].processes",
                        f"{consumer.processes} processes need as many cores on consumer nodes, "
                        f"which have {cores} (one process per core)",
                    )
                )
            elif consumer.processes > partitions:
                self.warnings.append(
                    Problem(
                        f"consumers[{i}].processes",
                        f"{consumer.processes} processes for {partitions} partitions leave "
                        f"{consumer.processes - partitions} idle",
                    )
                )
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

    # -- the whole plan

    def heaps(self, node: Node) -> dict[str, Derived]:
        roles = set(node.roles)
        heaps = {}
        if "broker" in roles:
            heaps["kafka"] = heap_mb(node.memory_gb, "broker")
        elif "controller" in roles:
            heaps["kafka"] = heap_mb(node.memory_gb, "controller")
        if "zookeeper" in roles:
            heaps["zookeeper"] = heap_mb(node.memory_gb, "zookeeper")
        return heaps

    def build(self) -> Plan:
        self.tuning_problems()
        topics = self.topics()
        groups, shares = self.groups(topics)
        nodes = [
            NodePlan(
                name=n.name,
                host=n.host,
                address=self.address(n),
                publish_ip="127.0.0.1" if n.host == "local" else "0.0.0.0",
                cores=self.cores[n.name],
                memory_gb=n.memory_gb,
                roles=list(n.roles),
                node_id=self.node_ids.get(n.name),
                zookeeper_id=self.zk_ids.get(n.name),
                containers=self._services(n, [share.group for share in shares[n.name]]),
                ports=self.ports(n),
                heap_mb=self.heaps(n),
                server_properties=self.server_properties(n),
                zookeeper_properties=self.zookeeper_properties(n),
                consumers=shares[n.name],
            )
            for n in self.spec.nodes
        ]
        cluster = ClusterPlan(
            name=self.spec.cluster.name,
            kafka_version=self.version,
            kafka_release=KAFKA_RELEASES[self.version],
            mode=self.mode,
            cluster_id=cluster_id(self.spec.cluster.name),
            spans_hosts=self.spans_hosts,
            bootstrap_servers=",".join(
                f"{self.address(b)}:{self.host_port(b, EXTERNAL)}" for b in self.brokers
            ),
            internal_bootstrap_servers=",".join(self.reach(b, INTERNAL) for b in self.brokers),
        )
        return Plan(cluster=cluster, nodes=nodes, topics=topics, groups=groups)


def dlq_topic(consumer: Consumer) -> str:
    return f"{consumer.topic}.dlq"


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
        "partition.assignment.strategy": Derived(
            value="cooperative-sticky",
            why="a rebalance moves only the partitions that must move",
        ),
        "session.timeout.ms": Derived(
            value=10000,
            why="a dead worker's partitions move to the others within 10 s; heartbeats run "
            "on librdkafka's own thread, so long batches do not trip it",
        ),
    },
}


def client_settings(kind: str, overrides: dict[str, Any]) -> Settings:
    settings = dict(CLIENT_DEFAULTS[kind])
    for key, value in overrides.items():
        planned = f" (the plan would set {settings[key].value})" if key in settings else ""
        settings[key] = Derived(value=value, why=f"operator override in tuning.{kind}{planned}")
    return settings


def cluster_id(name: str) -> str:
    """A KRaft cluster id (base64url of 16 bytes, 22 characters) derived from the name."""
    raw = uuid.uuid5(uuid.NAMESPACE_URL, f"kafka-log-cluster:{name}").bytes
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def build_plan(spec: Spec, source: str, local_cores: int) -> tuple[Plan, list[Problem]]:
    """The plan and its warnings; InputError when a derived number breaks a rule."""
    planner = _Planner(spec, local_cores)
    plan = planner.build()
    raise_if(source, planner.problems)
    return plan, planner.warnings
