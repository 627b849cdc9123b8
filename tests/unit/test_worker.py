"""The worker's rebalance callback, against a consumer stand-in: what was delivered for
partitions leaving is committed before they go; nothing else is."""

from __future__ import annotations

from confluent_kafka import TopicPartition

from consumers.settings import Settings
from consumers.worker import Worker


class Commits:
    def __init__(self):
        self.made: list[list[tuple[str, int, int]]] = []

    def commit(self, offsets, asynchronous):
        assert asynchronous is False
        self.made.append([(tp.topic, tp.partition, tp.offset) for tp in offsets])


def worker() -> Worker:
    quiet = {"log_level": "0"}  # nothing listens at 127.0.0.1:1
    settings = Settings("127.0.0.1:1", "g", ["t"], dlq="t.dlq", consumer=quiet, producer=quiet)
    return Worker(settings, index=0, stats_fd=None)  # connects to nothing until used


def test_a_refused_commit_is_made_for_revoked_partitions_before_they_move():
    w, consumer = worker(), Commits()
    w.delivered = [TopicPartition("t", 0, 120), TopicPartition("t", 1, 80)]  # commit refused
    w._on_revoke(consumer, [TopicPartition("t", 1)])
    assert consumer.made == [[("t", 1, 80)]]
    assert [(tp.partition, tp.offset) for tp in w.delivered] == [(0, 120)]  # still pending


def test_nothing_is_committed_on_revoke_when_every_delivery_was_committed():
    w, consumer = worker(), Commits()
    w._on_revoke(consumer, [TopicPartition("t", 0)])
    assert consumer.made == []
