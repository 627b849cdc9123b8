"""The worker's pipeline against stand-ins: batches settle oldest first, a revoke commits
what is acknowledged for the partitions leaving, and never an offset past a record whose
delivery is still open."""

from __future__ import annotations

from confluent_kafka import TopicPartition

from consumers import worker as worker_module
from consumers.settings import Settings
from consumers.sinks import Sent
from consumers.worker import Batch, Worker


class Commits:
    def __init__(self, owned: tuple[int, ...] = ()):
        self.made: list[list[tuple[str, int, int]]] = []
        self.owned = [TopicPartition("t", p) for p in owned]

    def assignment(self) -> list[TopicPartition]:
        return self.owned

    def resume(self, _partitions) -> None: ...

    def commit(self, offsets, asynchronous):
        assert asynchronous is False
        self.made.append(sorted((tp.topic, tp.partition, tp.offset) for tp in offsets))


def worker() -> Worker:
    quiet = {"log_level": "0"}  # nothing listens at 127.0.0.1:1
    settings = Settings("127.0.0.1:1", "g", ["t"], dlq="t.dlq", consumer=quiet, producer=quiet)
    return Worker(settings, index=0, stats_fd=None)  # connects to nothing until used


def batch(acked: bool, **offsets: int) -> Batch:
    """A batch of one record per partition (t0=120: partition 0 up to offset 119)."""
    sent = Sent([(i, {"value": b"{}"}) for i in range(len(offsets))])
    if acked:
        for entry in sent.entries:
            sent.report(*entry, None)
    positions = {("t", int(name[1:])): offset for name, offset in offsets.items()}
    return Batch(positions, sources=[None] * len(offsets), sent=sent, letters=[], dead=None)


def test_a_refused_commit_is_made_for_revoked_partitions_before_they_move():
    w, consumer = worker(), Commits()
    w.settled = {("t", 0): 120, ("t", 1): 80}  # commit refused
    w._on_revoke(consumer, [TopicPartition("t", 1)])
    assert consumer.made == [[("t", 1, 80)]]
    assert w.settled == {("t", 0): 120}  # still pending, for the next round


def test_nothing_is_committed_on_revoke_when_every_delivery_was_committed():
    w, consumer = worker(), Commits()
    w._on_revoke(consumer, [TopicPartition("t", 0)])
    assert consumer.made == []


def test_a_revoke_commits_the_acknowledged_prefix_and_nothing_behind_an_open_batch(monkeypatch):
    monkeypatch.setattr(worker_module, "REVOKE_WAIT_S", 0.1)
    w, consumer = worker(), Commits()
    w.in_flight = [batch(True, t0=50, t1=60), batch(False, t0=70, t1=90), batch(True, t1=120)]
    w._on_revoke(consumer, [TopicPartition("t", 1)])
    assert consumer.made == [[("t", 1, 60)]]  # not 120: offsets 60..89 are unacknowledged
    assert w.settled == {("t", 0): 50}
    assert [b.offsets for b in w.in_flight] == [{("t", 0): 70}, {}]  # t1 is the next owner's


def test_a_revoke_while_the_oldest_batch_settles_settles_nothing_behind_it(monkeypatch):
    """Settling the oldest batch polls the consumer (keepalive) while its acks come,
    which may run the revoke: its acks are in by then, but that settle is not over (a
    retry or a dead letter may follow), so nothing is committed from it or behind it."""
    monkeypatch.setattr(worker_module, "REVOKE_WAIT_S", 0.1)
    w, consumer = worker(), Commits()
    w.in_flight, w.settling = [batch(True, t1=60), batch(True, t1=90)], True
    w._on_revoke(consumer, [TopicPartition("t", 1)])
    assert consumer.made == []
    assert [b.offsets for b in w.in_flight] == [{}, {}]  # t1's records: the next owner's


def test_batches_settle_oldest_first_and_their_offsets_stack():
    w = worker()
    w.in_flight = [batch(True, t0=10, t1=20), batch(True, t0=30)]
    w._settle_ready()
    assert w.settled == {("t", 0): 30, ("t", 1): 20}
    assert (w.in_flight, w.counts["batches"], w.counts["records"]) == ([], 2, 3)


def test_an_open_batch_holds_back_the_acknowledged_ones_behind_it():
    w = worker()
    w.in_flight = [batch(False, t0=10), batch(True, t1=20)]
    w._settle_ready()
    assert w.settled == {} and len(w.in_flight) == 2


def test_while_records_flow_offsets_are_committed_when_due_and_at_once_when_they_stop():
    w, consumer = worker(), Commits(owned=(0, 1))
    w.consumer = consumer  # type: ignore[assignment]
    w.settled = {("t", 0): 10}
    w._commit_when_due(idle=False)  # the first commit is due at once
    w.settled = {("t", 0): 20}
    w._commit_when_due(idle=False)  # the next is due COMMIT_INTERVAL_S later
    assert consumer.made == [[("t", 0, 10)]]
    w._commit_when_due(idle=True)
    assert consumer.made == [[("t", 0, 10)], [("t", 0, 20)]]
    assert w.settled == {}


def test_a_commit_leaves_out_partitions_no_longer_owned():
    w, consumer = worker(), Commits(owned=(0,))
    w.consumer = consumer  # type: ignore[assignment]
    w.settled = {("t", 0): 10, ("t", 1): 30}  # t1 moved while its batch settled
    w._commit_when_due(idle=True)
    assert consumer.made == [[("t", 0, 10)]]


def test_resuming_after_a_retry_keeps_the_commit_cadence():
    w, consumer = worker(), Commits(owned=(0,))
    w.consumer = consumer  # type: ignore[assignment]
    w.settled = {("t", 0): 10}
    w._commit_when_due(idle=False)
    w.paused = True  # keepalive() paused the partitions while a delivery retried
    w._resume()
    w.settled = {("t", 0): 20}
    w._commit_when_due(idle=False)
    assert consumer.made == [[("t", 0, 10)]]  # the next commit is still COMMIT_INTERVAL_S off
