"""The checks a Kafka broker runs on its configuration before it starts.

`check_server_properties(text, version)` reads a rendered `server.properties` and
returns what a broker of that version would refuse: an unknown or duplicate key,
a value of the wrong type or outside its validator, a key of the other mode, or a
broken start-up rule of KafkaConfig (listeners, controller quorum, advertised
addresses, node ids). Each problem names the key and the rule.

It is one module of about 550 lines on purpose: the rules mirror KafkaConfig's own
`validateValues` and its helpers, one function per group of rules in that order, and
the differential test (tests/integration/test_kafka_rules.py) holds them against the
real broker's; split across files they would be harder to hold against that source.
"""

from __future__ import annotations

import re

from consumers.properties import Entry, parse
from infra.kafka.catalog import Catalog, KafkaVersion, Mode, load
from infra.problems import Problem

_LISTENER = re.compile(r"^([A-Za-z0-9_]+)://(\[[^\]]*\]|[^:/\s]*):(\d+)$")
_SECURE = ("SSL", "SASL_SSL", "SASL_PLAINTEXT")


class _Config:
    """Explicit settings of one file, falling back to the catalogue's defaults."""

    def __init__(self, explicit: dict[str, str], kafka: Catalog):
        self.explicit, self.kafka = explicit, kafka

    def __getitem__(self, key: str) -> str:
        if key in self.explicit:
            return self.explicit[key].strip()
        return self.kafka.default_text(key)

    def list(self, key: str) -> list[str]:
        return [v.strip() for v in self[key].split(",") if v.strip()]

    def int(self, key: str) -> int:
        return int(self[key])

    def true(self, key: str) -> bool:
        return self[key].lower() == "true"  # as Kafka reads a BOOLEAN: in any case


def _listeners(text: str, key: str, problems: list[Problem]) -> list[tuple[str, str, int]]:
    parsed = []
    for item in (v.strip() for v in text.split(",") if v.strip()):
        match = _LISTENER.match(item)
        if not match:
            problems.append(Problem(key, f"{item!r} is not NAME://host:port"))
            continue
        parsed.append((match[1].upper(), match[2], int(match[3])))
    return parsed


def _protocol_map(
    config: _Config, listener_names: set[str], controllers: list[str], problems: list[Problem]
) -> dict:
    if "listener.security.protocol.map" in config.explicit:
        mapping = {}
        for pair in config.list("listener.security.protocol.map"):
            name, _, protocol = (part.strip().upper() for part in pair.partition(":"))
            if not name or protocol not in ("PLAINTEXT", *_SECURE):
                problems.append(
                    Problem(
                        "listener.security.protocol.map",
                        f"{pair!r} is not NAME:PROTOCOL (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)",
                    )
                )
            mapping[name] = protocol
        return mapping
    mapping = {p: p for p in ("PLAINTEXT", *_SECURE)}
    # Unset map: controller listeners default to PLAINTEXT unless secure names are in use.
    if not listener_names & set(_SECURE):
        mapping |= {name: "PLAINTEXT" for name in controllers}
    return mapping


def _listener_rules(config: _Config, problems: list[Problem]) -> dict:
    listeners = _listeners(config["listeners"], "listeners", problems)
    names = [name for name, _, _ in listeners]
    for name in {n for n in names if names.count(n) > 1}:
        problems.append(Problem("listeners", f"listener name {name} is used twice"))
    by_port: dict[int, list[str]] = {}
    for _, host, port in listeners:
        by_port.setdefault(port, []).append(host)
    for port, hosts in by_port.items():
        one_per_family = len(hosts) == 2 and sum(":" in h for h in hosts) == 1
        if len(hosts) > 1 and not one_per_family:
            problems.append(Problem("listeners", f"port {port} is bound by {len(hosts)} listeners"))
    controllers = [n.upper() for n in config.list("controller.listener.names")]
    mapping = _protocol_map(config, set(names), controllers, problems)
    for name in names:
        if name not in mapping:
            problems.append(
                Problem(
                    "listener.security.protocol.map",
                    f"listener {name} has no security protocol in the map",
                )
            )
    explicit_advertised = "advertised.listeners" in config.explicit
    advertised = (
        _listeners(config["advertised.listeners"], "advertised.listeners", problems)
        if explicit_advertised
        else listeners
    )
    for name, host, _ in advertised:
        if host == "0.0.0.0":
            problems.append(
                Problem(
                    "advertised.listeners" if explicit_advertised else "listeners",
                    f"{name} advertises 0.0.0.0, which clients cannot connect to",
                )
            )
    return {"names": names, "controllers": controllers, "map": mapping, "advertised": advertised}


def _inter_broker_listener(config: _Config, problems: list[Problem]) -> str:
    explicit = config.explicit
    if "inter.broker.listener.name" in explicit and "security.inter.broker.protocol" in explicit:
        problems.append(
            Problem(
                "inter.broker.listener.name",
                "set only one of inter.broker.listener.name and security.inter.broker.protocol",
            )
        )
    if "inter.broker.listener.name" in explicit:
        name = config["inter.broker.listener.name"].upper()
        if name and name not in _protocol_map(config, set(), [], []):
            problems.append(
                Problem(
                    "inter.broker.listener.name", f"{name} is not in listener.security.protocol.map"
                )
            )
        return name
    return config["security.inter.broker.protocol"].upper() or "PLAINTEXT"


def _voter_ids(config: _Config) -> set[int]:
    return {int(v.split("@", 1)[0]) for v in config.list("controller.quorum.voters") if "@" in v}


def _kraft_rules(config: _Config, roles: list[str], seen: dict, ibl: str) -> list[Problem]:
    problems: list[Problem] = []
    if not roles:  # KafkaConfig lets it pass; the storage tool and the start refuse it
        return [
            Problem(
                "process.roles",
                "must list broker, controller or both: Kafka 4 has no ZooKeeper mode",
            )
        ]
    if len(set(roles)) != len(roles):
        problems.append(Problem("process.roles", f"lists a role twice: {','.join(roles)}"))
    if not config.list("controller.quorum.voters") and not config.list(
        "controller.quorum.bootstrap.servers"
    ):
        problems.append(
            Problem(
                "controller.quorum.voters",
                "KRaft needs controller.quorum.voters or controller.quorum.bootstrap.servers",
            )
        )
    node_id = config.int("node.id")  # it parsed as an INT, signs and all, or we stopped earlier
    voters = _voter_ids(config)
    controllers, names = seen["controllers"], seen["names"]
    if not controllers:
        problems.append(Problem("controller.listener.names", "must name the controller listener"))
    for name in controllers:
        if name not in seen["map"]:
            problems.append(
                Problem(
                    "listener.security.protocol.map",
                    f"controller listener {name} has no security protocol in the map",
                )
            )
    if "controller" in roles:
        if voters and node_id not in voters:
            problems.append(
                Problem("node.id", f"controller {node_id} is not in controller.quorum.voters")
            )
        for name in controllers:
            if name not in names:
                problems.append(
                    Problem(
                        "controller.listener.names", f"{name} is not one of the node's listeners"
                    )
                )
    if "broker" not in roles:
        for name in names:
            if name not in controllers:
                problems.append(
                    Problem("listeners", f"a controller-only node cannot listen on {name}")
                )
        explicit_ibl = "inter.broker.listener.name" in config.explicit
        if config.kafka.version != "3.9" and explicit_ibl and ibl in controllers:
            problems.append(
                Problem("inter.broker.listener.name", f"{ibl} is a controller listener")
            )
    else:
        if "controller" not in roles:
            if node_id in voters:
                problems.append(
                    Problem("node.id", f"broker {node_id} is listed as a controller voter")
                )
            for name in controllers:
                if name in names:
                    problems.append(
                        Problem("listeners", f"a broker-only node cannot listen on {name}")
                    )
    return problems


def _broker_rules(seen: dict, ibl: str) -> list[Problem]:
    problems: list[Problem] = []
    advertised = [name for name, _, _ in seen["advertised"]]
    if not [n for n in advertised if n not in seen["controllers"]]:
        problems.append(
            Problem("advertised.listeners", "a broker must advertise a non-controller listener")
        )
    if ibl not in advertised:
        problems.append(
            Problem(
                "inter.broker.listener.name",
                f"inter-broker listener {ibl} is not advertised (advertised: "
                f"{','.join(advertised) or 'none'}); name one with inter.broker.listener.name",
            )
        )
    for name in advertised:
        if name not in seen["names"]:
            problems.append(
                Problem("advertised.listeners", f"{name} is advertised but not in listeners")
            )
    return problems


def _zookeeper_rules(config: _Config) -> list[Problem]:
    problems = []
    if "consumer" in config.list("group.coordinator.rebalance.protocols"):
        problems.append(
            Problem(
                "group.coordinator.rebalance.protocols",
                "the consumer protocol (KIP-848) runs on KRaft only; remove it in ZooKeeper mode",
            )
        )
    if config.true("zookeeper.metadata.migration.enable") and not (
        config.list("controller.quorum.voters")
        or config.list("controller.quorum.bootstrap.servers")
    ):
        problems.append(
            Problem(
                "zookeeper.metadata.migration.enable",
                "a migrating broker needs controller.quorum.voters or "
                "controller.quorum.bootstrap.servers to find the KRaft controllers",
            )
        )
    if not config["zookeeper.connect"]:  # empty passes KafkaConfig, and the start fails
        problems.append(
            Problem("zookeeper.connect", "required in ZooKeeper mode: no ensemble to join")
        )
    broker_id = config.int("broker.id")
    if config.true("broker.id.generation.enable"):
        top = config.int("reserved.broker.max.id")
        if not -1 <= broker_id <= top:
            problems.append(
                Problem(
                    "broker.id",
                    f"must be between -1 and reserved.broker.max.id ({top}) while "
                    f"broker.id.generation.enable is true, got {broker_id}",
                )
            )
    elif broker_id < 0:
        problems.append(Problem("broker.id", f"must be >= 0, got {broker_id}"))
    return problems


# The group coordinator's own checks (GroupCoordinatorConfig), per kind of group that
# the release has: heartbeat and session bounds in order, and the heartbeat inside the session.
GROUP_KINDS = ("group.consumer", "group.share", "group.streams")


def _duration_ms(config: _Config, keys: list[tuple[str, int]]) -> tuple[str, int]:
    """(key, milliseconds) of a duration Kafka reads from the first of its keys that has a
    value, set or by default (log.roll.ms, else log.roll.hours, ...)."""
    for key, scale in keys:
        if key in config.kafka.keys and config[key] != "":
            return key, config.int(key) * scale
    raise LookupError(keys)  # every chain ends in a key with a default


def _log_time_rules(config: _Config) -> list[Problem]:
    """KafkaConfig's checks on the log durations, whichever unit sets them."""
    problems = []
    key, roll = _duration_ms(config, [("log.roll.ms", 1), ("log.roll.hours", 3_600_000)])
    if roll < 1:
        problems.append(Problem(key, f"must make log.roll.ms at least 1, got {config[key]}"))
    jitter_keys = [("log.roll.jitter.ms", 1), ("log.roll.jitter.hours", 3_600_000)]
    key, jitter = _duration_ms(config, jitter_keys)
    if jitter < 0:
        problems.append(Problem(key, f"must make log.roll.jitter.ms at least 0, got {config[key]}"))
    retention_keys = [
        ("log.retention.ms", 1),
        ("log.retention.minutes", 60_000),
        ("log.retention.hours", 3_600_000),
    ]
    key, retention = _duration_ms(config, retention_keys)
    if retention == 0:  # a negative one means unlimited (-1) to Kafka
        problems.append(Problem(key, "must not be 0: -1 (unlimited) or a positive duration"))
    return problems


def _group_rules(config: _Config) -> list[Problem]:
    problems = []
    for kind in GROUP_KINDS:
        if f"{kind}.session.timeout.ms" not in config.kafka.keys:
            continue
        at_least = [
            (f"{kind}.max.assignment.interval.ms", f"{kind}.min.assignment.interval.ms"),
            (f"{kind}.assignment.interval.ms", f"{kind}.min.assignment.interval.ms"),
            (f"{kind}.max.assignment.interval.ms", f"{kind}.assignment.interval.ms"),
            (f"{kind}.max.heartbeat.interval.ms", f"{kind}.min.heartbeat.interval.ms"),
            (f"{kind}.heartbeat.interval.ms", f"{kind}.min.heartbeat.interval.ms"),
            (f"{kind}.max.heartbeat.interval.ms", f"{kind}.heartbeat.interval.ms"),
            (f"{kind}.max.session.timeout.ms", f"{kind}.min.session.timeout.ms"),
            (f"{kind}.session.timeout.ms", f"{kind}.min.session.timeout.ms"),
            (f"{kind}.max.session.timeout.ms", f"{kind}.session.timeout.ms"),
        ]
        for high, low in at_least:
            if high not in config.kafka.keys or low not in config.kafka.keys:  # 4.4's own
                continue
            if config.int(high) < config.int(low):
                problems.append(
                    Problem(high, f"must be >= {low} ({config[low]}), got {config[high]}")
                )
        heartbeat, session = f"{kind}.heartbeat.interval.ms", f"{kind}.session.timeout.ms"
        if config.kafka.version != "3.9" and config.int(heartbeat) >= config.int(session):
            problems.append(
                Problem(
                    heartbeat, f"must be < {session} ({config[session]}), got {config[heartbeat]}"
                )
            )
    return problems


# The share group's and the streams group's own checks (4.x): bounds in order.
SHARE_AT_LEAST = (
    ("group.share.max.delivery.count.limit", "group.share.delivery.count.limit"),
    ("group.share.delivery.count.limit", "group.share.min.delivery.count.limit"),
    ("group.share.max.partition.max.record.locks", "group.share.partition.max.record.locks"),
    ("group.share.partition.max.record.locks", "group.share.min.partition.max.record.locks"),
    ("group.share.record.lock.duration.ms", "group.share.min.record.lock.duration.ms"),
    ("group.share.max.record.lock.duration.ms", "group.share.record.lock.duration.ms"),
    ("group.share.max.share.sessions", "group.share.max.size"),
    ("group.streams.max.standby.replicas", "group.streams.num.standby.replicas"),
)


def _coordinator_rules(config: _Config) -> list[Problem]:
    """What the group and share coordinators check when a broker starts (4.x)."""
    problems = []
    for high, low in SHARE_AT_LEAST:
        if (
            high in config.kafka.keys
            and low in config.kafka.keys
            and config.int(high) < config.int(low)
        ):
            problems.append(Problem(high, f"must be >= {low} ({config[low]}), got {config[high]}"))
    snapshot = "share.coordinator.snapshot.update.records.per.snapshot"
    if snapshot in config.kafka.keys and not 0 <= config.int(snapshot) <= 500:
        problems.append(Problem(snapshot, f"must be between 0 and 500, got {config[snapshot]}"))
    protocols = "group.coordinator.rebalance.protocols"
    if protocols in config.kafka.keys and "classic" not in config.list(protocols):
        problems.append(
            Problem(
                protocols, f"must keep classic (Kafka cannot disable it), got {config[protocols]!r}"
            )
        )
    if (
        "group.share.assignors" in config.kafka.keys
        and len(config.list("group.share.assignors")) != 1
    ):
        problems.append(
            Problem(
                "group.share.assignors",
                f"must name exactly one assignor, got {config['group.share.assignors']!r}",
            )
        )
    return problems


def _common_rules(config: _Config, ibl: str, seen: dict) -> list[Problem]:
    problems = []
    explicit = config.explicit
    if (
        "node.id" in explicit
        and "broker.id" in explicit
        and config["node.id"] != config["broker.id"]
    ):
        problems.append(Problem("broker.id", "must equal node.id when both are set"))
    # Kafka reads log.dirs whenever it is set, even empty, and log.dir only otherwise.
    dirs_key = "log.dirs" if "log.dirs" in explicit else "log.dir"
    if not config.list(dirs_key):
        problems.append(Problem(dirs_key, "must name at least one directory"))
    cordoned = config.list("cordoned.log.dirs") if "cordoned.log.dirs" in config.kafka.keys else []
    if cordoned and cordoned != ["*"]:  # Kafka 4.4: "*" alone, or some of the log dirs
        missing = [d for d in cordoned if d not in config.list(dirs_key)]
        if missing or "*" in cordoned:
            problems.append(
                Problem(
                    "cordoned.log.dirs",
                    f"must be * or entries of {dirs_key}, got {', '.join(missing or ['*'])}",
                )
            )
    wait = config.int("replica.fetch.wait.max.ms")
    for bound in ("replica.socket.timeout.ms", "replica.lag.time.max.ms"):
        if wait > config.int(bound):
            problems.append(
                Problem(
                    "replica.fetch.wait.max.ms",
                    f"must be <= {bound} ({config[bound]}), got {wait}",
                )
            )
    known = set(seen["names"]) | {n.upper() for n in config.list("controller.listener.names")}
    for name in config.list("early.start.listeners"):
        if name.upper() not in known:
            problems.append(
                Problem(
                    "early.start.listeners",
                    f"{name} is neither in listeners nor in controller.listener.names",
                )
            )
    cleaners = config.int("log.cleaner.threads")
    if cleaners == 0:  # Kafka divides the dedupe buffer by it at start, and fails
        problems.append(Problem("log.cleaner.threads", "must be at least 1, got 0"))
    elif config.int("log.cleaner.dedupe.buffer.size") / cleaners < 1024 * 1024:
        problems.append(
            Problem(
                "log.cleaner.dedupe.buffer.size",
                f"must be at least 1 MiB per cleaner thread ({cleaners}), "
                f"got {config['log.cleaner.dedupe.buffer.size']}",
            )
        )
    if "offsets.commit.required.acks" in config.kafka.keys:  # Kafka 3.9
        acks = config.int("offsets.commit.required.acks")
        rf = config.int("offsets.topic.replication.factor")
        if not -1 <= acks <= rf:
            problems.append(
                Problem(
                    "offsets.commit.required.acks",
                    f"must be between -1 and offsets.topic.replication.factor ({rf}), got {acks}",
                )
            )
    delay, idle = (
        config.int("connection.failed.authentication.delay.ms"),
        config.int("connections.max.idle.ms"),
    )
    if idle >= 0 and delay >= idle:  # a negative idle time: no limit, nothing to be under
        problems.append(
            Problem(
                "connection.failed.authentication.delay.ms",
                f"must be < connections.max.idle.ms ({idle}), got {delay}",
            )
        )
    queued, request = config.int("queued.max.request.bytes"), config.int("socket.request.max.bytes")
    if 0 < queued < request:
        problems.append(
            Problem(
                "queued.max.request.bytes",
                f"must be <= 0 or >= socket.request.max.bytes ({request}), got {queued}",
            )
        )
    for codec in (
        "offsets.topic.compression.codec",
        "share.coordinator.state.topic.compression.codec",
    ):
        # CompressionType ids: none, gzip, snappy, lz4, zstd
        if codec in config.kafka.keys and not 0 <= config.int(codec) <= 4:
            problems.append(
                Problem(codec, f"must be a compression id from 0 to 4, got {config[codec]}")
            )
    if config.int("max.connections.per.ip") == 0 and not config.list(
        "max.connections.per.ip.overrides"
    ):
        problems.append(
            Problem(
                "max.connections.per.ip", "can be 0 only with max.connections.per.ip.overrides set"
            )
        )
    for entry in config.list("max.connections.per.ip.overrides"):
        host, _, count = entry.rpartition(":")
        if not host or not re.fullmatch(r"\d+", count.strip()):
            problems.append(
                Problem("max.connections.per.ip.overrides", f"{entry!r} is not HOST:COUNT")
            )
    for key in ("inter.broker.listener.name", "control.plane.listener.name"):
        if key in config.explicit and not config[key]:
            problems.append(Problem(key, "is set but empty: name a listener, or leave it out"))
    control_plane = (
        config["control.plane.listener.name"]
        if "control.plane.listener.name" in config.kafka.keys
        else ""
    )
    if control_plane and control_plane.upper() not in seen["map"]:  # Kafka 3.9 only
        problems.append(
            Problem(
                "control.plane.listener.name",
                f"{control_plane} is not in listener.security.protocol.map",
            )
        )
    if seen["map"].get(ibl, ibl).startswith("SASL"):
        mechanism = config["sasl.mechanism.inter.broker.protocol"]
        if mechanism not in config.list("sasl.enabled.mechanisms"):
            problems.append(
                Problem(
                    "sasl.mechanism.inter.broker.protocol",
                    f"{mechanism} is not in sasl.enabled.mechanisms",
                )
            )
    return problems


def check_server_properties(text: str, version: KafkaVersion) -> list[Problem]:
    return check_entries(parse(text), version)


def check_entries(entries: list[Entry], version: KafkaVersion) -> list[Problem]:
    kafka = load(version)
    problems: list[Problem] = []
    explicit: dict[str, str] = {}
    for entry in entries:
        if entry.key in explicit:
            problems.append(
                Problem(entry.key, f"set twice (line {entry.line}); Kafka keeps the last")
            )
        explicit[entry.key] = entry.value
    config = _Config(explicit, kafka)
    roles = config.list("process.roles") if "process.roles" in kafka.keys else []
    mode: Mode = "kraft" if roles or version != "3.9" else "zookeeper"
    migrating = config.true("zookeeper.metadata.migration.enable")
    for entry in entries:
        reason = kafka.check(entry.key, entry.value, mode, migrating)
        if reason:
            problems.append(Problem(entry.key, reason))
    for key, facts in kafka.keys.items():
        if facts.get("required") and key not in explicit:
            problems.append(Problem(key, f"required by Kafka {version}; missing"))
    if problems:
        return problems  # the rules below assume keys that parse
    seen = _listener_rules(config, problems)
    ibl = _inter_broker_listener(config, problems)
    problems += _common_rules(config, ibl, seen) + _log_time_rules(config)
    problems += _group_rules(config) + _coordinator_rules(config)
    if mode == "kraft":
        problems += _kraft_rules(config, roles, seen, ibl)
    else:
        problems += _zookeeper_rules(config)
    if mode == "zookeeper" or "broker" in roles:
        problems += _broker_rules(seen, ibl)
    return problems
