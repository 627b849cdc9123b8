"""Each rule a broker enforces at start-up, shown able to fail on its own.

Four hand-written, valid configurations (combined, broker-only, controller-only and a
3.9 ZooKeeper-mode broker) pass; each case edits one and expects exactly the
problems that edit causes.
"""

from __future__ import annotations

import pytest

from infra.kafka.broker_rules import check_server_properties

COMBINED = """\
process.roles=broker,controller
node.id=1
listeners=INTERNAL://:9092,EXTERNAL://:9094,CONTROLLER://:9093
advertised.listeners=INTERNAL://kafka-1:9092,EXTERNAL://127.0.0.1:19092
listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=INTERNAL
controller.listener.names=CONTROLLER
controller.quorum.voters=1@kafka-1:9093
log.dirs=/var/lib/kafka/data
"""
BROKER = """\
process.roles=broker
node.id=4
listeners=INTERNAL://:9092,EXTERNAL://:9094
advertised.listeners=INTERNAL://broker-4:9092,EXTERNAL://127.0.0.1:19092
listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=INTERNAL
controller.listener.names=CONTROLLER
controller.quorum.voters=1@ctl-1:9093,2@ctl-2:9093,3@ctl-3:9093
log.dirs=/var/lib/kafka/data
"""
CONTROLLER = """\
process.roles=controller
node.id=1
listeners=CONTROLLER://:9093
listener.security.protocol.map=CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.voters=1@ctl-1:9093,2@ctl-2:9093,3@ctl-3:9093
log.dirs=/var/lib/kafka/data
"""
ZOOKEEPER = """\
broker.id=1
broker.id.generation.enable=false
listeners=INTERNAL://:9092,EXTERNAL://:9094
advertised.listeners=INTERNAL://kafka-1:9092,EXTERNAL://127.0.0.1:19092
listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT
inter.broker.listener.name=INTERNAL
zookeeper.connect=zk-1:2181
log.dirs=/var/lib/kafka/data
"""
BASES = {
    "combined": (COMBINED, "4.1"),
    "broker": (BROKER, "4.1"),
    "controller": (CONTROLLER, "4.1"),
    "zookeeper": (ZOOKEEPER, "3.9"),
    "combined-3.9": (COMBINED, "3.9"),
}


def edit(text: str, changes: dict[str, str | None]) -> str:
    """Set (or with None, delete) keys; new keys are appended."""
    lines = []
    for line in text.splitlines():
        key = line.split("=", 1)[0]
        if key in changes:
            if changes[key] is not None:
                lines.append(f"{key}={changes.pop(key)}")
            else:
                changes.pop(key)
            continue
        lines.append(line)
    lines += [f"{k}={v}" for k, v in changes.items() if v is not None]
    return "\n".join(lines) + "\n"


def problems(base: str, changes: dict[str, str | None]) -> list[tuple[str, str]]:
    text, version = BASES[base]
    return [(p.path, p.message) for p in check_server_properties(edit(text, changes), version)]


@pytest.mark.parametrize("base", BASES)
def test_every_base_configuration_passes(base):
    assert problems(base, {}) == []


CASES = [
    # -- the catalogue: keys, types, validators, modes
    (
        "unknown key",
        "combined",
        {"num.partitons": "4"},
        [("num.partitons", "unknown key for Kafka 4.1 (did you mean num.partitions?)")],
    ),
    (
        "not an integer",
        "combined",
        {"num.partitions": "four"},
        [("num.partitions", "must be a 32-bit integer (INT), got 'four'")],
    ),
    (
        "INT overflow",
        "combined",
        {"num.partitions": "3000000000"},
        [("num.partitions", "must be a 32-bit integer (INT), got '3000000000'")],
    ),
    (
        "atLeast",
        "combined",
        {"num.partitions": "0"},
        [("num.partitions", "must be >= 1, got '0'")],
    ),
    (
        "between",
        "combined",
        {"log.cleaner.min.cleanable.ratio": "1.5"},
        [("log.cleaner.min.cleanable.ratio", "must be between 0 and 1, got '1.5'")],
    ),
    (
        "in",
        "combined",
        {"compression.type": "brotli"},
        [
            (
                "compression.type",
                "must be one of uncompressed, zstd, lz4, snappy, gzip, producer, got 'brotli'",
            )
        ],
    ),
    (
        "list_in",
        "combined",
        {"log.cleanup.policy": "delete,archive"},
        [("log.cleanup.policy", "must list only compact, delete, got 'delete,archive'")],
    ),
    (
        "boolean",
        "combined",
        {"auto.create.topics.enable": "yes"},
        [("auto.create.topics.enable", "must be true or false, got 'yes'")],
    ),
    (
        "voters validator",
        "combined",
        {"controller.quorum.voters": "kafka-1:9093"},
        [
            (
                "controller.quorum.voters",
                "must be a list of id@host:port entries, got 'kafka-1:9093'",
            )
        ],
    ),
    (
        "removed in 4.0",
        "combined",
        {"zookeeper.connect": "zk-1:2181"},
        [("zookeeper.connect", "removed after Kafka 3.9; not accepted by Kafka 4.1")],
    ),
    (
        "ZooKeeper key on a 3.9 KRaft node",
        "combined-3.9",
        {"zookeeper.connect": "zk-1:2181"},
        [("zookeeper.connect", "a ZooKeeper-mode key; this cluster runs KRaft (remove it)")],
    ),
    (
        "KRaft key on a ZooKeeper-mode broker",
        "zookeeper",
        {"controller.quorum.election.timeout.ms": "1000"},
        [
            (
                "controller.quorum.election.timeout.ms",
                "a KRaft-only key; this cluster runs ZooKeeper mode (remove it)",
            )
        ],
    ),
    (
        "required in 4.x",
        "combined",
        {"node.id": None},
        [("node.id", "required by Kafka 4.1; missing")],
    ),
    # -- every node
    (
        "node.id and broker.id differ",
        "combined",
        {"broker.id": "2"},
        [("broker.id", "must equal node.id when both are set")],
    ),
    (
        "log.dirs empty",
        "combined",
        {"log.dirs": ""},
        [("log.dirs", "must name at least one directory")],
    ),
    (
        "a role twice",
        "combined",
        {"process.roles": "broker,broker,controller"},
        [("process.roles", "lists a role twice: broker,broker,controller")],
    ),
    (
        "listener not NAME://host:port",
        "combined",
        {"listeners": "INTERNAL:9092,EXTERNAL://:9094,CONTROLLER://:9093"},
        [
            ("listeners", "'INTERNAL:9092' is not NAME://host:port"),
            ("advertised.listeners", "INTERNAL is advertised but not in listeners"),
        ],
    ),
    (
        "listener name twice",
        "combined",
        {"listeners": "INTERNAL://:9092,EXTERNAL://:9094,CONTROLLER://:9093,INTERNAL://:9095"},
        [("listeners", "listener name INTERNAL is used twice")],
    ),
    (
        "port twice",
        "combined",
        {"listeners": "INTERNAL://:9092,EXTERNAL://:9092,CONTROLLER://:9093"},
        [("listeners", "port 9092 is bound by 2 listeners")],
    ),
    (
        "listener missing from the protocol map",
        "combined",
        {"listener.security.protocol.map": "INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"},
        [
            (
                "listener.security.protocol.map",
                "listener EXTERNAL has no security protocol in the map",
            )
        ],
    ),
    (
        "both inter-broker settings",
        "combined",
        {"security.inter.broker.protocol": "PLAINTEXT"},
        [
            (
                "inter.broker.listener.name",
                "set only one of inter.broker.listener.name and security.inter.broker.protocol",
            )
        ],
    ),
    (
        "no quorum",
        "combined",
        {"controller.quorum.voters": None},
        [
            (
                "controller.quorum.voters",
                "KRaft needs controller.quorum.voters or controller.quorum.bootstrap.servers",
            )
        ],
    ),
    (
        "advertised 0.0.0.0",
        "combined",
        {"advertised.listeners": "INTERNAL://0.0.0.0:9092,EXTERNAL://127.0.0.1:19092"},
        [("advertised.listeners", "INTERNAL advertises 0.0.0.0, which clients cannot connect to")],
    ),
    (
        "replica fetch wait above its bounds",
        "combined",
        {"replica.fetch.wait.max.ms": "40000", "replica.lag.time.max.ms": "60000"},
        [
            (
                "replica.fetch.wait.max.ms",
                "must be <= replica.socket.timeout.ms (30000), got 40000",
            )
        ],
    ),
    (
        "SASL mechanism not enabled",
        "combined",
        {
            "listener.security.protocol.map": (
                "INTERNAL:SASL_PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"
            ),
            "sasl.mechanism.inter.broker.protocol": "PLAIN",
            "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        },
        [("sasl.mechanism.inter.broker.protocol", "PLAIN is not in sasl.enabled.mechanisms")],
    ),
    # -- broker-only nodes
    (
        "broker listed as a voter",
        "broker",
        {"node.id": "2"},
        [("node.id", "broker 2 is listed as a controller voter")],
    ),
    (
        "broker without controller listener names",
        "broker",
        {"controller.listener.names": None},
        [("controller.listener.names", "must name the controller listener")],
    ),
    (
        "broker listening on the controller listener",
        "broker",
        {"listeners": "INTERNAL://:9092,EXTERNAL://:9094,CONTROLLER://:9093"},
        [("listeners", "a broker-only node cannot listen on CONTROLLER")],
    ),
    (
        "controller listener missing from the map",
        "broker",
        {"listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT"},
        [
            (
                "listener.security.protocol.map",
                "controller listener CONTROLLER has no security protocol in the map",
            )
        ],
    ),
    # -- controller-only nodes
    (
        "controller listening on a broker listener",
        "controller",
        {
            "listeners": "CONTROLLER://:9093,INTERNAL://:9092",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT",
        },
        [("listeners", "a controller-only node cannot listen on INTERNAL")],
    ),
    (
        "controller that is not a voter",
        "controller",
        {"node.id": "7"},
        [("node.id", "controller 7 is not in controller.quorum.voters")],
    ),
    (
        "controller listener name not bound",
        "controller",
        {
            "controller.listener.names": "QUORUM",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,QUORUM:PLAINTEXT",
        },
        [
            ("controller.listener.names", "QUORUM is not one of the node's listeners"),
            ("listeners", "a controller-only node cannot listen on CONTROLLER"),
        ],
    ),
    (
        "4.x controller naming a controller listener for brokers",
        "controller",
        {"inter.broker.listener.name": "CONTROLLER"},
        [("inter.broker.listener.name", "CONTROLLER is a controller listener")],
    ),
    # -- any node with the broker role
    (
        "broker advertising only the controller listener",
        "combined",
        {"advertised.listeners": "CONTROLLER://kafka-1:9093"},
        [
            ("advertised.listeners", "a broker must advertise a non-controller listener"),
            (
                "inter.broker.listener.name",
                "inter-broker listener INTERNAL is not advertised (advertised: CONTROLLER); "
                "name one with inter.broker.listener.name",
            ),
        ],
    ),
    (
        "renamed listeners without inter.broker.listener.name (the classic)",
        "combined",
        {"inter.broker.listener.name": None},
        [
            (
                "inter.broker.listener.name",
                "inter-broker listener PLAINTEXT is not advertised (advertised: "
                "INTERNAL,EXTERNAL); name one with inter.broker.listener.name",
            )
        ],
    ),
    (
        "advertising a listener that is not bound",
        "combined",
        {
            "advertised.listeners": (
                "INTERNAL://kafka-1:9092,EXTERNAL://127.0.0.1:19092,OTHER://kafka-1:9999"
            )
        },
        [("advertised.listeners", "OTHER is advertised but not in listeners")],
    ),
    # -- Kafka 3.9 ZooKeeper mode
    (
        "ZooKeeper mode without zookeeper.connect",
        "zookeeper",
        {"zookeeper.connect": None},
        [("zookeeper.connect", "required in ZooKeeper mode: no ensemble to join")],
    ),
    (
        "broker.id above the reserved range while generating",
        "zookeeper",
        {"broker.id": "1001", "broker.id.generation.enable": "true"},
        [
            (
                "broker.id",
                "must be between -1 and reserved.broker.max.id (1000) while "
                "broker.id.generation.enable is true, got 1001",
            )
        ],
    ),
    (
        "negative broker.id without generation",
        "zookeeper",
        {"broker.id": "-1"},
        [("broker.id", "must be >= 0, got -1")],
    ),
    (
        "controller listener names in ZooKeeper mode",
        "zookeeper",
        {"controller.listener.names": "CONTROLLER"},
        [
            (
                "controller.listener.names",
                "a KRaft-only key; this cluster runs ZooKeeper mode (remove it)",
            )
        ],
    ),
]


@pytest.mark.parametrize(
    ("base", "changes", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_rule_fails_alone(base, changes, expected):
    assert problems(base, dict(changes)) == expected


def test_a_duplicate_key_is_reported_with_its_line():
    text = COMBINED + "num.partitions=4\nnum.partitions=8\n"
    found = [(p.path, p.message) for p in check_server_properties(text, "4.1")]
    assert found == [("num.partitions", "set twice (line 11); Kafka keeps the last")]


def test_one_ipv4_and_one_ipv6_listener_may_share_a_port():
    listeners = "INTERNAL://0.0.0.0:9092,EXTERNAL://[::]:9092,CONTROLLER://:9093"
    advertised = "INTERNAL://kafka-1:9092,EXTERNAL://127.0.0.1:19092"
    assert problems("combined", {"listeners": listeners, "advertised.listeners": advertised}) == []


def test_a_migrating_zookeeper_broker_may_name_the_kraft_quorum():
    migration = {
        "zookeeper.metadata.migration.enable": "true",
        "controller.listener.names": "CONTROLLER",
        "controller.quorum.voters": "3000@ctl-1:9093",
        "listener.security.protocol.map": (
            "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"
        ),
    }
    assert problems("zookeeper", migration) == []
