"""The catalogue answers like Kafka's ConfigDef for every kind of key and validator."""

from __future__ import annotations

import pytest

from consumers.properties import to_property
from infra.kafka.catalog import CUSTOM_RULES, load


@pytest.mark.parametrize("version", ["3.9", "4.1"])
def test_every_custom_validator_of_the_catalogue_has_a_rule(version):
    customs = {
        facts["validator"]["summary"]
        for facts in load(version).keys.values()
        if (facts["validator"] or {}).get("kind") == "custom"
    }
    assert customs <= set(CUSTOM_RULES)


@pytest.mark.parametrize(
    ("key", "text", "reason"),
    [
        ("num.partitions", "12", None),
        ("num.partitions", " 12 ", None),  # Kafka trims values before parsing
        ("log.retention.ms", "9223372036854775807", None),  # LONG max stays an integer
        ("log.retention.ms", "9223372036854775808", "must be a 64-bit integer (LONG), got "),
        ("offsets.topic.replication.factor", "40000", "must be a 16-bit integer (SHORT), got "),
        ("log.cleaner.min.cleanable.ratio", "0.5", None),
        ("log.cleaner.min.cleanable.ratio", "half", "must be a number (DOUBLE), got "),
        ("compression.gzip.level", "-1", None),
        ("compression.gzip.level", "0", "must be -1 or between 1 and 9, got "),
        ("group.consumer.migration.policy", "UPGRADE", None),
        ("group.consumer.migration.policy", "sideways", "must be one of BIDIRECTIONAL"),
        ("remote.log.metadata.manager.listener.name", " ", "must not be empty, got "),
        ("authorizer.class.name", "", None),
        ("principal.builder.class", "not a class!", "must be a Java class name (CLASS), got "),
        ("controller.quorum.bootstrap.servers", "ctl-1:9093,[::1]:9093", None),
        ("controller.quorum.bootstrap.servers", "ctl-1", "must be a list of host:port entries"),
        ("listener.name.internal.ssl.keystore.location", "/etc/ks.jks", None),
        ("listener.name.sasl_ssl.plain.sasl.jaas.config", "x", None),
        ("listener.name.internal.no.such.key", "x", "unknown key for Kafka 4.1"),
        ("config.providers", "file", None),
    ],
)
def test_values_are_judged_like_kafka_41(key, text, reason):
    found = load("4.1").check(key, text, "kraft")
    if reason is None:
        assert found is None
    else:
        assert found is not None and found.startswith(reason)


@pytest.mark.parametrize(
    ("key", "text", "reason"),
    [
        ("inter.broker.protocol.version", "3.9-IV0", None),
        ("inter.broker.protocol.version", "three", "must be a metadata version"),
        ("remote.log.manager.copier.thread.pool.size", "-1", None),
        ("remote.log.manager.copier.thread.pool.size", "0", "must be -1 or greater than 0"),
        ("log.segment.bytes", "14", None),  # the 3.9 minimum; 4.1 raised it to 1 MiB
    ],
)
def test_values_are_judged_like_kafka_39(key, text, reason):
    found = load("3.9").check(key, text, "zookeeper")
    assert found == reason or (found and reason and found.startswith(reason))


def test_the_versions_differ_where_kafka_changed():
    assert load("4.1").check("log.segment.bytes", "14", "kraft") == ("must be >= 1048576, got '14'")
    assert load("3.9").default("num.recovery.threads.per.data.dir") == 1
    assert load("4.1").default("num.recovery.threads.per.data.dir") == 2
    assert [load(line).release for line in ("3.9", "4.1", "4.4")] == ["3.9.2", "4.1.2", "4.4.0"]


def test_properties_spelling():
    assert to_property(True) == "true"
    assert to_property(["a", "b"]) == "a,b"
    assert to_property(65536) == "65536"
