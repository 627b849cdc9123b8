"""Where every node lives: ids, names, listener names, ports, addresses and paths.

`Topology` is computed once from the spec and a placement; the other planners ask it
how node X reaches service Y of node Z and where a node's files and data live.

- **docker**: each service is a container (`<cluster>-<node>`) on its node's Docker host.
  On one host the cluster talks over container names; across hosts over the hosts'
  addresses and published ports.
- **local**: each service is a process on this machine, bound to 127.0.0.1 only, with its
  files, data and log under `<out>/<node>/`. Every node gets its own block of ports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from infra.model.plan import Port
from infra.model.spec import Node, Spec

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
LISTENER_PURPOSE = {  # per placement, the reasons the listener settings give
    "docker": {
        "bind": "every interface of the container",
        INTERNAL: "for the cluster's containers",
        EXTERNAL: "for clients on the Docker host",
        CONTROLLER: "for the quorum",
        "advertised": "INTERNAL: how the cluster's containers reach this broker; "
        "EXTERNAL: the port published on its Docker host",
    },
    "local": {
        "bind": "loopback only: nothing outside this machine reaches the local runtime",
        INTERNAL: "for the cluster's processes",
        EXTERNAL: "for clients on this machine",
        CONTROLLER: "for the quorum",
        "advertised": "INTERNAL: how the cluster's processes reach this broker; "
        "EXTERNAL: how this machine's clients do",
    },
}
# Prometheus metrics: each Kafka and ZooKeeper JVM's JMX exporter agent, and each
# consumer group's supervisor (published like EXTERNAL, for a Prometheus on the host).
KAFKA_METRICS, ZOOKEEPER_METRICS = "kafka-metrics", "zookeeper-metrics"
CONSUMER_METRICS_PORT = 9404  # inside a consumer container
CONTAINER_PORTS = {
    INTERNAL: 9092,
    CONTROLLER: 9093,
    EXTERNAL: 9094,
    KAFKA_METRICS: 9404,
    ZOOKEEPER_METRICS: 9405,
    "zookeeper-client": 2181,
    "zookeeper-peer": 2888,
    "zookeeper-election": 3888,
}

# On its Docker host (or, locally, on this machine) the k-th node owns host ports
# BLOCK + 10k + offset, so node 0 publishes its client listener on 19092, node 1 on 19102.
PORT_BLOCK = 19090
LOCAL_PORT_BLOCK = 29090  # the local runtime's default: clear of a Docker stack's ports
# Consumer groups' metrics ports: the g-th group of the spec, on the k-th node of a host,
# at BLOCK - CONSUMER_METRICS_BELOW + 10k + g (so at most 10 groups); below the block, as
# above it the local block would reach the kernel's ephemeral ports.
CONSUMER_METRICS_BELOW = 1000
MAX_GROUPS = 10
FIRST_PORT = 1024  # below: ports only root may bind
PORT_OFFSETS = {
    "zookeeper-client": 1,
    EXTERNAL: 2,
    INTERNAL: 3,
    CONTROLLER: 4,
    KAFKA_METRICS: 5,
    ZOOKEEPER_METRICS: 6,
    "zookeeper-peer": 8,
    "zookeeper-election": 9,
}
MAX_PORT = 65535
LOOPBACK = "127.0.0.1"


def port_service(name: str) -> str:
    """Which of a node's services binds port `name`."""
    return "zookeeper" if name.startswith("zookeeper-") else "kafka"


def is_kafka_node(node: Node) -> bool:
    return bool({"broker", "controller"} & set(node.roles))


def assigned_ids(nodes: list[Node]) -> dict[str, int]:
    """Each node's `id:`, or its position among `nodes` from 1 (the spec rules refuse
    two nodes that would share one)."""
    return {n.name: n.id if n.id is not None else i + 1 for i, n in enumerate(nodes)}


def kafka_ids(spec: Spec) -> dict[str, int]:
    """KRaft node.id over broker and controller nodes; broker.id over brokers in
    ZooKeeper mode."""
    if spec.cluster.mode == "kraft":
        return assigned_ids([n for n in spec.nodes if is_kafka_node(n)])
    return assigned_ids(spec.with_role("broker"))


@dataclass(frozen=True)
class Placement:
    """Where the plan runs: Docker containers (what `pulumi up` makes), or processes on this
    machine (`up --local`, the tests), under `out_dir` and from port block `port_base`."""

    kind: Literal["docker", "local"] = "docker"
    out_dir: str = ""  # local: an absolute directory; each node gets <out_dir>/<node>/
    port_base: int = PORT_BLOCK
    stack: str = ""  # docker: the Pulumi stack provisioning it (part of the cluster id)

    @classmethod
    def local(cls, out_dir: str, port_base: int = LOCAL_PORT_BLOCK) -> Placement:
        return cls("local", out_dir, port_base)


DOCKER = Placement()


@dataclass(frozen=True)
class Topology:
    spec: Spec
    local_cores: int  # what `cores: auto` means on this machine
    placement: Placement = field(default=DOCKER)

    @property
    def local(self) -> bool:
        return self.placement.kind == "local"

    @cached_property
    def cores(self) -> dict[str, int]:
        return {n.name: self.local_cores if n.cores == "auto" else n.cores for n in self.spec.nodes}

    @cached_property
    def brokers(self) -> list[Node]:
        return self.spec.with_role("broker")

    @cached_property
    def broker_cores(self) -> int:
        return sum(self.cores[n.name] for n in self.brokers)

    @cached_property
    def spans_hosts(self) -> bool:
        """The cluster is on several Docker hosts (never so when run locally)."""
        return not self.local and len({n.host for n in self.spec.nodes}) > 1

    @cached_property
    def slots(self) -> dict[str, int]:
        """Each node's position among the nodes of its Docker host (locally: of the spec,
        as every node shares this machine)."""
        slots: dict[str, int] = {}
        per_host: dict[str, int] = {}
        for node in self.spec.nodes:
            host = "this machine" if self.local else node.host
            slots[node.name] = per_host.get(host, 0)
            per_host[host] = slots[node.name] + 1
        return slots

    @cached_property
    def node_ids(self) -> dict[str, int]:
        return kafka_ids(self.spec)

    @cached_property
    def zookeeper_ids(self) -> dict[str, int]:
        return assigned_ids(self.spec.with_role("zookeeper"))

    @cached_property
    def quorum(self) -> str:
        """controller.quorum.voters (KRaft) or zookeeper.connect: the same for every node."""
        if self.spec.cluster.mode == "kraft":
            return ",".join(
                f"{self.node_ids[c.name]}@{self.reach(c, CONTROLLER)}"
                for c in self.spec.with_role("controller")
            )
        return ",".join(self.reach(z, "zookeeper-client") for z in self.spec.with_role("zookeeper"))

    def host_port(self, node: Node, name: str) -> int:
        return self.placement.port_base + 10 * self.slots[node.name] + PORT_OFFSETS[name]

    def consumer_metrics_port(self, node: Node, index: int) -> int:
        """The host port of the spec's `index`-th consumer group's metrics on `node`."""
        return (
            self.placement.port_base - CONSUMER_METRICS_BELOW + 10 * self.slots[node.name] + index
        )

    def address(self, node: Node) -> str:
        """How clients and other hosts reach the node's Docker host (locally: loopback)."""
        if node.host == "local" or self.local:
            return LOOPBACK
        return node.host.split("://", 1)[1].rsplit("@", 1)[-1].split(":")[0]

    def publish_ip(self, node: Node) -> str:
        """The host interface published ports bind to: loopback on this machine."""
        return LOOPBACK if node.host == "local" or self.local else "0.0.0.0"

    def services(self, node: Node, groups: list[str]) -> dict[str, str]:
        """Service -> container. The node's first service is `<cluster>-<node>`, the others
        `<cluster>-<node>-<service>`; each consumer group it runs is a service of its own
        (`consumer:<group>`, container suffix `<group>`), as each runs its own supervisor."""
        roles = set(node.roles)
        services = ["kafka"] if is_kafka_node(node) else []
        services += ["zookeeper"] if "zookeeper" in roles else []
        services += [f"consumer:{group}" for group in groups]
        base = f"{self.spec.cluster.name}-{node.name}"
        return {
            s: base if i == 0 else f"{base}-{s.removeprefix('consumer:')}"
            for i, s in enumerate(services)
        }

    def container(self, node: Node, service: str) -> str:
        return self.services(node, [])[service]

    def reach(self, node: Node, name: str) -> str:
        """host:port at which the cluster's other services reach `name` on `node`."""
        if self.spans_hosts or self.local:
            return f"{self.address(node)}:{self.host_port(node, name)}"
        return f"{self.container(node, port_service(name))}:{CONTAINER_PORTS[name]}"

    def port_names(self, node: Node) -> list[str]:
        roles = set(node.roles)
        names = [INTERNAL, EXTERNAL] if "broker" in roles else []
        names += [CONTROLLER] if "controller" in roles else []
        names += [KAFKA_METRICS] if names else []
        names += (
            ["zookeeper-client", "zookeeper-peer", "zookeeper-election", ZOOKEEPER_METRICS]
            if "zookeeper" in roles
            else []
        )
        return names

    def bound_port(self, node: Node, name: str) -> int:
        """The port `name`'s service binds: its container's port, or locally the host's."""
        return self.host_port(node, name) if self.local else CONTAINER_PORTS[name]

    def ports(self, node: Node) -> list[Port]:
        ports = []
        for name in self.port_names(node):
            if self.local:
                port = self.host_port(node, name)
                ports.append(
                    Port(name=name, service=port_service(name), container=port, published=port)
                )
                continue
            published = None
            container = CONTAINER_PORTS[name]
            if name in (EXTERNAL, KAFKA_METRICS, ZOOKEEPER_METRICS) or self.spans_hosts:
                published = self.host_port(node, name)
                # ZooKeeper binds the peer ports its own server.N line names.
                if self.spans_hosts and name in ("zookeeper-peer", "zookeeper-election"):
                    container = published
            ports.append(
                Port(
                    name=name, service=port_service(name), container=container, published=published
                )
            )
        return ports

    # -- paths

    def node_dir(self, node: Node) -> str:
        return f"{self.placement.out_dir}/{node.name}"

    def config_dir(self, node: Node) -> str:
        """Where the node's rendered files are read from."""
        return self.node_dir(node) if self.local else CONFIG_DIR

    def data_dir(self, node: Node, service: str) -> str:
        if self.local:
            return f"{self.node_dir(node)}/{'data' if service == 'kafka' else service}"
        return DATA_DIRS[service]

    def sink(self, node: Node, sink: str) -> str:
        """A file sink as the share writes it: in its container (on a volume, see
        data_dir), or locally under the node's directory, never in this machine's /."""
        if self.local and sink.startswith("file:"):
            return f"file:{self.node_dir(node)}/sink{sink.removeprefix('file:')}"
        return sink

    @staticmethod
    def sink_dir(sink: str) -> str | None:
        """The directory a share's file sink (as `sink()` placed it) writes into."""
        if not sink.startswith("file:"):
            return None
        return sink.removeprefix("file:").rsplit("/", 1)[0] or "/"

    def status_file(self, node: Node, group: str) -> str:
        """Where a consumer group share's supervisor keeps its workers' partitions."""
        return f"{self.node_dir(node)}/status-{group}.json" if self.local else CONSUMER_STATUS_FILE
