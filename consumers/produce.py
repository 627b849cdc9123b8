"""`python -m consumers produce`: send log lines to a topic, at least once, with progress.

Lines come from a file, from stdin (`-`), or from `--demo N`: RFC 5424 lines whose
structured data carries a unique sequence number, so a test can count every record.
Delivery uses the same acknowledged path as the workers' Kafka sink.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice

from confluent_kafka import Producer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from consumers.settings import WORKER_PRODUCER_KEYS
from consumers.sinks import KafkaSink

CHUNK = 10_000
DEMO_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def demo_lines(count: int, start: int = 0) -> Iterator[bytes]:
    """RFC 5424 lines with seq="<n>" in their structured data, n from `start`."""
    for n in range(start, start + count):
        stamp = (DEMO_EPOCH + timedelta(milliseconds=n)).isoformat(timespec="milliseconds")
        yield (
            f"<134>1 {stamp.replace('+00:00', 'Z')} host-{n % 16} demo-app {1000 + n % 50} "
            f'ID{n % 100} [demo@32473 seq="{n}" tenant="t{n % 4}"] '
            f"user=alice action=login status=ok seq={n}"
        ).encode()


def file_lines(path: str) -> Iterator[bytes]:
    """Lines of a file (or stdin for '-'); the file is opened now, so errors come now."""
    stream = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115

    def lines() -> Iterator[bytes]:
        with stream:
            for line in stream:
                line = line.rstrip(b"\r\n")
                if line:
                    yield line

    return lines()


def produce(
    bootstrap_servers: str,
    topic: str,
    lines: Iterable[bytes],
    total: int | None,
    producer_settings: dict[str, str],
) -> tuple[int, list[tuple[int, str]]]:
    """(lines sent, [(line number, why the topic refused it)]): a line the topic refuses
    for what it is (too large) is reported, never dropped in silence."""
    producer = Producer(
        {**producer_settings, **WORKER_PRODUCER_KEYS, "bootstrap.servers": bootstrap_servers}
    )
    sink = KafkaSink(producer, topic)
    sent, refused = 0, []
    columns = [TextColumn(f"to {topic}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, transient=not sys.stderr.isatty(), console=None) as progress:
        task = progress.add_task("produce", total=total)
        iterator = iter(lines)
        while chunk := list(islice(iterator, CHUNK)):
            rejected = sink.deliver(chunk, keepalive=lambda: None)
            refused += [(sent + i + 1, why) for i, why in rejected]
            sent += len(chunk) - len(rejected)
            progress.update(task, completed=sent + len(refused))
    return sent, refused
