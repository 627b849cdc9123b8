"""The ceiling of this client and broker: consume and produce the bytes, unparsed.

Same delivery contract as the project's workers (acks=all, commit after the batch is
acknowledged) and the same batch size, so the difference to them is parsing alone.

    python benchmarks/raw_forward.py BOOTSTRAP GROUP INPUT OUTPUT
"""

from __future__ import annotations

import signal
import sys

from confluent_kafka import Consumer, Producer


def main(bootstrap: str, group: str, source: str, target: str) -> None:
    running = True

    def stop(*_):
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "fetch.min.bytes": 65536,
            "fetch.wait.max.ms": 100,
        }
    )
    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20, "batch.size": 524288,
         "compression.type": "lz4"}
    )  # fmt: skip
    consumer.subscribe([source])
    while running:
        messages = consumer.consume(1000, timeout=0.5)
        values = [{"value": m.value()} for m in messages if m.error() is None]
        if not values:
            continue
        producer.produce_batch(target, values)
        producer.flush()
        consumer.commit(asynchronous=False)
    consumer.close()


if __name__ == "__main__":
    main(*sys.argv[1:5])
