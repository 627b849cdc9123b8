"""KafkaCluster: a container and a data volume per Kafka node, and the planned topics."""

from __future__ import annotations

import pulumi
import pulumi_kafka as kafka

from consumers.properties import to_property
from infra.model.plan import NodePlan, Plan
from infra.model.topology import CONFIG_DIR, CONTAINER_PORTS, CONTROLLER, EXTERNAL, INTERNAL
from infra.provision.components.service import Target, answers, service_container

SERVER_PROPERTIES = f"{CONFIG_DIR}/server.properties"


def kafka_image(plan: Plan) -> str:
    return f"apache/kafka:{plan.cluster.kafka_release}"


def kafka_command(plan: Plan) -> list[str]:
    """KRaft storage is formatted once (idempotent), then the broker runs as PID 1's child."""
    start = f"exec /opt/kafka/bin/kafka-server-start.sh {SERVER_PROPERTIES}"
    if plan.cluster.mode == "zookeeper":
        return ["bash", "-c", start]
    storage = (
        f"/opt/kafka/bin/kafka-storage.sh format --ignore-formatted "
        f"--cluster-id {plan.cluster.cluster_id} --config {SERVER_PROPERTIES}"
    )
    return ["bash", "-c", f"{storage} && {start}"]


def heap_env(node: NodePlan) -> str:
    """The planned heap, fixed (Xms = Xmx) so the JVM never resizes under load."""
    mb = node.heap_mb["kafka"].value
    return f"KAFKA_HEAP_OPTS=-Xms{mb}m -Xmx{mb}m"


def client_protocol(plan: Plan) -> str:
    """The security protocol of the brokers' EXTERNAL listener, which clients dial."""
    broker = next(n for n in plan.nodes if "broker" in n.roles)
    protocols = next(
        str(s["listener.security.protocol.map"].value)
        for s in broker.server_properties.values()
        if "listener.security.protocol.map" in s
    )
    return dict(pair.split(":", 1) for pair in protocols.split(","))[EXTERNAL]


# A size-prefixed ApiVersions request (api key 18, v0, correlation id 0, client "probe").
API_VERSIONS = r"\0\0\0\x0f\0\x12\0\0\0\0\0\x01\0\x05probe"


def health(node: NodePlan) -> list[str]:
    """Healthy means serving requests, not an open port: Kafka binds its listeners early
    but answers only once it has caught up with the cluster's metadata (a KRaft broker:
    once registered), so dependants (topics, consumers) wait for a cluster that works."""
    port = CONTAINER_PORTS[INTERNAL if "broker" in node.roles else CONTROLLER]
    return answers(port, API_VERSIONS, 'test "$(timeout 3 head -c 4 <&3 | wc -c)" = 4')


class KafkaCluster(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        target: Target,
        image: str,
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("kafka-log-cluster:index:KafkaCluster", name, None, opts)
        plan = target.plan
        nodes = [n for n in plan.nodes if "kafka" in n.containers]
        images = target.pulled(self, f"{name}-kafka-image", image, nodes)
        self.containers = [
            service_container(
                self,
                target,
                node,
                "kafka",
                image=images[node.host],
                command=kafka_command(plan),
                envs=[heap_env(node)],
                health=health(node),
                depends_on=depends_on,
            )
            for node in nodes
        ]
        # Topics as code, through the brokers' published listeners once they answer.
        # Every input the plan decides is set: the SDK defaults tls_enabled to true, which
        # a plaintext listener refuses (and KAFKA_ENABLE_TLS=false cannot turn off).
        protocol = client_protocol(plan)
        provider = kafka.Provider(
            f"{name}-kafka",
            bootstrap_servers=plan.cluster.bootstrap_servers.split(","),
            tls_enabled=protocol in ("SSL", "SASL_SSL"),
            skip_tls_verify=False,
            timeout=120,
            opts=pulumi.ResourceOptions(parent=self, depends_on=self.containers),
        )
        self.topics = [
            kafka.Topic(
                f"{name}-topic-{topic.name}",
                name=topic.name,
                partitions=int(topic.partitions.value),
                replication_factor=int(topic.replication_factor.value),
                config={key: to_property(d.value) for key, d in topic.config.items()},
                opts=pulumi.ResourceOptions(parent=self, provider=provider),
            )
            for topic in plan.topics
        ]
        self.register_outputs({"containers": [c.name for c in self.containers]})
