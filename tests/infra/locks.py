"""Trying a secured cluster's locks from outside: a login, a read, a write, a handshake.

Each function answers what the cluster did with one attempt, so a check compares it
with what the plan says should happen. Shared by verify (tests/infra) and the
integration tests that prove each lock can fail.
"""

from __future__ import annotations

import socket
import ssl
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from cryptography import x509

ATTEMPT_S = 10  # a refused fetch errs within a second; silence this long means allowed


def refusal(settings: dict) -> KafkaError | None:
    """The error a client with these settings meets asking for metadata (None: served)."""
    errors: list[KafkaError] = []
    admin = AdminClient({**settings, "log_level": 0, "error_cb": errors.append})
    try:
        admin.list_topics(timeout=5)
    except KafkaException as err:
        admin.poll(1)  # the error callback's report of why, if it has not run yet
        return next((e for e in errors if e.code() == KafkaError._AUTHENTICATION), err.args[0])
    return None


def read_error(login: dict, topic: str) -> int | None:
    """The error code a read of `topic`'s partition 0 as `login` gets; None: it read a
    record, or fetched for ATTEMPT_S without being refused (an empty partition)."""
    consumer = Consumer(
        {**login, "group.id": login.get("sasl.username", "reader"), "log_level": 0}
        | {"enable.auto.commit": False}
    )
    try:
        # Without even Describe the topic's metadata is refused, and a fetch never starts.
        refused = consumer.list_topics(topic, timeout=10).topics[topic].error
        if refused is not None:
            return refused.code()
        consumer.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + ATTEMPT_S
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            # A user without a group ACL is also refused the group it names: not the read.
            if error is not None and error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED:
                continue
            return error.code() if error is not None else None
        return None
    finally:
        consumer.close()


def write_error(login: dict, topic: str) -> int | None:
    """The error code a write to `topic`'s partition 0 as `login` gets; None: written."""
    outcome: list[KafkaError | None] = []
    producer = Producer({**login, "log_level": 0, "message.timeout.ms": 10_000})
    producer.produce(topic, b"probe", partition=0, on_delivery=lambda e, _m: outcome.append(e))
    producer.flush(15)
    assert outcome, f"no delivery report for {topic}"
    return outcome[0].code() if outcome[0] is not None else None


def served_subject(address: str, ca_file: str) -> str:
    """The subject of the certificate served at host:port, verified against `ca_file`
    and the host name (ssl.SSLCertVerificationError when either fails)."""
    host, port = address.rsplit(":", 1)
    context = ssl.create_default_context(cafile=ca_file)
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        served = tls.getpeercert(binary_form=True)
    assert served is not None
    return x509.load_der_x509_certificate(served).subject.rfc4514_string()
