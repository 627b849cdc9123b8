"""A worker's settings: the group protocol decides what the client may set itself."""

from __future__ import annotations

import pytest

from consumers.settings import SettingsError, build


def settings(tmp_path, text: str, **overrides: str):
    config = tmp_path / "consumer.properties"
    config.write_text(f"bootstrap.servers=b:9092\ngroup.id=g\ntopics=t\n{text}")
    return build(
        config=str(config), bootstrap_servers=None, group=None, topics=None, sink=None,
        dlq=None, processes=1, metrics=None, overrides=overrides,
    )  # fmt: skip


def test_the_classic_protocol_gets_the_incremental_assignor_and_a_client_session(tmp_path):
    found = settings(tmp_path, "", **{"session.timeout.ms": "6000"}).consumer_config()
    assert found["partition.assignment.strategy"] == "cooperative-sticky"
    assert found["session.timeout.ms"] == "6000"


def test_kip_848_leaves_assignment_and_session_to_the_brokers(tmp_path):
    found = settings(tmp_path, "consumer.group.protocol=consumer\n").consumer_config()
    assert found["group.protocol"] == "consumer"
    assert "partition.assignment.strategy" not in found and "session.timeout.ms" not in found


def test_a_client_session_timeout_with_kip_848_is_one_line(tmp_path):
    with pytest.raises(SettingsError) as refused:
        settings(tmp_path, "consumer.group.protocol=consumer\n", **{"session.timeout.ms": "6000"})
    assert str(refused.value) == (
        f"{tmp_path}/consumer.properties: session.timeout.ms is the brokers' to decide with "
        "group.protocol=consumer (KIP-848: group.consumer.* in server.properties); drop it"
    )
