"""Producer and consumer settings, checked by librdkafka itself.

The workload runs on confluent-kafka, so the authority on which client settings
exist and which values they take is librdkafka: building a client (which connects
to nothing until it is used) validates every property offline.
"""

from __future__ import annotations

from typing import Literal

from confluent_kafka import Consumer, KafkaException, Producer

from infra.catalog import to_property

ClientKind = Literal["producer", "consumer"]


def _build(kind: ClientKind, settings: dict[str, str]) -> None:
    # log_level 0 keeps librdkafka quiet about the missing bootstrap.servers.
    conf = {**settings, "log_level": 0}
    if kind == "producer":
        Producer(conf)
    else:
        Consumer({"group.id": "kafka-log-cluster-check", **conf}).close()


def problems(kind: ClientKind, settings: dict[str, object]) -> dict[str, str]:
    """Key -> librdkafka's reason for refusing it, checked one key at a time."""
    found = {}
    for key, value in settings.items():
        try:
            _build(kind, {key: to_property(value)})
        except KafkaException as err:
            found[key] = err.args[0].str().strip()
    return found
