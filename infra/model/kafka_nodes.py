"""A Kafka node's server.properties, one section per concern, each value with its reason.

Each section function decides for itself whether it applies to the node (a controller
gets no sizing section); `server_properties` keeps the sections that apply, in order.
"""

from __future__ import annotations

import base64
import uuid

from infra.kafka.catalog import load as load_catalog
from infra.model.groups import SESSION_TIMEOUT_MS, SESSION_WHY, group_protocol
from infra.model.plan import Derived, Settings
from infra.model.security import listener_protocol, security_settings
from infra.model.sizing import broker_threads
from infra.model.spec import Node
from infra.model.topics import min_insync_replicas, replication_factor
from infra.model.topology import (
    CONTROLLER,
    EXTERNAL,
    INTERNAL,
    LISTENER_PURPOSE,
    LOOPBACK,
    Topology,
    is_kafka_node,
)

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


def cluster_id(name: str, stack: str = "") -> str:
    """A KRaft cluster id (base64url of 16 bytes, 22 characters) derived from the name
    and the Pulumi stack, so re-plans agree and two stacks of one spec (dev, a CI run)
    are two clusters: a node of one refuses the other's metadata. Without a stack (the
    local runtime, `render`), from the name alone."""
    seed = f"kafka-log-cluster:{stack}/{name}" if stack else f"kafka-log-cluster:{name}"
    raw = uuid.uuid5(uuid.NAMESPACE_URL, seed).bytes
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _id_why(node: Node, among: str) -> str:
    if node.id is not None:
        return "its id: in the spec"
    return f"position among {among} in the spec (add id: to keep it when the list changes)"


def identity(topology: Topology, node: Node) -> Settings:
    node_id = topology.node_ids[node.name]
    if topology.spec.cluster.mode == "kraft":
        roles = [r for r in ("broker", "controller") if r in node.roles]
        return {
            "process.roles": Derived(value=",".join(roles), why="the node's roles in the spec"),
            "node.id": Derived(value=node_id, why=_id_why(node, "Kafka nodes")),
        }
    return {
        "broker.id": Derived(value=node_id, why=_id_why(node, "brokers")),
        "broker.id.generation.enable": Derived(
            value=False, why="ids are assigned by the plan, never generated"
        ),
    }


def quorum(topology: Topology) -> Derived:
    """controller.quorum.voters (KRaft) or zookeeper.connect: one value for every node."""
    spec = topology.spec
    if spec.cluster.mode == "kraft":
        count = len(spec.with_role("controller"))
        return Derived(
            value=topology.quorum,
            why=f"static quorum of the {count} controller node(s); every release here runs it, "
            "and a dynamic quorum (KIP-853) is chosen when storage is formatted, not later",
        )
    count = len(spec.with_role("zookeeper"))
    return Derived(value=topology.quorum, why=f"the ensemble of {count} ZooKeeper node(s)")


def listeners(topology: Topology, node: Node) -> Settings:
    kraft = topology.spec.cluster.mode == "kraft"
    roles = set(node.roles)
    names = ([INTERNAL, EXTERNAL] if "broker" in roles else []) + (
        [CONTROLLER] if "controller" in roles else []
    )
    purpose = LISTENER_PURPOSE[topology.placement.kind]
    bind = LOOPBACK if topology.local else ""
    settings: Settings = {
        "listeners": Derived(
            value=",".join(f"{n}://{bind}:{topology.bound_port(node, n)}" for n in names),
            why=f"bind {purpose['bind']}; " + ", ".join(f"{n} {purpose[n]}" for n in names),
        )
    }
    if "broker" in roles:
        settings["advertised.listeners"] = Derived(
            value=f"{INTERNAL}://{topology.reach(node, INTERNAL)},"
            f"{EXTERNAL}://{topology.address(node)}:{topology.host_port(node, EXTERNAL)}",
            why=purpose["advertised"],
        )
    # A KRaft broker names the controller listener too: it dials the quorum through it.
    mapped = names + ([CONTROLLER] if kraft and CONTROLLER not in names else [])
    security = topology.spec.locks
    settings["listener.security.protocol.map"] = Derived(
        value=",".join(f"{n}:{listener_protocol(security, n)}" for n in mapped),
        why="named listeners need an explicit protocol; "
        + ("as security: plans them" if security else "the spec opts out of security"),
    )
    if "broker" in roles:
        settings["inter.broker.listener.name"] = Derived(
            value=INTERNAL, why="replication stays on the cluster's own listener"
        )
    if kraft:
        settings["controller.listener.names"] = Derived(value=CONTROLLER, why="the quorum listener")
        settings["controller.quorum.voters"] = quorum(topology)
    else:
        settings["zookeeper.connect"] = quorum(topology)
    return settings


def storage(topology: Topology, node: Node) -> Settings:
    where = "the node's data directory" if topology.local else "the node's data volume"
    return {"log.dirs": Derived(value=topology.data_dir(node, "kafka"), why=where)}


def sizing(topology: Topology, node: Node) -> Settings:
    if "broker" not in node.roles:
        return {}
    cores = topology.cores[node.name]
    applies = (
        "; the active controller's value applies to a topic created without a count"
        if "controller" in node.roles
        else ""
    )
    return {
        "num.partitions": Derived(
            value=cores, why=f"= this broker's cores ({cores}): one partition per core{applies}"
        ),
        **broker_threads(cores, len(topology.brokers), topology.spec.cluster.kafka_version),
    }


def topic_defaults(topology: Topology, node: Node) -> Settings:
    """In KRaft the active controller fills in what CreateTopics leaves out (partitions,
    replication), from its own config: a controller without the broker role would
    otherwise give such a topic Kafka's default of one partition."""
    if set(node.roles) != {"controller"}:
        return {}
    brokers, cores = len(topology.brokers), topology.broker_cores
    return {
        "num.partitions": Derived(
            value=cores,
            why="the active controller sets the partitions of a topic created without a "
            f"count: one per broker core, as planned topics get ({brokers} broker(s), "
            f"{cores} cores)",
        ),
        "default.replication.factor": replication_factor(brokers),
    }


def replication(topology: Topology, node: Node) -> Settings:
    if "broker" not in node.roles:
        return {}
    rf = replication_factor(len(topology.brokers))
    isr = min_insync_replicas(int(rf.value))
    # Share groups (KIP-932) keep their state in a topic of their own, whose default
    # replication of 3 fewer brokers cannot meet: set where the release has the keys.
    catalog = load_catalog(topology.spec.cluster.kafka_version)
    share = "share.coordinator.state.topic"
    shares = (
        {f"{share}.replication.factor": rf, f"{share}.min.isr": isr}
        if f"{share}.replication.factor" in catalog.keys
        else {}
    )
    return {
        "default.replication.factor": rf,
        "min.insync.replicas": isr,
        "offsets.topic.replication.factor": rf,
        "transaction.state.log.replication.factor": rf,
        "transaction.state.log.min.isr": isr,
        **shares,
        "auto.create.topics.enable": Derived(
            value=False,
            why="every topic is planned; a mistyped name must fail, "
            "not create a topic with default settings",
        ),
    }


HEARTBEAT_MS = 1_000


def consumer_groups(topology: Topology, node: Node) -> Settings:
    """KIP-848 groups take their session timeout and heartbeat from the brokers."""
    protocol = group_protocol(topology.spec.cluster.kafka_version)["group.protocol"].value
    if "broker" not in node.roles or protocol != "consumer":
        return {}
    return {
        "group.consumer.session.timeout.ms": Derived(
            value=SESSION_TIMEOUT_MS, why=f"the consumer protocol's: {SESSION_WHY}"
        ),
        "group.consumer.min.session.timeout.ms": Derived(
            value=SESSION_TIMEOUT_MS, why="the floor (45 s by default) allows the plan's 10 s"
        ),
        # Measured: with the default 5 s a survivor took over 10.9 s after a 6 s session.
        "group.consumer.heartbeat.interval.ms": Derived(
            value=HEARTBEAT_MS,
            why="a survivor learns of a dead member's partitions at its next heartbeat: "
            "every second keeps a takeover within the session timeout plus a second",
        ),
        "group.consumer.min.heartbeat.interval.ms": Derived(
            value=HEARTBEAT_MS, why="the floor (5 s by default) allows the plan's 1 s"
        ),
    }


def _with_tuning(topology: Topology, sections: dict[str, Settings]) -> dict[str, Settings]:
    """The operator's tuning.broker: a planned key is replaced where it stands (its reason
    says what the plan would have set), any other key goes to a section of its own.
    Plan-owned keys are refused by the rules pass and left out here."""
    extra: Settings = {}
    for key, value in topology.spec.tuning.broker.items():
        if key in PLAN_OWNED_KEYS:
            continue
        owner = next((s for s in sections.values() if key in s), None)
        planned = f" (the plan would set {owner[key].value})" if owner else ""
        derived = Derived(value=value, why=f"operator override in tuning.broker{planned}")
        (owner if owner is not None else extra)[key] = derived
    if extra:
        sections["Operator tuning"] = extra
    return sections


def server_properties(topology: Topology, node: Node) -> dict[str, Settings]:
    """Section title -> settings; empty for a node that runs no Kafka."""
    if not is_kafka_node(node):
        return {}
    sizing_title = f"Sizing ({topology.cores[node.name]} cores, {node.memory_gb:g} GiB)"
    sections = {
        "Identity": identity(topology, node),
        "Listeners": listeners(topology, node),
        "Storage": storage(topology, node),
        sizing_title: sizing(topology, node),
        "Topic defaults": topic_defaults(topology, node),
        "Replication": replication(topology, node),
        "Consumer groups": consumer_groups(topology, node),
        "Security": security_settings(topology, node),
    }
    return _with_tuning(topology, {title: s for title, s in sections.items() if s})
