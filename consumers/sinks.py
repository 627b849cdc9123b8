"""Where normalized records go, and where malformed ones go (the DLQ).

`deliver()` returns only once the sink has acknowledged every record: Kafka delivery
reports (acks=all), or write + flush + fsync for a file. Until then it retries,
calling `keepalive()` between attempts so the worker stays in its consumer group.
It never drops a record and never returns early: the worker commits offsets only
after it returns.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Protocol

from confluent_kafka import KafkaError, Producer

KeepAlive = Callable[[], None]
RETRY_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)


def _log(message: str) -> None:
    print(f"consumers[{os.getpid()}]: {message}", file=sys.stderr, flush=True)


def _wait(seconds: float, keepalive: KeepAlive) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        keepalive()
        time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))


class Sink(Protocol):
    name: str

    def deliver(self, values: list[bytes], keepalive: KeepAlive) -> None: ...

    def close(self) -> None: ...


class KafkaSink:
    """Produces to a topic; with headers per record for the DLQ (no batch API then)."""

    def __init__(self, producer: Producer, topic: str):
        self.producer, self.topic, self.name = producer, topic, f"kafka:{topic}"

    def deliver(self, values: list[bytes], keepalive: KeepAlive) -> None:
        self.deliver_messages([{"value": v} for v in values], keepalive)

    def deliver_messages(self, messages: list[dict], keepalive: KeepAlive) -> None:
        attempt = 0
        while messages:
            failed: list[dict] = []
            errors: list[KafkaError] = []

            def failure(err, message: dict, failed=failed, errors=errors) -> None:
                errors.append(err)
                failed.append(message)

            self._enqueue(messages, failure, keepalive)
            while self.producer.flush(1.0):
                keepalive()
            if failed:
                delay = RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S) - 1)]
                _log(
                    f"{self.name}: {len(failed)} records not acknowledged ({errors[0].str()}); "
                    f"retrying in {delay} s, offsets not committed"
                )
                _wait(delay, keepalive)
                attempt += 1
            messages = failed

    def _enqueue(self, messages: list[dict], failure, keepalive: KeepAlive) -> None:
        if not any(m.get("headers") for m in messages):

            def on_delivery(err, msg):
                if err is not None:
                    failure(err, {"value": msg.value()})

            queued = self.producer.produce_batch(self.topic, messages, on_delivery=on_delivery)
            rejected = (
                [m for m in messages if m.pop("_error", None)] if queued < len(messages) else []
            )
            messages = rejected  # queue full: fall through to one-by-one with back-pressure
        for m in messages:
            # Delivery reports do not carry headers back: each callback keeps its message.
            def on_delivery(err, _msg, m=m):
                if err is not None:
                    failure(err, m)

            while True:
                try:
                    self.producer.produce(
                        self.topic,
                        value=m["value"],
                        headers=m.get("headers"),
                        on_delivery=on_delivery,
                    )
                    break
                except BufferError:  # the local queue is full: let librdkafka drain it
                    self.producer.poll(0.1)
                    keepalive()

    def close(self) -> None:
        self.producer.flush()


class FileSink:
    """Appends JSON lines; one write() per batch on an O_APPEND descriptor, then fsync."""

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
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)

    def deliver(self, values: list[bytes], keepalive: KeepAlive) -> None:
        data = b"\n".join(values) + b"\n"
        attempt = 0
        while True:
            try:
                self._write(data)
                return
            except OSError as err:
                # A partial write is retried whole: duplicates, never a gap.
                self.close()
                delay = RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S) - 1)]
                _log(f"{self.name}: {err.strerror}; retrying in {delay} s, offsets not committed")
                _wait(delay, keepalive)
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
