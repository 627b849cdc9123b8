"""Where normalized records go, and where malformed ones go (the DLQ).

`deliver()` returns only once the sink has acknowledged every record it can take:
Kafka delivery reports (acks=all), or write + fsync for a file. Until then it retries,
calling `keepalive()` between attempts so the worker stays in its consumer group.
A record the sink refuses for what it is (larger than the topic takes, invalid) can
never be delivered by retrying: `deliver()` returns those, with the reason, and the
worker sends each to the DLQ instead. Nothing is dropped, and nothing retries forever
on a record that cannot succeed; the worker commits offsets only after it returns.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Callable
from typing import Protocol

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


class Sink(Protocol):
    name: str

    def deliver(self, values: list[bytes], keepalive: KeepAlive) -> Rejected: ...

    def close(self) -> None: ...


class KafkaSink:
    """Produces to a topic; with headers per record for the DLQ (no batch API then)."""

    def __init__(self, producer: Producer, topic: str):
        self.producer, self.topic, self.name = producer, topic, f"kafka:{topic}"

    def deliver(self, values: list[bytes], keepalive: KeepAlive) -> Rejected:
        return self.deliver_messages([{"value": v} for v in values], keepalive)

    def deliver_messages(self, messages: list[dict], keepalive: KeepAlive) -> Rejected:
        pending = list(enumerate(messages))
        rejected: Rejected = []
        attempt = 0
        while pending:
            failed = self._send(pending, keepalive)
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
            if retry:
                delay = RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S) - 1)]
                why = _why(
                    next(err for i, _, err in failed if err.code() not in REFUSES_THE_RECORD)
                )
                _log(
                    f"{self.name}: {len(retry)} records not acknowledged ({why}); "
                    f"retrying in {delay} s, offsets not committed"
                )
                wait_keeping_alive(delay, keepalive)
                attempt += 1
            pending = retry
        return sorted(rejected)

    def _send(self, pending: list[tuple[int, dict]], keepalive: KeepAlive) -> list:
        """Queue and flush `pending`: what failed, as (index, message, error)."""
        failed: list[tuple[int, dict, KafkaError]] = []
        self._enqueue(pending, failed, keepalive)
        while self.producer.flush(1.0):
            keepalive()
        return failed

    def _enqueue(self, pending: list[tuple[int, dict]], failed: list, keepalive: KeepAlive) -> None:
        if not any(m.get("headers") for _, m in pending):
            batch = [dict(m) for _, m in pending]
            # Reports come per partition, not in queue order: find a record by its value.
            by_value: dict[bytes, list[tuple[int, dict]]] = {}
            for entry in pending:
                by_value.setdefault(entry[1]["value"], []).append(entry)

            def on_delivery(err, msg):
                i, message = by_value[msg.value()].pop(0)
                if err is not None:
                    failed.append((i, message, err))

            queued = self.producer.produce_batch(self.topic, batch, on_delivery=on_delivery)
            if queued == len(batch):
                return
            # Not queued: refused at once (too large), or the local queue was full.
            leftover = []
            for entry, m in zip(pending, batch, strict=True):
                err = m.get("_error")
                if err is None:
                    continue
                by_value[entry[1]["value"]].remove(entry)  # no report will come for it
                if err.code() in REFUSES_THE_RECORD:
                    failed.append((entry[0], entry[1], err))
                else:
                    leftover.append(entry)
            pending = leftover  # one by one below, with back-pressure
        for i, message in pending:
            # Delivery reports do not carry headers back: each callback keeps its message.
            def on_delivery(err, _msg, i=i, message=message):
                if err is not None:
                    failed.append((i, message, err))

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
                    failed.append((i, message, err.args[0]))
                    break

    def close(self) -> None:
        # deliver() returned only once all was acknowledged; what is left belongs to a
        # batch given up uncommitted (stopping while the sink is down), so do not wait.
        self.producer.flush(CLOSE_FLUSH_S)


class FileSink:
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

    def deliver(self, values: list[bytes], keepalive: KeepAlive) -> Rejected:
        data = b"\n".join(values) + b"\n"
        attempt = 0
        while True:
            try:
                self._write(data)
                return []
            except OSError as err:
                # A partial write is retried whole: duplicates, never a gap.
                self.close()
                delay = RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S) - 1)]
                _log(f"{self.name}: {err.strerror}; retrying in {delay} s, offsets not committed")
                wait_keeping_alive(delay, keepalive)
                attempt += 1

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
