"""Producer and consumer settings, checked by librdkafka itself.

The workload runs on confluent-kafka, so the authority on which client settings
exist and which values they take is librdkafka: building a client (which connects
to nothing until it is used) validates every property offline.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Literal

from confluent_kafka import Consumer, KafkaException, Producer

from consumers.properties import to_property

ClientKind = Literal["producer", "consumer"]


def _build(kind: ClientKind, settings: dict[str, str]) -> None:
    # log_level 0 keeps librdkafka quiet about the missing bootstrap.servers.
    conf = {**settings, "log_level": 0}
    if kind == "producer":
        Producer(conf)
    else:
        Consumer({"group.id": "kafka-log-cluster-check", **conf}).close()


@functools.lru_cache(maxsize=4096)
def refusal(kind: ClientKind, key: str, text: str) -> str | None:
    """librdkafka's reason for refusing `key=text`, or None. Cached: a plan renders the
    same few settings for every consumer node, and each check builds a client."""
    try:
        _build(kind, {key: text})
    except KafkaException as err:
        reason = err.args[0].str().strip()
        about_value = "No such configuration property" not in reason and text not in reason
        return f"{reason}, got {text!r}" if about_value else reason
    return None


def problems(kind: ClientKind, settings: Mapping[str, object]) -> dict[str, str]:
    """Key -> librdkafka's reason for refusing it, checked one key at a time."""
    found = {key: refusal(kind, key, to_property(value)) for key, value in settings.items()}
    return {key: reason for key, reason in found.items() if reason}
