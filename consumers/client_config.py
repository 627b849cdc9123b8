"""Producer and consumer settings, checked by librdkafka itself.

The workload runs on confluent-kafka, so the authority on which client settings
exist and which values they take is librdkafka: building a client (which connects
to nothing until it is used) validates every property offline. Settings are checked
together, as a client gets them: librdkafka also checks some against each other
(max.poll.interval.ms must be >= session.timeout.ms), and a key alone would be
judged against the other's default.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Literal

from confluent_kafka import Consumer, KafkaException, Producer

from consumers.properties import to_property

ClientKind = Literal["producer", "consumer"]
# librdkafka's words for a rule across settings, checked when the client is created.
_ACROSS = "Failed to create"
_NAMED = re.compile(r"`([a-z0-9.]+)`")


def _build(kind: ClientKind, settings: tuple[tuple[str, str], ...]) -> None:
    # log_level 0 keeps librdkafka quiet about the missing bootstrap.servers.
    conf = {**dict(settings), "log_level": 0}
    if kind == "producer":
        Producer(conf)
    else:
        Consumer({"group.id": "kafka-log-cluster-check", **conf}).close()


@functools.lru_cache(maxsize=4096)
def refusal(kind: ClientKind, settings: tuple[tuple[str, str], ...]) -> str | None:
    """librdkafka's reason for refusing these settings, or None. Cached: a plan renders
    the same few settings for every consumer node, and each check builds a client."""
    try:
        _build(kind, settings)
    except KafkaException as err:
        return err.args[0].str().strip()
    return None


def problems(kind: ClientKind, settings: Mapping[str, object]) -> dict[str, str]:
    """Key -> librdkafka's reason for refusing it. A key or value librdkafka does not
    take is named alone; a rule across keys under the first key the rule names."""
    texts = {key: to_property(value) for key, value in settings.items()}
    found = {}
    for key, text in texts.items():
        reason = refusal(kind, ((key, text),))
        if reason and not reason.startswith(_ACROSS):
            about_value = "No such configuration property" not in reason and text not in reason
            found[key] = f"{reason}, got {text!r}" if about_value else reason
    if found:
        return found
    reason = refusal(kind, tuple(sorted(texts.items())))
    if reason is None:
        return {}
    named = [k for k in _NAMED.findall(reason) if k in texts] or sorted(texts)
    detail = ", ".join(f"{k}={texts[k]}" for k in named)
    return {named[0]: f"{reason.removeprefix(_ACROSS + ' ' + kind + ': ')}, got {detail}"}
