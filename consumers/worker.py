"""One worker process: a member of the consumer group, processing at least once.

Loop: consume a batch -> parse each record -> send the parsed ones to the sink and the
malformed ones to the DLQ -> consume and parse the next batch while those deliveries
are acknowledged -> settle the oldest batch (the records the sink refuses for what
they are go to the DLQ) -> commit the settled offsets every COMMIT_INTERVAL_S. Batches
settle in the order they were read, and an offset is committed only after both
deliveries of every record before it are acknowledged, so a crash at any point re-reads
what is uncommitted: duplicates are possible, losses are not. At most IN_FLIGHT batches
are unsettled at once. SIGTERM or SIGINT ends the loop, settles what is in flight and
commits it; while a sink is down it ends at once, those batches left uncommitted for
the next owner. The consumer then leaves the group. A worker whose supervisor dies gets
SIGTERM from the kernel.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from consumers.parsing import ParseError, parse
from consumers.settings import Settings
from consumers.sinks import KafkaSink, Rejected, Sent, make_sink, wait_keeping_alive
from consumers.stats import Latencies

STATS_INTERVAL_S = 2.0
# Batches sent and not yet acknowledged: parsing runs ahead of the brokers' acks (one
# batch parses in about the time a linger plus an acks=all round trip takes), and a
# crash re-reads at most this many batches.
IN_FLIGHT = 4
# Offsets are committed (synchronously, one round trip to the group coordinator) at
# most this often while records flow, and at once when they stop: committing after
# every batch left the worker idle for a fifth of its time. A crash re-reads at most
# this long's records more.
COMMIT_INTERVAL_S = 0.2
# How long a revoke waits for the acks of what is in flight before the partitions go:
# what is acknowledged by then is committed; the rest is re-read by the next owner.
REVOKE_WAIT_S = 5.0
# A record the DLQ refuses too (larger than it takes) goes there cut to the first of
# these sizes it takes, with a header saying so; an empty value with headers at last.
DLQ_CUTS = (64 * 1024, 4096, 512, 0)


def _lag(partition: dict) -> int:
    """Records of an assigned partition not committed yet. librdkafka's consumer_lag is
    -1 until a first commit and for a paused partition, which would hide exactly the
    stalls lag is watched for: with nothing committed, all that the partition holds is
    owed (auto.offset.reset=earliest is planned)."""
    high = partition.get("hi_offset", -1)
    if high < 0:
        return 0
    done = partition.get("committed_offset", -1)
    if done < 0:
        done = max(partition.get("lo_offset", -1), 0)
    return max(0, high - done)


class Abandoned(Exception):
    """Stopping while a sink is down: the batches in flight stay uncommitted, for the next owner."""


Offsets = dict[tuple[str, int], int]  # (topic, partition) -> the next offset to read


class Batch:
    """One consumed batch on its way: its deliveries, and where each partition stands
    once they are acknowledged."""

    def __init__(self, offsets: Offsets, sources: list, sent: Sent, letters: list[dict],
                 dead: Sent | None):  # fmt: skip
        self.offsets, self.sources, self.sent = offsets, sources, sent
        self.letters, self.dead = letters, dead  # malformed records, and their DLQ send

    @property
    def done(self) -> bool:
        return self.sent.done and (self.dead is None or self.dead.done)

    @property
    def clean(self) -> bool:
        """Acknowledged with nothing to retry or to dead-letter: settles without waiting."""
        return self.sent.clean and (self.dead is None or self.dead.clean)


class Worker:
    def __init__(self, settings: Settings, index: int, stats_fd: int | None):
        self.settings, self.index, self.stats_fd = settings, index, stats_fd
        self.stopping = False
        self.counts = {"records": 0, "dlq": 0, "batches": 0, "rebalances": 0}
        self.commits = Latencies()
        self.lag: dict[str, int] = {}  # "topic:N" -> records behind, from librdkafka's stats
        self.consumer = Consumer(
            {
                **settings.consumer_config(),
                "statistics.interval.ms": int(STATS_INTERVAL_S * 1000),
                "stats_cb": self._on_stats,
            }
        )
        self.producer = Producer(settings.producer_config())
        self.sink = make_sink(settings.sink, self.producer)
        self.dlq = KafkaSink(self.producer, settings.dlq)
        self.last_report = time.monotonic()
        self.in_flight: list[Batch] = []  # oldest first
        self.settled: Offsets = {}  # acknowledged, not committed yet (or the commit refused)
        self.paused = False
        self.commit_due = 0.0  # monotonic time of the next commit while records flow
        self.settling = False  # the oldest batch is settling: nothing behind it may

    # -- group membership

    def _on_stats(self, raw: str) -> None:
        stats = orjson.loads(raw)
        self.lag = {
            f"{name}:{pid}": _lag(p)
            for name, topic in stats.get("topics", {}).items()
            for pid, p in topic.get("partitions", {}).items()
            if pid != "-1" and p.get("desired")
        }

    def keepalive(self) -> None:
        """While a delivery retries: stay in the group without taking new records, and
        give up the batch (uncommitted) if asked to stop."""
        if self.stopping:
            raise Abandoned()
        assignment = self.consumer.assignment()
        if assignment:
            self.consumer.pause(assignment)
            self.paused = True
        for message in self.consumer.consume(num_messages=1, timeout=0):
            # Paused partitions should hand out nothing; if one does, read it again later
            # rather than let its offset slip past unprocessed.
            if message.error() is None:
                self.consumer.seek(
                    TopicPartition(message.topic(), message.partition(), message.offset())
                )
        self._report()

    def _resume(self) -> None:
        if not self.paused:
            return
        self.paused = False
        assignment = self.consumer.assignment()
        if assignment:
            self.consumer.resume(assignment)

    def _report(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.stats_fd is None or (not force and now - self.last_report < STATS_INTERVAL_S):
            return
        partitions = sorted(f"{tp.topic}:{tp.partition}" for tp in self.consumer.assignment())
        line = {
            "worker": self.index,
            "pid": os.getpid(),
            "seconds": round(now - self.last_report, 3),
            **self.counts,
            "commit_buckets": self.commits.buckets,
            "commit_sum": self.commits.sum,
            # librdkafka's stats lag behind a rebalance: only the partitions owned now
            "lag": {p: self.lag[p] for p in partitions if p in self.lag},
            "partitions": partitions,
        }
        os.write(self.stats_fd, orjson.dumps(line) + b"\n")
        self.counts = dict.fromkeys(self.counts, 0)
        self.commits = Latencies()
        self.last_report = now

    # -- the loop

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """librdkafka keeps a partition's pause across rebalances: one paused by
        keepalive(), revoked mid-delivery and assigned back later would never be fetched
        again. Start every assigned partition fetching; a delivery still retrying pauses
        it again at its next keepalive()."""
        self.counts["rebalances"] += 1
        consumer.resume(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions leaving: commit what is acknowledged for them, waiting a little for
        what is in flight; the rest is re-read by the next owner (twice, never lost).
        Only clean batches settle here: a retry or a dead letter needs keepalive(),
        which must not poll the consumer from inside its own callback."""
        self.counts["rebalances"] += 1
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        deadline = time.monotonic() + REVOKE_WAIT_S
        while any(not b.done for b in self.in_flight) and time.monotonic() < deadline:
            self.producer.poll(0.05)
        while not self.settling and self.in_flight and self.in_flight[0].clean:
            self._settle_oldest()
        leaving = {key: self.settled.pop(key) for key in revoked if key in self.settled}
        for batch in self.in_flight:  # from the first unsettled batch on: the next owner's
            for key in revoked:
                batch.offsets.pop(key, None)
        if not leaving:
            return
        try:
            self._commit_timed(consumer, _partitions(leaving))
        except KafkaException as err:
            print(f"consumers[{os.getpid()}]: commit on revoke refused ({err.args[0].str()})",
                  file=sys.stderr, flush=True)  # fmt: skip

    @staticmethod
    def _dead_letter(message, reason: str) -> dict:
        return {
            "value": message.value(),
            "headers": [
                ("error", reason.encode()),
                ("source.topic", message.topic().encode()),
                ("source.partition", str(message.partition()).encode()),
                ("source.offset", str(message.offset()).encode()),
            ],
        }

    def _to_dlq(self, letters: list[dict], refused: Rejected) -> None:
        """Letters the DLQ refused (too large) go cut to the first of DLQ_CUTS it takes,
        with a header saying so: never lost, never retried forever."""
        for i, reason in refused:
            value = letters[i]["value"] or b""
            for size in DLQ_CUTS:
                note = f"{len(value)} bytes, kept {min(size, len(value))}: {reason}"
                cut = {
                    "value": value[:size],
                    "headers": [*letters[i]["headers"], ("truncated", note.encode())],
                }
                if not self.dlq.deliver_messages([cut], self.keepalive):
                    break
            else:  # not even an empty value: the DLQ itself is broken; retry, never drop
                while self.dlq.deliver_messages([cut], self.keepalive):
                    wait_keeping_alive(1.0, self.keepalive)

    def _send(self, messages) -> None:
        """Parse a consumed batch and send it on; it settles later, in order."""
        parsed: list[bytes] = []
        sources = []  # the record each parsed value came from
        letters: list[dict] = []
        offsets: Offsets = {}
        dumps = orjson.dumps
        for message in messages:
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise KafkaException(error)
                if error.code() != KafkaError._PARTITION_EOF:
                    print(f"consumers[{os.getpid()}]: {error.str()}", file=sys.stderr, flush=True)
                continue
            offsets[(message.topic(), message.partition())] = message.offset() + 1
            try:
                parsed.append(dumps(parse(message.value(), message.timestamp()[1])))
                sources.append(message)
            except ParseError as reason:
                letters.append(self._dead_letter(message, str(reason)))
        if not offsets:
            return
        sent = self.sink.send(parsed, self.keepalive)
        dead = self.dlq.send_messages(letters, self.keepalive) if letters else None
        self.in_flight.append(Batch(offsets, sources, sent, letters, dead))

    def _settle(self, batch: Batch) -> None:
        """Wait for a batch's deliveries (retrying what failed), dead-letter what the sink
        refused, and mark its offsets ready to commit."""
        refused = self.sink.settle(batch.sent, self.keepalive)
        letters, dead = batch.letters, batch.dead
        if dead is not None:
            self._to_dlq(letters, self.dlq.settle(dead, self.keepalive))
        if refused:
            why = f"{self.sink.name} refused the parsed record: "
            late = [self._dead_letter(batch.sources[i], why + reason) for i, reason in refused]
            self._to_dlq(late, self.dlq.deliver_messages(late, self.keepalive))
        self.settled.update(batch.offsets)
        self.counts["records"] += len(batch.sources) - len(refused)
        self.counts["dlq"] += len(letters) + len(refused)
        self.counts["batches"] += 1

    def _settle_oldest(self) -> None:
        """A batch leaves in_flight only once settled: a revoke that comes while it
        retries (its keepalive polls) sees it unsettled and commits nothing behind it."""
        self.settling = True
        try:
            self._settle(self.in_flight[0])
        finally:
            self.settling = False
        self.in_flight.pop(0)

    def _settle_ready(self) -> None:
        """Settle the batches whose acks are in, oldest first, and wait for the oldest
        ones until fewer than IN_FLIGHT remain."""
        self.producer.poll(0)  # serve the delivery reports that have come
        while self.in_flight and (self.in_flight[0].done or len(self.in_flight) >= IN_FLIGHT):
            self._settle_oldest()
        self._resume()

    def _commit_when_due(self, idle: bool) -> None:
        """Every COMMIT_INTERVAL_S while records flow; at once when they stop."""
        if self.settled and (idle or time.monotonic() >= self.commit_due):
            self._commit()

    def _commit(self) -> None:
        """Commit every settled offset of a partition still owned; a refused commit stays
        in `settled`, retried when the next commit is due and made on revoke."""
        self.commit_due = time.monotonic() + COMMIT_INTERVAL_S
        owned = {(tp.topic, tp.partition) for tp in self.consumer.assignment()}
        self.settled = {key: offset for key, offset in self.settled.items() if key in owned}
        if not self.settled:
            return
        try:
            self._commit_timed(self.consumer, _partitions(self.settled))
            self.settled = {}
        except KafkaException as err:
            # Refused mid-rebalance: retried for the partitions still owned; partitions
            # that moved are re-read by their new owner (twice, never lost).
            print(
                f"consumers[{os.getpid()}]: commit refused ({err.args[0].str()}); retrying",
                file=sys.stderr,
                flush=True,
            )

    def _commit_timed(self, consumer: Consumer, offsets: list[TopicPartition]) -> None:
        """A synchronous commit, its latency observed whether or not it was refused."""
        started = time.monotonic()
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        finally:
            self.commits.observe(time.monotonic() - started)

    def stop(self, *_args) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        self.consumer.subscribe(
            self.settings.topics, on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        batch = self.settings.batch
        try:
            while not self.stopping:
                # With batches in flight, come back soon to settle them.
                timeout = 0.05 if self.in_flight else 0.5
                messages = self.consumer.consume(num_messages=batch, timeout=timeout)
                if messages:
                    self._send(messages)
                self._settle_ready()
                self._commit_when_due(idle=not messages)
                self._report()
            while self.in_flight:  # stopping: settle what was sent, then commit it
                self._settle_oldest()
            self._commit()
            self._report(force=True)
        except Abandoned:
            print(
                f"consumers[{os.getpid()}]: stopped while the sink was down; the batches in "
                "flight are left uncommitted for the next owner",
                file=sys.stderr,
                flush=True,
            )
        finally:
            self.sink.close()
            self.dlq.close()
            self.consumer.close()  # leaves the group: its partitions move at once
        return 0


def _partitions(offsets: Offsets) -> list[TopicPartition]:
    return [TopicPartition(topic, part, offset) for (topic, part), offset in offsets.items()]
