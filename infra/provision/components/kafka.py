"""KafkaCluster: a container and a data volume per Kafka node, the planned topics, and
a secured plan's users and ACLs."""

from __future__ import annotations

import pulumi
import pulumi_kafka as kafka

from consumers.properties import to_property
from infra.model.plan import NodePlan, Plan, SecurityPlan
from infra.model.security import ADMIN, PASSWORDS, SCRAM_ITERATIONS, scram_credential
from infra.model.topology import CONFIG_DIR, CONTAINER_PORTS, CONTROLLER, INTERNAL
from infra.provision.components.secrets import ClusterSecrets
from infra.provision.components.service import Target, answers, service_container

SERVER_PROPERTIES = f"{CONFIG_DIR}/server.properties"
BIN = "/opt/kafka/bin"
KAFKA_UID = "1000"  # appuser, in apache/kafka as in scripts/images/kafka


def kafka_image(plan: Plan) -> str:
    return f"apache/kafka:{plan.cluster.kafka_release}"


def _admin_password(node: NodePlan) -> str:
    """A shell expansion reading the admin's password from the node's secret file when
    the container starts, so that no declared command holds it."""
    (path,) = [f.path for f in node.secret_files if f.kind == PASSWORDS and f.service == "kafka"]
    return f"$(sed -n 's/^admin\\.password=//p' {path})"


def _setting(node: NodePlan, key: str) -> str:
    return next(str(s[key].value) for s in node.server_properties.values() if key in s)


def kafka_command(plan: Plan, node: NodePlan) -> list[str]:
    """KRaft storage is formatted once (idempotent), then the broker runs as PID 1's child.
    With SASL the admin's credential is there before any broker logs in to another: at
    format (KRaft), or written to ZooKeeper first (every broker does it; it is a put)."""
    steps = []
    security = plan.security
    admin = None
    if security is not None and security.sasl:
        admin = _admin_password(node)
    if plan.cluster.mode == "kraft":
        storage = (
            f"{BIN}/kafka-storage.sh format --ignore-formatted "
            f"--cluster-id {plan.cluster.cluster_id} --config {SERVER_PROPERTIES}"
        )
        if admin is not None:
            assert security is not None
            storage += f' --add-scram "{scram_credential(security, admin, ADMIN)}"'
        steps.append(storage)
    elif admin is not None:
        assert security is not None
        steps.append(
            f"{BIN}/kafka-configs.sh --zookeeper {_setting(node, 'zookeeper.connect')} "
            f'--alter --add-config "{scram_credential(security, admin)}" '
            f"--entity-type users --entity-name {ADMIN} >/dev/null"
        )
    steps.append(f"exec {BIN}/kafka-server-start.sh {SERVER_PROPERTIES}")
    return ["bash", "-c", " && ".join(steps)]


def heap_env(node: NodePlan) -> str:
    """The planned heap, fixed (Xms = Xmx) so the JVM never resizes under load."""
    mb = node.heap_mb["kafka"].value
    return f"KAFKA_HEAP_OPTS=-Xms{mb}m -Xmx{mb}m"


# A size-prefixed ApiVersions request (api key 18, v0, correlation id 0, client "probe").
API_VERSIONS = r"\0\0\0\x0f\0\x12\0\0\0\0\0\x01\0\x05probe"


def _tls_client_hello() -> bytes:
    """A fixed TLS 1.2 ClientHello a Kafka TLS listener answers with its ServerHello:
    ECDHE AES-GCM suites on P-256 (the cluster's keys are P-256), no session, no SNI."""

    def sized(data: bytes, width: int = 2) -> bytes:
        return len(data).to_bytes(width, "big") + data

    def extension(kind: int, body: bytes) -> bytes:
        return kind.to_bytes(2, "big") + sized(body)

    suites = bytes.fromhex("c02bc02fc02cc030")
    extensions = (
        extension(0x000A, sized(bytes.fromhex("0017")))  # supported groups: secp256r1
        + extension(0x000B, b"\x01\x00")  # EC point formats: uncompressed
        + extension(0x000D, sized(bytes.fromhex("040308040401")))  # signature algorithms
    )
    hello = b"\x03\x03" + bytes(32) + b"\x00" + sized(suites) + b"\x01\x00" + sized(extensions)
    handshake = b"\x01" + sized(hello, 3)
    return b"\x16\x03\x01" + sized(handshake)


TLS_HELLO = "".join(f"\\x{byte:02x}" for byte in _tls_client_hello())


def health(plan: Plan, node: NodePlan) -> list[str]:
    """Healthy means serving requests, not an open port: Kafka binds its listeners early
    but answers only once it has caught up with the cluster's metadata (a KRaft broker:
    once registered), so dependants (topics, consumers) wait for a cluster that works.
    A TLS listener is asked for its ServerHello (a handshake record, 0x16) instead."""
    port = CONTAINER_PORTS[INTERNAL if "broker" in node.roles else CONTROLLER]
    if plan.security is not None and plan.security.tls:
        reply = 'test "$(timeout 3 head -c 1 <&3 | od -An -tx1 | tr -d " ")" = 16'
        return answers(port, TLS_HELLO, reply)
    return answers(port, API_VERSIONS, 'test "$(timeout 3 head -c 4 <&3 | wc -c)" = 4')


def provider_login(security: SecurityPlan | None, secrets: ClusterSecrets | None) -> dict:
    """The topics provider's inputs to log in as the admin; every one is set, since the
    SDK defaults tls_enabled to true, which a plaintext listener refuses (and
    KAFKA_ENABLE_TLS=false cannot turn off)."""
    tls = security is not None and security.tls
    login: dict = {"tls_enabled": tls, "skip_tls_verify": False}
    if security is None or secrets is None:
        return login
    if tls:
        login["ca_cert"] = secrets.ca_pem
    if security.sasl:
        login |= {
            # terraform-provider-kafka spells SCRAM-SHA-512 "scram-sha512"
            "sasl_mechanism": security.sasl.lower().replace("sha-", "sha"),
            "sasl_username": ADMIN,
            "sasl_password": secrets.password(ADMIN),
        }
    return login


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
        # A change that replaces Kafka containers replaces them one after another where
        # it can: each dedicated broker after the one before it, each dedicated controller
        # likewise (each is healthy on its own). Combined nodes cannot be chained: one is
        # healthy only once a majority of the quorum is up, so a chain would never finish
        # creating them; `roll` (issue 13) is their rolling change.
        self.containers = []
        quorum: list[pulumi.Resource] = []
        previous: dict[str, pulumi.Resource] = {}
        # The quorum's nodes first, so a dedicated broker can wait for them; `nodes`
        # stays in spec order for the images, whose names count the hosts in it.
        for node in sorted(nodes, key=lambda n: "controller" not in n.roles):
            role = "+".join(sorted(set(node.roles) & {"broker", "controller"}))
            chained = [previous[role]] if role in previous and "+" not in role else []
            # A dedicated broker waits for every voter: started before a quorum exists,
            # it gives up registering (initial.broker.registration.timeout.ms), and its
            # restarts starve the controllers still starting.
            if role == "broker":
                chained += quorum
            container = service_container(
                self,
                target,
                node,
                "kafka",
                image=images[node.host],
                command=kafka_command(plan, node),
                envs=[heap_env(node)],
                health=health(plan, node),
                depends_on=depends_on + chained,
                runs_as=KAFKA_UID,
            )
            previous[role] = container
            self.containers.append(container)
            if "controller" in node.roles:
                quorum.append(container)
        # Topics, users and ACLs as code, through the brokers' published listeners once
        # they answer, as the admin.
        provider = kafka.Provider(
            f"{name}-kafka",
            bootstrap_servers=plan.cluster.bootstrap_servers.split(","),
            timeout=120,
            **provider_login(plan.security, target.secrets),
            opts=pulumi.ResourceOptions(parent=self, depends_on=self.containers),
        )
        in_kafka = pulumi.ResourceOptions(parent=self, provider=provider)
        self.topics = [
            kafka.Topic(
                f"{name}-topic-{topic.name}",
                name=topic.name,
                partitions=int(topic.partitions.value),
                replication_factor=int(topic.replication_factor.value),
                config={key: to_property(d.value) for key, d in topic.config.items()},
                opts=in_kafka,
            )
            for topic in plan.topics
        ]
        self.access = access(name, plan, target.secrets, in_kafka)
        self.register_outputs({"containers": [c.name for c in self.containers]})


def access(
    name: str, plan: Plan, secrets: ClusterSecrets | None, opts: pulumi.ResourceOptions
) -> list[pulumi.CustomResource]:
    """Every planned user's SCRAM credential but the admin's (the brokers made it) and
    every planned ACL."""
    security = plan.security
    if security is None or secrets is None:
        return []
    found: list[pulumi.CustomResource] = []
    if security.sasl:
        found += [
            kafka.UserScramCredential(
                f"{name}-user-{user.name}",
                username=user.name,
                scram_mechanism=security.sasl,
                scram_iterations=SCRAM_ITERATIONS,
                password=secrets.password(user.name),
                opts=opts,
            )
            for user in security.users
            if user.name != ADMIN
        ]
    if security.acls:
        found += [
            kafka.Acl(
                f"{name}-acl-{user.name}-{acl.operation}-{acl.resource}-{acl.name}",
                acl_principal=f"User:{user.name}",
                acl_host="*",
                acl_operation=acl.operation.capitalize(),
                acl_permission_type="Allow",
                acl_resource_name=acl.name,
                acl_resource_type=acl.resource.capitalize(),
                resource_pattern_type_filter=acl.pattern.capitalize(),
                opts=opts,
            )
            for user in security.users
            for acl in user.acls
        ]
    return found
