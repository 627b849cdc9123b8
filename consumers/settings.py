"""What a consumer deployment runs with: the rendered settings file, then the command line.

The plan renders `consumer-<group>.properties` (worker keys, then librdkafka keys
prefixed `consumer.` and `producer.`). Flags given on the command line win over the
file. A few librdkafka settings are the worker's own, because at-least-once delivery
depends on them; the plan refuses them in `tuning`, and they are forced here.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from consumers.properties import parse

# Offsets are stored and committed by the worker after the sink acknowledges a batch.
WORKER_CONSUMER_KEYS = {"enable.auto.commit": "false", "enable.auto.offset.store": "false"}
# A sink or DLQ record counts as delivered once every in-sync replica has it.
WORKER_PRODUCER_KEYS = {"acks": "all"}
# How both clients connect (the cluster's security): top-level keys of the file, set by
# the plan for both clients alike, never per client.
CONNECTION_KEYS = (
    "security.protocol",
    "sasl.mechanism",
    "sasl.username",
    "sasl.password",
    "ssl.ca.location",
)
OWNED_KEYS = {
    "consumer": {*WORKER_CONSUMER_KEYS, *CONNECTION_KEYS, "bootstrap.servers", "group.id"},
    "producer": {*WORKER_PRODUCER_KEYS, *CONNECTION_KEYS, "bootstrap.servers"},
}
# Kafka's FileConfigProvider syntax: the value of KEY in the properties file PATH.
_REFERENCE = re.compile(r"^\$\{file:(?P<path>[^:}]+):(?P<key>[^}]+)\}$")
# Used when no settings file says otherwise: no log skipped, minimal rebalances (the
# classic protocol's incremental assignor; KIP-848's broker-side one needs no setting).
CONSUMER_DEFAULTS = {"auto.offset.reset": "earliest"}
CLASSIC_DEFAULTS = {"partition.assignment.strategy": "cooperative-sticky"}
# What the broker decides for a KIP-848 group; librdkafka refuses them on the client.
BROKER_SIDE = ("session.timeout.ms", "heartbeat.interval.ms", "partition.assignment.strategy")
DEFAULT_BATCH = 1000


class SettingsError(ValueError):
    """Bad settings, said in one line."""


@dataclass
class Settings:
    bootstrap_servers: str
    group: str
    topics: list[str]
    sink: str = "stdout"
    dlq: str = ""
    processes: int = 0  # 0: the file's count, else this machine's cores
    metrics: str = ""  # HOST:PORT where the supervisor serves Prometheus metrics; "": nowhere
    consumer: dict[str, str] = field(default_factory=dict)
    producer: dict[str, str] = field(default_factory=dict)
    connection: dict[str, str] = field(default_factory=dict)  # secrets resolved

    @property
    def batch(self) -> int:
        return int(self.consumer.get("max.poll.records", DEFAULT_BATCH))

    @property
    def group_protocol(self) -> str:
        return self.consumer.get("group.protocol", "classic")

    def consumer_config(self) -> dict[str, str]:
        classic = CLASSIC_DEFAULTS if self.group_protocol == "classic" else {}
        return {
            **CONSUMER_DEFAULTS,
            **classic,
            **self.consumer,
            **WORKER_CONSUMER_KEYS,
            **self.connection,
            "bootstrap.servers": self.bootstrap_servers,
            "group.id": self.group,
        }

    def producer_config(self) -> dict[str, str]:
        return {
            **self.producer,
            **WORKER_PRODUCER_KEYS,
            **self.connection,
            "bootstrap.servers": self.bootstrap_servers,
        }


def read_file(path: str) -> dict[str, str]:
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise SettingsError(f"{path}: cannot read the settings file: {err.strerror}") from None
    return {e.key: e.value.strip() for e in parse(text)}


def resolve(value: str, where: str) -> str:
    """A `${file:PATH:KEY}` reference (as Kafka's FileConfigProvider reads it) replaced by
    KEY's value in PATH; any other value as it is."""
    match = _REFERENCE.match(value)
    if not match:
        return value
    path, key = match["path"], match["key"]
    found = read_file(path).get(key)
    if found is None:
        raise SettingsError(f"{where}: {path} has no {key} (it names a secret of {where})")
    return found


def client_file(path: str) -> dict[str, str]:
    """A client properties file (`clients/<user>.properties`), references resolved."""
    return {key: resolve(value, path) for key, value in read_file(path).items()}


def metrics_address(value: str, where: str) -> tuple[str, int]:
    """HOST:PORT (an IPv6 host in brackets) as (host, port)."""
    host, colon, port = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not (colon and host and port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise SettingsError(f"{where} must be HOST:PORT with a port from 1 to 65535, got {value!r}")
    return host, int(port)


def prefixed(file: dict[str, str], kind: str) -> dict[str, str]:
    """The `consumer.` or `producer.` settings of a rendered file, without the prefix."""
    return {k.removeprefix(f"{kind}."): v for k, v in file.items() if k.startswith(f"{kind}.")}


def build(
    *,
    config: str | None,
    bootstrap_servers: str | None,
    group: str | None,
    topics: list[str] | None,
    sink: str | None,
    dlq: str | None,
    processes: int | None,
    metrics: str | None,
    overrides: dict[str, str],
) -> Settings:
    """Settings from the file (if any) and the flags; flags win. `overrides`: consumer.* keys."""
    file = read_file(config) if config else {}
    where = config or "the command line"

    def pick(flag, key: str) -> str | None:
        return flag if flag not in (None, []) else file.get(key)

    values = {  # the file's key -> (its command-line flag, the value found)
        "bootstrap.servers": ("--bootstrap-servers", pick(bootstrap_servers, "bootstrap.servers")),
        "group.id": ("--group", pick(group, "group.id")),
        "topics": ("--topic", ",".join(topics) if topics else file.get("topics")),
    }
    missing = [flag for flag, value in values.values() if not value]
    if missing:
        raise SettingsError(f"{where}: missing {', '.join(missing)}")
    topic_list = [t.strip() for t in (values["topics"][1] or "").split(",") if t.strip()]
    sink_value = pick(sink, "sink") or "stdout"
    if not (sink_value == "stdout" or sink_value.startswith(("kafka:", "file:"))):
        raise SettingsError(
            f"{where}: sink must be kafka:TOPIC, file:PATH or stdout, got {sink_value!r}"
        )
    metrics_value = pick(metrics, "metrics") or ""
    if metrics_value:
        metrics_address(metrics_value, "--metrics" if metrics else f"{where}: metrics")
    consumer = {**prefixed(file, "consumer"), **overrides}
    if consumer.get("group.protocol") == "consumer":
        told = [k for k in BROKER_SIDE if k in consumer]
        if told:
            raise SettingsError(
                f"{where}: {told[0]} is the brokers' to decide with group.protocol=consumer "
                "(KIP-848: group.consumer.* in server.properties); drop it"
            )
    count = processes if processes is not None else int(file.get("processes", 0))
    if count < 0:
        raise SettingsError(f"{where}: processes must be >= 1, got {count}")
    return Settings(
        bootstrap_servers=values["bootstrap.servers"][1] or "",
        group=values["group.id"][1] or "",
        topics=topic_list,
        sink=sink_value,
        dlq=pick(dlq, "dlq") or f"{topic_list[0]}.dlq",
        processes=count or os.cpu_count() or 1,
        metrics=metrics_value,
        consumer=consumer,
        producer=prefixed(file, "producer"),
        connection={k: resolve(file[k], where) for k in CONNECTION_KEYS if k in file},
    )
