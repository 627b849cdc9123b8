"""The same job as the project's worker, written as a quixstreams application.

Parse each RFC 5424 line with the project's own parser and forward the normalized
JSON, so the difference measured is the framework. Runs in its own virtualenv
(quixstreams pins confluent-kafka < 2.13); the repository root is put on sys.path.

    benchmarks/.venv-quix/bin/python benchmarks/quix_app.py BOOTSTRAP GROUP INPUT OUTPUT
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
from quixstreams import Application

from consumers.parsing import parse


def main(bootstrap: str, group: str, source: str, target: str) -> None:
    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        commit_interval=1.0,  # offsets are how the benchmark sees progress
        consumer_extra_config={"session.timeout.ms": 6000},
        # Its best here: the project's fetch sizes (64 KiB, 100 ms) and 512 KiB batches
        # made it slower (23.0-23.5k records/s against 25.1-29.3k, two runs each).
        producer_extra_config={"linger.ms": 20, "compression.type": "lz4"},
        auto_create_topics=False,
    )
    source_topic = app.topic(source, value_deserializer="bytes")
    target_topic = app.topic(target, value_serializer="bytes")
    frame = app.dataframe(source_topic)
    frame = frame.apply(
        lambda value, key, timestamp, headers: orjson.dumps(parse(value, timestamp)),
        metadata=True,
    )
    frame.to_topic(target_topic)
    app.run()


if __name__ == "__main__":
    main(*sys.argv[1:5])
