"""What a plan is: every number of the cluster, each with its reason.

The models are frozen and serialise deterministically: the same spec gives
byte-identical JSON. `infra/model/planner.py` makes a plan from a spec; rendering,
provisioning and verification read it and decide nothing themselves.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from infra.kafka.catalog import KafkaVersion, Mode


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Derived(_Frozen):
    """A planned value and the rule (with its inputs) that produced it."""

    value: int | float | bool | str
    why: str


Settings = dict[str, Derived]


class Port(_Frozen):
    name: str
    service: str  # the container that binds it: "zookeeper" for ZooKeeper's, else "kafka"
    container: int
    published: int | None  # on the node's Docker host; None: reachable only in-network


class Limits(_Frozen):
    """A container's share of its node: a memory limit and a CPU weight."""

    memory_mb: Derived
    cpu_shares: Derived


class ConsumerShare(_Frozen):
    group: str
    processes: int
    partitions: list[list[int]]  # per process, the partitions it is expected to own
    status_file: str  # where its supervisor says which worker owns which partitions
    sink: str  # the group's sink as this share writes it (a file sink: where, on its node)
    connection: Settings  # librdkafka's security settings for both of its clients
    metrics: str  # HOST:PORT its supervisor serves Prometheus metrics on (in its container)
    metrics_target: str  # where a Prometheus on the operator's machine scrapes them


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
    config_dir: str  # where its services read their rendered files
    data_dirs: dict[str, str]  # per JVM service (kafka, zookeeper)
    heap_mb: dict[str, Derived]  # per JVM service
    limits: dict[str, Limits]  # per container (service); none for the local placement
    server_properties: dict[str, Settings]  # section title -> settings; empty: no Kafka
    zookeeper_properties: Settings
    consumers: list[ConsumerShare]
    secret_files: list[SecretFile]  # what its services read besides the rendered files
    principal: str | None  # its certificate's subject as Kafka's principal (TLS only)


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
    user: str | None  # the SASL user its workers connect as


class Acl(_Frozen):
    """One ALLOW rule for a user, as Kafka's admin API takes it."""

    resource: str  # topic, group or cluster
    pattern: str  # literal or prefixed
    name: str
    operation: str  # read, write, describe, ...
    why: str


class UserPlan(_Frozen):
    name: str
    why: str
    acls: list[Acl]  # empty for the admin: a super user needs none


class SecretFile(_Frozen):
    """A file of secrets a service reads (its content is generated, never planned)."""

    kind: str  # keystore, truststore, passwords
    service: str  # the node service (a key of NodePlan.containers) that reads it
    path: str


class SecurityPlan(_Frozen):
    tls: bool
    sasl: str | None  # SCRAM-SHA-512, SCRAM-SHA-256, or None
    acls: bool
    client_protocol: str  # security.protocol of the client listeners
    admin: str  # the inter-broker and admin principal (a super user)
    users: list[UserPlan]  # the admin first, then each group's, the ingest user, the spec's


class ClusterPlan(_Frozen):
    name: str
    placement: str  # docker: containers on the spec's Docker hosts; local: processes here
    kafka_version: KafkaVersion
    kafka_release: str
    mode: Mode
    cluster_id: str  # KRaft storage id, from the name and the stack: re-plans agree
    spans_hosts: bool
    bootstrap_servers: str  # for clients on the Docker hosts (published listeners)
    internal_bootstrap_servers: str  # for containers of the cluster


class Plan(_Frozen):
    cluster: ClusterPlan
    nodes: list[NodePlan]
    topics: list[TopicPlan]
    groups: list[GroupPlan]
    security: SecurityPlan | None  # None: every listener plaintext, no users

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"  # as json.dumps(indent=2), 8x faster

    def node(self, name: str) -> NodePlan:
        return next(n for n in self.nodes if n.name == name)
