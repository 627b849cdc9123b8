"""The checks a Kafka broker runs on its configuration before it starts.

`check_server_properties(text, version)` reads a rendered `server.properties` and
returns what a broker of that version would refuse: an unknown or duplicate key,
a value of the wrong type or outside its validator, a key of the other mode, or a
broken start-up rule of KafkaConfig (listeners, controller quorum, advertised
addresses, node ids). Each problem names the key and the rule.
"""

from __future__ import annotations

import re

from consumers.properties import Entry, parse, to_property
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
        default = self.kafka.keys[key]["default"] if key in self.kafka.keys else None
        return "" if default is None else to_property(default)

    def list(self, key: str) -> list[str]:
        return [v.strip() for v in self[key].split(",") if v.strip()]

    def int(self, key: str) -> int:
        return int(self[key])


def _listeners(text: str, key: str, problems: list[Problem]) -> list[tuple[str, str, int]]:
    parsed = []
    for item in (v.strip() for v in text.split(",") if v.strip()):
        match = _LISTENER.match(item)
        if not match:
            problems.append(Problem(key, f"{item!r} is not NAME://host:port"))
            continue
        parsed.append((match[1].upper(), match[2], int(match[3])))
    return parsed


def _protocol_map(config: _Config, listener_names: set[str], controllers: list[str]) -> dict:
    if "listener.security.protocol.map" in config.explicit:
        pairs = (p.split(":", 1) for p in config.list("listener.security.protocol.map"))
        return {name.strip().upper(): proto.strip().upper() for name, proto in pairs}
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
    mapping = _protocol_map(config, set(names), controllers)
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
        return config["inter.broker.listener.name"].upper()
    return config["security.inter.broker.protocol"].upper() or "PLAINTEXT"


def _voter_ids(config: _Config) -> set[int]:
    return {int(v.split("@", 1)[0]) for v in config.list("controller.quorum.voters") if "@" in v}


def _kraft_rules(config: _Config, roles: list[str], seen: dict, ibl: str) -> list[Problem]:
    problems: list[Problem] = []
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
    node_id = config["node.id"]
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
        if voters and node_id.lstrip("-").isdigit() and int(node_id) not in voters:
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
            if node_id.lstrip("-").isdigit() and int(node_id) in voters:
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
    if not config["zookeeper.connect"]:
        problems.append(Problem("zookeeper.connect", "required in ZooKeeper mode"))
    broker_id = config.int("broker.id")
    if config["broker.id.generation.enable"] == "true":
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
    wait = config.int("replica.fetch.wait.max.ms")
    for bound in ("replica.socket.timeout.ms", "replica.lag.time.max.ms"):
        if wait > config.int(bound):
            problems.append(
                Problem(
                    "replica.fetch.wait.max.ms",
                    f"must be <= {bound} ({config[bound]}), got {wait}",
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
    migrating = config["zookeeper.metadata.migration.enable"] == "true"
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
    problems += _common_rules(config, ibl, seen)
    if mode == "kraft":
        problems += _kraft_rules(config, roles, seen, ibl)
    else:
        problems += _zookeeper_rules(config)
    if mode == "zookeeper" or "broker" in roles:
        problems += _broker_rules(seen, ibl)
    return problems
