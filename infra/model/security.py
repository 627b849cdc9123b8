"""Who may connect and do what: listener protocols, users, ACLs and where secrets live.

Client listeners (INTERNAL, EXTERNAL) authenticate users with SCRAM over TLS; the
KRaft controller listener takes only certificates the cluster CA signed (mutual TLS),
because a controller must authenticate brokers before it has read any SCRAM
credential from the metadata log. Each consumer group connects as its own user with
exactly its rights; `admin` (inter-broker, runtime, verify, the topics provider) is
the one super user besides the nodes' own certificates. Secret values are generated
elsewhere (infra/secrets.py); a rendered file only names the file a secret is in,
through Kafka's FileConfigProvider syntax `${file:PATH:KEY}`, so no rendered file
holds one.
"""

from __future__ import annotations

from infra.model.plan import Acl, Derived, GroupPlan, SecretFile, SecurityPlan, Settings, UserPlan
from infra.model.spec import Node, Security
from infra.model.topology import CONTROLLER, EXTERNAL, INTERNAL, Topology, is_kafka_node

ADMIN = "admin"
SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule required"
INGEST = "ingest"
SCRAM_ITERATIONS = 8192  # RFC 7677 asks at least 4096; Kafka's own default
KEYSTORE, TRUSTSTORE, PASSWORDS = "keystore", "truststore", "passwords"
PLAINTEXT = "PLAINTEXT"


def client_protocol(security: Security | None) -> str:
    if security is None:
        return PLAINTEXT
    sasl = security.mechanism is not None
    if security.tls:
        return "SASL_SSL" if sasl else "SSL"
    return "SASL_PLAINTEXT" if sasl else PLAINTEXT


def listener_protocol(security: Security | None, listener: str) -> str:
    if listener == CONTROLLER:
        return "SSL" if security is not None and security.tls else PLAINTEXT
    return client_protocol(security)


def scram_credential(security: SecurityPlan, password: str, user: str | None = None) -> str:
    """A SCRAM credential as Kafka's tools spell it: StorageTool's --add-scram names its
    user inside, ConfigCommand's --add-config does not."""
    name = f"name={user}," if user else ""
    return f"{security.sasl}=[{name}iterations={SCRAM_ITERATIONS},password={password}]"


def reference(path: str, key: str) -> str:
    """A secret as a config value: Kafka's FileConfigProvider reads it at start."""
    return "${file:" + path + ":" + key + "}"


# -- where secrets live


def secrets_dir(topology: Topology, node: Node) -> str:
    return f"{topology.config_dir(node)}/secrets"


def secret_path(topology: Topology, node: Node, service: str, kind: str) -> str:
    name = {KEYSTORE: "keystore.p12", TRUSTSTORE: "ca.pem"}.get(kind)
    if name is None:  # passwords: one file per service, so a group reads only its own
        name = f"{service.removeprefix('consumer:')}.passwords"
    return f"{secrets_dir(topology, node)}/{name}"


def secret_files(topology: Topology, node: Node, services: dict[str, str]) -> list[SecretFile]:
    security = topology.spec.locks
    if security is None:
        return []
    files = []
    for service in services:
        if service == "zookeeper":
            continue  # ZooKeeper's own ports stay plaintext (see spec_rules)
        kinds = [KEYSTORE] if security.tls and service == "kafka" else []
        kinds += [TRUSTSTORE] if security.tls else []
        kinds += [PASSWORDS] if security.mechanism else []  # the admin's or the group's
        files += [
            SecretFile(kind=k, service=service, path=secret_path(topology, node, service, k))
            for k in kinds
        ]
    return files


def node_common_name(cluster: str) -> str:
    """The subject CN of every Kafka node's certificate. One principal for all of them
    (Strimzi's brokers share one too), so super.users stays as it is when a node comes
    or goes; each certificate names its own node in its subject alternative names."""
    return f"{cluster} Kafka node"


def principal(topology: Topology, node: Node) -> str | None:
    """The node certificate's subject, as Kafka's default mapping names its principal."""
    security = topology.spec.locks
    if security is None or not security.tls or not is_kafka_node(node):
        return None
    return f"User:CN={node_common_name(topology.spec.cluster.name)}"


# -- users and ACLs


def _acl(resource: str, name: str, operation: str, why: str, pattern: str = "literal") -> Acl:
    return Acl(resource=resource, pattern=pattern, name=name, operation=operation, why=why)


def _group_user(group: GroupPlan) -> UserPlan:
    acls = [
        _acl("topic", group.topic, "read", "the topic the group parses"),
        _acl("group", group.group, "read", "joins its group and commits its offsets"),
        _acl("topic", group.dlq, "write", "records it cannot parse go to the DLQ"),
    ]
    if group.sink.startswith("kafka:"):
        sink = group.sink.removeprefix("kafka:")
        acls.append(_acl("topic", sink, "write", "its sink"))
    return UserPlan(
        name=group.group, why=f"the workers of group {group.group}, exactly their job", acls=acls
    )


def _ingest_user(topology: Topology, groups: list[GroupPlan]) -> UserPlan | None:
    """Log shippers (and `--demo`): they write every topic no group writes itself."""
    written = {g.dlq for g in groups} | {g.sink.removeprefix("kafka:") for g in groups}
    topics = [t.name for t in topology.spec.topics if t.name not in written]
    if not topics:
        return None
    acls = [_acl("topic", t, "write", "log shippers write it") for t in topics]
    return UserPlan(name=INGEST, why="log shippers and the demo producer: write only", acls=acls)


def _spec_user(user) -> UserPlan:
    acls = [_acl("topic", t, "read", "read: in the spec") for t in user.read]
    if user.read:
        acls.append(
            _acl("group", user.name, "read", "its groups are named after it", pattern="prefixed")
        )
    acls += [_acl("topic", t, "write", "write: in the spec") for t in user.write]
    return UserPlan(name=user.name, why="a user of the spec", acls=acls)


def plan_security(topology: Topology, groups: list[GroupPlan]) -> SecurityPlan | None:
    security = topology.spec.locks
    if security is None:
        return None
    users = [UserPlan(name=ADMIN, why="inter-broker traffic and administration", acls=[])]
    if security.mechanism:
        users += [_group_user(g) for g in groups]
        ingest = _ingest_user(topology, groups)
        users += [ingest] if ingest else []
        users += [_spec_user(u) for u in security.users]
    return SecurityPlan(
        tls=security.tls,
        sasl=security.mechanism,
        acls=security.acls,
        client_protocol=client_protocol(security),
        admin=ADMIN,
        users=users,
    )


# -- what Kafka and the workers read


def connection(topology: Topology, node: Node, service: str, user: str | None) -> Settings:
    """librdkafka's settings for a client of `service` on `node` connecting as `user`."""
    security = topology.spec.locks
    if security is None:
        return {}
    protocol = client_protocol(security)
    found: Settings = {}
    if protocol != PLAINTEXT:
        found["security.protocol"] = Derived(value=protocol, why="the cluster's client listeners")
    if security.tls:
        found["ssl.ca.location"] = Derived(
            value=secret_path(topology, node, service, TRUSTSTORE),
            why="trust only the cluster's CA",
        )
    if security.mechanism and user:
        passwords = secret_path(topology, node, service, PASSWORDS)
        found |= {
            "sasl.mechanism": Derived(value=security.mechanism, why="the spec's SASL mechanism"),
            "sasl.username": Derived(value=user, why="its own user, with exactly its rights"),
            "sasl.password": Derived(
                value=reference(passwords, "password"), why=f"read from {passwords} (mode 0600)"
            ),
        }
    return found


def _jaas(topology: Topology, node: Node, security: Security) -> Settings:
    """SCRAM on the client listeners: INTERNAL logs in as the admin (inter-broker)."""
    passwords = secret_path(topology, node, "kafka", PASSWORDS)
    module = SCRAM_LOGIN
    mechanism = security.mechanism or ""
    login = f'username="{ADMIN}" password="{reference(passwords, "admin.password")}";'
    return {
        "sasl.enabled.mechanisms": Derived(value=mechanism, why="SCRAM only: no PLAIN passwords"),
        "sasl.mechanism.inter.broker.protocol": Derived(
            value=mechanism, why="brokers replicate as the admin user"
        ),
        f"listener.name.{INTERNAL.lower()}.{mechanism.lower()}.sasl.jaas.config": Derived(
            value=f"{module} {login}",
            why=f"the inter-broker login; its password is read from {passwords}",
        ),
        f"listener.name.{EXTERNAL.lower()}.{mechanism.lower()}.sasl.jaas.config": Derived(
            value=f"{module};", why="clients log in with SCRAM; the listener itself has no user"
        ),
    }


def _authorizer(topology: Topology) -> Settings:
    kraft = topology.spec.cluster.mode == "kraft"
    nodes = {p for n in topology.spec.nodes if (p := principal(topology, n))}
    supers = [f"User:{ADMIN}", *sorted(nodes)]
    return {
        "authorizer.class.name": Derived(
            value="org.apache.kafka.metadata.authorizer.StandardAuthorizer"
            if kraft
            else "kafka.security.authorizer.AclAuthorizer",
            why="ACLs in the metadata log" if kraft else "ACLs in ZooKeeper",
        ),
        "allow.everyone.if.no.acl.found": Derived(
            value=False, why="deny by default: a user gets only what an ACL grants"
        ),
        "super.users": Derived(
            value=";".join(supers), why="the admin user and the nodes' own certificates"
        ),
    }


def security_settings(topology: Topology, node: Node) -> Settings:
    """server.properties' Security section; empty without `security:` in the spec."""
    security = topology.spec.locks
    if security is None:
        return {}
    found: Settings = {}
    passwords = secret_path(topology, node, "kafka", PASSWORDS)
    if security.tls or security.mechanism:
        found |= {
            "config.providers": Derived(value="file", why="secrets are read from files"),
            "config.providers.file.class": Derived(
                value="org.apache.kafka.common.config.provider.FileConfigProvider",
                why="Kafka's own: ${file:PATH:KEY} reads KEY from the properties file PATH",
            ),
        }
    if security.tls:
        keystore = secret_path(topology, node, "kafka", KEYSTORE)
        found |= {
            "ssl.keystore.type": Derived(
                value="PKCS12",
                why="Java reads a PKCS12 key sealed with AES; a PEM key it can read must be "
                "sealed with 3DES (no PBES2 in SunJCE)",
            ),
            "ssl.keystore.location": Derived(value=keystore, why="this node's key and chain"),
            "ssl.keystore.password": Derived(
                value=reference(passwords, "keystore.password"), why=f"read from {passwords}"
            ),
            "ssl.truststore.type": Derived(value="PEM", why="the cluster CA, as PEM"),
            "ssl.truststore.location": Derived(
                value=secret_path(topology, node, "kafka", TRUSTSTORE),
                why="trust only the cluster's CA",
            ),
        }
        if "controller" in node.roles:
            found[f"listener.name.{CONTROLLER.lower()}.ssl.client.auth"] = Derived(
                value="required", why="the quorum takes only certificates the cluster CA signed"
            )
    if security.mechanism and "broker" in node.roles:
        found |= _jaas(topology, node, security)
    if security.acls:
        found |= _authorizer(topology)
    return found
