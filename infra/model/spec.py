"""The node spec: the YAML an operator writes, as frozen, typed models.

Field types carry the rules a single value must follow; infra/model/load.py reads the
YAML and words every error for operators, infra/model/spec_rules.py checks fields
against each other.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

Role = Literal["broker", "controller", "zookeeper", "consumer"]
Compression = Literal["none", "gzip", "snappy", "lz4", "zstd", "producer"]

_DNS_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_TOPIC = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
_HOST = re.compile(r"^(local|ssh://([^@/\s]+@)?[A-Za-z0-9.-]+(:\d+)?|tcp://[A-Za-z0-9.-]+:\d+)$")
_DURATION_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_SIZE_BYTES = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_SIZE_BYTES |= {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


def _rule(check, message: str):
    """An AfterValidator that refuses values failing `check` with `message`."""

    def validate(value):
        if not check(value):
            raise PydanticCustomError("rule", message)
        return value

    return AfterValidator(validate)


def parse_units(value: Any, table: dict[str, int]) -> int | None:
    """'7d' or '50GiB' (or a plain integer >= 0) in the table's base unit; None if neither."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    pattern = rf"^(\d+)\s*({'|'.join(table)})$"
    match = re.match(pattern, value.strip()) if isinstance(value, str) else None
    return int(match[1]) * table[match[2]] if match else None


def duration_ms(value: Any) -> int | None:
    """A duration like 7d, 12h or 30m in milliseconds (also the sweeper's ttl labels)."""
    return parse_units(value, _DURATION_MS)


def _units(table: dict[str, int], example: str):
    """A BeforeValidator turning '7d' / '50GiB' (or a plain integer) into an integer."""

    def parse(value):
        parsed = parse_units(value, table)
        if parsed is None:
            raise PydanticCustomError("units", f"must be like {example}")
        return parsed

    return BeforeValidator(parse)


def _cores(value):
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    raise PydanticCustomError("cores", 'must be an integer >= 1 or "auto"')


def _version(value):
    # An unquoted 4.1 in YAML is a float; it means the same thing.
    return str(value) if isinstance(value, float) else value


DnsName = Annotated[str, _rule(_DNS_NAME.match, "must be lowercase letters, digits and '-'")]
# Kafka's rule for topic names; group names follow it too, as they name rendered files.
KafkaName = Annotated[
    str, _rule(_TOPIC.match, "must be 1-249 characters of letters, digits, '.', '_' and '-'")
]
Positive = Annotated[int, Field(ge=1)]


def _scalar(value):
    if isinstance(value, str | int | float | bool):
        return value
    raise PydanticCustomError("scalar", "must be a single value (text, number or true/false)")


Scalar = Annotated[str | int | float | bool, BeforeValidator(_scalar)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Cluster(_Model):
    name: DnsName
    kafka_version: Annotated[Literal["4.4", "4.1", "3.9"], BeforeValidator(_version)] = "4.4"
    mode: Literal["kraft", "zookeeper"] = "kraft"


class Node(_Model):
    name: DnsName
    host: Annotated[
        str, _rule(_HOST.match, "must be local, ssh://[user@]host[:port] or tcp://host:port")
    ] = "local"
    cores: Annotated[int | Literal["auto"], BeforeValidator(_cores)]
    memory_gb: float = Field(default=8, gt=0)
    roles: Annotated[list[Role], Field(min_length=1)]
    # Its node.id / broker.id (and ZooKeeper myid), kept when nodes are inserted, removed
    # or moved in the list; without it, its position among the nodes that take an id.
    id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None


class Topic(_Model):
    name: KafkaName
    partitions: Positive | None = None
    replication_factor: Positive | None = None
    min_insync_replicas: Positive | None = None
    retention: Annotated[int | None, _units(_DURATION_MS, "7d, 12h or 30m (ms, s, m, h, d, w)")] = (
        None  # in ms
    )
    retention_bytes: Annotated[
        int | None, _units(_SIZE_BYTES, "50GiB or 500MB (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)")
    ] = None
    compression: Compression | None = None


class Consumer(_Model):
    group: KafkaName
    topic: KafkaName
    sink: Annotated[
        str,
        _rule(
            lambda s: (
                s == "stdout"
                or (s.startswith("kafka:") and _TOPIC.match(s[6:]))
                or (s.startswith("file:") and len(s) > 5)
            ),
            "must be kafka:TOPIC, file:PATH or stdout",
        ),
    ] = "stdout"
    processes: Positive | None = None

    @property
    def sink_topic(self) -> str | None:
        return self.sink[6:] if self.sink.startswith("kafka:") else None


class Tuning(_Model):
    broker: dict[str, Scalar] = {}
    producer: dict[str, Scalar] = {}
    consumer: dict[str, Scalar] = {}


class User(_Model):
    """A principal of the operator's: the topics it may read (and its groups, by the
    prefix of its name) and write."""

    name: KafkaName
    read: list[KafkaName] = []
    write: list[KafkaName] = []


class Security(_Model):
    tls: bool = True  # TLS on client, inter-broker and controller listeners
    sasl: Literal["none", "scram-sha-256", "scram-sha-512"] = "scram-sha-512"
    acls: bool = True  # an authorizer that denies what no ACL allows
    users: list[User] = []
    allow_plaintext_across_hosts: bool = False

    @property
    def mechanism(self) -> str | None:
        """The SASL mechanism as Kafka names it (SCRAM-SHA-512), None without SASL."""
        return None if self.sasl == "none" else self.sasl.upper()

    @property
    def opted_out(self) -> bool:
        return not (self.tls or self.mechanism or self.acls)


class Spec(_Model):
    cluster: Cluster
    nodes: Annotated[list[Node], Field(min_length=1)]
    topics: list[Topic] = []
    consumers: list[Consumer] = []
    tuning: Tuning = Tuning()
    # Secure unless the spec opts out: absent is TLS, SCRAM-SHA-512 and ACLs.
    security: Security = Security()

    @property
    def locks(self) -> Security | None:
        """The security the plan puts on the cluster: None when the spec opts out of all."""
        return None if self.security.opted_out else self.security

    @cached_property
    def _by_role(self) -> dict[str, list[Node]]:
        found: dict[str, list[Node]] = {}
        for node in self.nodes:
            for role in node.roles:
                found.setdefault(role, []).append(node)
        return found

    def with_role(self, role: Role) -> list[Node]:
        """The nodes with `role`, in spec order (asked per node by the planners: cached)."""
        return list(self._by_role.get(role, []))
