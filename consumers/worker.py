"""One worker process: a member of the consumer group, processing at least once.

Loop: consume a batch -> parse each record -> deliver the parsed ones to the sink and
the malformed ones (and those the sink refuses for what they are) to the DLQ -> commit
the batch's offsets. Offsets are committed only after both deliveries are acknowledged,
so a crash at any point re-reads the uncommitted batch: duplicates are possible, losses
are not. SIGTERM or SIGINT ends the loop after the current batch; while a sink is down
it ends at once, the batch left uncommitted for the next owner. The consumer then
leaves the group. A worker whose supervisor dies gets SIGTERM from the kernel.
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
from consumers.sinks import KafkaSink, make_sink, wait_keeping_alive
from consumers.stats import Latencies

STATS_INTERVAL_S = 2.0
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
    """Stopping while a sink is down: the batch is left uncommitted, for the next owner."""


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
        self.commit_pending = False  # delivered records whose commit was refused
        self.delivered: list[TopicPartition] = []  # their offsets, committed on revoke

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
        for message in self.consumer.consume(num_messages=1, timeout=0):
            # Paused partitions should hand out nothing; if one does, read it again later
            # rather than let its offset slip past unprocessed.
            if message.error() is None:
                self.consumer.seek(
                    TopicPartition(message.topic(), message.partition(), message.offset())
                )
        self._report()

    def _resume(self) -> None:
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
        """Partitions leaving: commit what was delivered for them if a commit is pending
        (refused earlier); what is mid-batch is re-read by the next owner."""
        self.counts["rebalances"] += 1
        if not self.delivered:
            return
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        offsets = [tp for tp in self.delivered if (tp.topic, tp.partition) in revoked]
        if offsets:
            try:
                self._commit_timed(consumer, offsets)
            except KafkaException as err:
                print(f"consumers[{os.getpid()}]: commit on revoke refused ({err.args[0].str()})",
                      file=sys.stderr, flush=True)  # fmt: skip
        self.delivered = [tp for tp in self.delivered if (tp.topic, tp.partition) not in revoked]

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

    def _to_dlq(self, letters: list[dict]) -> None:
        """Into the DLQ; a record it refuses (too large) goes cut to the first of DLQ_CUTS
        it takes, with a header saying so: never lost, never retried forever."""
        for i, reason in self.dlq.deliver_messages(letters, self.keepalive):
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

    def _process(self, messages) -> None:
        parsed: list[bytes] = []
        sources = []  # the record each parsed value came from
        malformed: list[dict] = []
        dumps = orjson.dumps
        for message in messages:
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise KafkaException(error)
                if error.code() != KafkaError._PARTITION_EOF:
                    print(f"consumers[{os.getpid()}]: {error.str()}", file=sys.stderr, flush=True)
                continue
            try:
                parsed.append(dumps(parse(message.value(), message.timestamp()[1])))
                sources.append(message)
            except ParseError as reason:
                malformed.append(self._dead_letter(message, str(reason)))
        delivered = len(parsed)
        if parsed:
            for i, why in self.sink.deliver(parsed, self.keepalive):
                refused = f"{self.sink.name} refused the parsed record: {why}"
                malformed.append(self._dead_letter(sources[i], refused))
                delivered -= 1
        if malformed:
            self._to_dlq(malformed)
        self._resume()
        self._commit()
        self.counts["records"] += delivered
        self.counts["dlq"] += len(malformed)
        self.counts["batches"] += 1

    def _commit(self) -> None:
        """Commit where consumption stands: every record returned so far is delivered.

        position() is, per assigned partition, the offset after the last record that
        consume() returned, so no per-record bookkeeping is needed. (A bare commit()
        would commit the offset store, which enable.auto.offset.store=false leaves empty.)
        """
        positions = [
            tp for tp in self.consumer.position(self.consumer.assignment()) if tp.offset >= 0
        ]
        self.commit_pending = False
        self.delivered = positions  # for on_revoke, until they are committed
        if not positions:
            return
        try:
            self._commit_timed(self.consumer, positions)
            self.delivered = []
        except KafkaException as err:
            # Refused mid-rebalance: retried each second for the partitions still owned;
            # partitions that moved are re-read by their new owner (twice, never lost).
            self.commit_pending = True
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
                messages = self.consumer.consume(num_messages=batch, timeout=0.5)
                if messages:
                    self._process(messages)
                elif self.commit_pending:
                    self._commit()
                self._report()
            self._report(force=True)
        except Abandoned:
            print(
                f"consumers[{os.getpid()}]: stopped while the sink was down; the last batch "
                "is left uncommitted for the next owner",
                file=sys.stderr,
                flush=True,
            )
        finally:
            self.sink.close()
            self.dlq.close()
            self.consumer.close()  # leaves the group: its partitions move at once
        return 0
