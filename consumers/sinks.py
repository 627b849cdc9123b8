"""Where normalized records go, and where malformed ones go (the DLQ).

A delivery has two halves, so the worker can parse its next batch while this one's
acknowledgements are on the way: `send()` hands the records over and returns at once
(a Kafka topic; a file is written and synced there and then), and `settle()` returns
only once the sink has acknowledged every record it can take: Kafka delivery reports
(acks=all), or write + fsync for a file. Until then it retries, calling `keepalive()`
between attempts so the worker stays in its consumer group. A record the sink refuses
for what it is (larger than the topic takes, invalid) can never be delivered by
retrying: `settle()` returns those, with the reason, and the worker sends each to the
DLQ instead. Nothing is dropped, and nothing retries forever on a record that cannot
succeed; the worker commits offsets only after `settle()` returns. `deliver()` is both
halves at once.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException, Producer

KeepAlive = Callable[[], None]
RETRY_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)
CLOSE_FLUSH_S = 5.0
# What a broker (or librdkafka, before sending) says about the record itself: retrying
# the same bytes gives the same answer. Anything else (leader moves, timeouts, denied
# authorization) may pass later, so it is retried with the offsets left uncommitted.
REFUSES_THE_RECORD = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.INVALID_MSG_SIZE,
        KafkaError.INVALID_MSG,
    }
)
Rejected = list[tuple[int, str]]  # (index in the batch, why the sink refused it)


def _log(message: str) -> None:
    print(f"consumers[{os.getpid()}]: {message}", file=sys.stderr, flush=True)


def wait_keeping_alive(seconds: float, keepalive: KeepAlive) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        keepalive()
        time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))


def _why(err: KafkaError) -> str:
    return f"{err.str()} ({err.name()})"


class Sent:
    """Records handed to a sink, (index in the batch, message), and what their delivery
    reports say so far: done once every record has its report, clean if none failed."""

    def __init__(self, entries: list[tuple[int, dict]]):
        self.entries = entries
        self.outstanding = len(entries)
        self.failed: list[tuple[int, dict, KafkaError]] = []
        self._by_value: dict[bytes, list[tuple[int, dict]]] | None = None

    def report(self, i: int, message: dict, err: KafkaError | None) -> None:
        self.outstanding -= 1
        if err is not None:
            self.failed.append((i, message, err))

    def entry_of(self, value: bytes) -> tuple[int, dict]:
        """The entry a failed report is for. Reports come per partition, not in queue
        order, and carry the value only; the index is found when a report fails, never
        for the ones that succeed. Of equal values any entry will do: the same bytes
        get the same answer."""
        if self._by_value is None:
            self._by_value = {}
            for entry in self.entries:
                self._by_value.setdefault(entry[1]["value"], []).append(entry)
        return self._by_value[value].pop(0)

    @property
    def done(self) -> bool:
        return self.outstanding == 0

    @property
    def clean(self) -> bool:
        return self.done and not self.failed


class Sink:
    name: str

    def send(self, values: list[bytes], keepalive: KeepAlive) -> Sent:
        raise NotImplementedError

    def settle(self, sent: Sent, keepalive: KeepAlive) -> Rejected:
        raise NotImplementedError

    def deliver(self, values: list[bytes], keepalive: KeepAlive) -> Rejected:
        return self.settle(self.send(values, keepalive), keepalive)

    def close(self) -> None:
        raise NotImplementedError


class KafkaSink(Sink):
    """Produces to a topic; with headers per record for the DLQ (no batch API then)."""

    def __init__(self, producer: Producer, topic: str):
        self.producer, self.topic, self.name = producer, topic, f"kafka:{topic}"

    def send(self, values: list[bytes], keepalive: KeepAlive) -> Sent:
        return self.send_messages([{"value": v} for v in values], keepalive)

    def send_messages(self, messages: list[dict], keepalive: KeepAlive) -> Sent:
        sent = Sent(list(enumerate(messages)))
        self._enqueue(sent, keepalive)
        return sent

    def deliver_messages(self, messages: list[dict], keepalive: KeepAlive) -> Rejected:
        return self.settle(self.send_messages(messages, keepalive), keepalive)

    def settle(self, sent: Sent, keepalive: KeepAlive) -> Rejected:
        self._wait(sent, keepalive)
        pending, failed = sent.entries, sent.failed
        rejected: Rejected = []
        attempt = 0
        while failed:
            refused = [f for f in failed if f[2].code() in REFUSES_THE_RECORD]
            if len(pending) > 1 and refused:
                # A topic's max.message.bytes bounds a whole batch: a record refused in
                # company may pass alone. Only what a topic refuses alone is refused.
                failed = [f for f in failed if f not in refused]
                for i, message, _ in refused:
                    failed += self._send([(i, message)], keepalive)
            retry = []
            for i, message, err in failed:
                if err.code() in REFUSES_THE_RECORD:
                    rejected.append((i, _why(err)))
                else:
                    retry.append((i, message))
            if not retry:
                break
            delay = RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S) - 1)]
            why = _why(next(err for i, _, err in failed if err.code() not in REFUSES_THE_RECORD))
            _log(
                f"{self.name}: {len(retry)} records not acknowledged ({why}); "
                f"retrying in {delay} s, offsets not committed"
            )
            wait_keeping_alive(delay, keepalive)
            attempt += 1
            pending, failed = retry, self._send(retry, keepalive)
        return sorted(rejected)

    def _wait(self, sent: Sent, keepalive: KeepAlive) -> None:
        """Until every record of `sent` has its report, serving every report that comes
        (other batches' too); keepalive() once a second meanwhile."""
        while not sent.done:
            started = time.monotonic()
            while not sent.done and time.monotonic() - started < 1.0:
                self.producer.poll(0.05)
            if not sent.done:
                keepalive()

    def _send(self, pending: list[tuple[int, dict]], keepalive: KeepAlive) -> list:
        """Queue `pending` and wait for it: what failed, as (index, message, error)."""
        sent = Sent(pending)
        self._enqueue(sent, keepalive)
        self._wait(sent, keepalive)
        return sent.failed

    def _enqueue(self, sent: Sent, keepalive: KeepAlive) -> None:
        pending = sent.entries
        if not any(m.get("headers") for _, m in pending):
            batch = [m for _, m in pending]

            def on_delivery(err, msg):  # once per record: the cheap path first
                if err is None:
                    sent.outstanding -= 1
                else:
                    sent.report(*sent.entry_of(msg.value()), err)

            queued = self.producer.produce_batch(self.topic, batch, on_delivery=on_delivery)
            if queued == len(batch):
                return
            # Not queued: refused at once (too large), or the local queue was full. No
            # report will come for these.
            leftover = []
            for entry in pending:
                err = entry[1].pop("_error", None)
                if err is None:
                    continue
                if err.code() in REFUSES_THE_RECORD:
                    sent.report(*entry, err)
                else:
                    leftover.append(entry)
            pending = leftover  # one by one below, with back-pressure
        for i, message in pending:
            # Delivery reports do not carry headers back: each callback keeps its message.
            def on_delivery(err, _msg, i=i, message=message):
                sent.report(i, message, err)

            while True:
                try:
                    self.producer.produce(
                        self.topic,
                        value=message["value"],
                        headers=message.get("headers"),
                        on_delivery=on_delivery,
                    )
                    break
                except BufferError:  # the local queue is full: let librdkafka drain it
                    self.producer.poll(0.1)
                    keepalive()
                except KafkaException as err:  # refused before sending (too large)
                    sent.report(i, message, err.args[0])
                    break

    def close(self) -> None:
        # What the worker settled is acknowledged; what is left belongs to batches given
        # up uncommitted (stopping while the sink is down), so do not wait long.
        self.producer.flush(CLOSE_FLUSH_S)


class FileSink(Sink):
    """Appends JSON lines: one write() per batch, then fsync, under an exclusive lock, so
    the workers sharing the file never interleave, whatever the batch size."""

    def __init__(self, path: str):
        self.name = f"file:{path}"
        self.path = path
        self.fd = -1

    def _open(self) -> int:
        if self.fd < 0:
            # A log directory that does not exist yet (a fresh container) is made, as
            # `mkdir -p` would; one that cannot be made is retried like any write error.
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self.fd

    def _write(self, data: bytes) -> None:
        fd = self._open()
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when the write is on disk
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def send(self, values: list[bytes], keepalive: KeepAlive) -> Sent:
        """Written and synced before it returns: a file has no acknowledgement to await."""
        data = b"\n".join(values) + b"\n"
        attempt = 0
        while True:
            try:
                self._write(data)
                return Sent([])
            except OSError as err:
                # A partial write is retried whole: duplicates, never a gap.
                self.close()
                delay = RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S) - 1)]
                _log(f"{self.name}: {err.strerror}; retrying in {delay} s, offsets not committed")
                wait_keeping_alive(delay, keepalive)
                attempt += 1

    def settle(self, sent: Sent, keepalive: KeepAlive) -> Rejected:
        return []

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class StdoutSink(FileSink):
    def __init__(self):
        super().__init__("/dev/stdout")
        self.name = "stdout"

    def _open(self) -> int:
        return sys.stdout.fileno()

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._open(), view) :]

    def close(self) -> None:
        """stdout belongs to the process."""


def make_sink(spec: str, producer: Producer) -> Sink:
    if spec.startswith("kafka:"):
        return KafkaSink(producer, spec.removeprefix("kafka:"))
    if spec.startswith("file:"):
        return FileSink(spec.removeprefix("file:"))
    return StdoutSink()
