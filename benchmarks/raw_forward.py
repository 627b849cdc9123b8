"""The ceiling of this client and broker: consume and produce the bytes, unparsed.

Same delivery contract as the project's workers (acks=all, commit after the batch is
acknowledged), tuned for its own best result rather than held to the project's
settings: BATCH records per batch, 100,000 by default, the fastest of 1,000, 10,000,
50,000 and 100,000 on the benchmark's topic (each batch's flush and commit amortize).

    python benchmarks/raw_forward.py BOOTSTRAP GROUP INPUT OUTPUT [BATCH]
"""

from __future__ import annotations

import signal
import sys

from confluent_kafka import Consumer, Producer


def main(bootstrap: str, group: str, source: str, target: str, batch: str = "100000") -> None:
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
        messages = consumer.consume(int(batch), timeout=0.5)
        values = [{"value": m.value()} for m in messages if m.error() is None]
        if not values:
            continue
        producer.produce_batch(target, values)
        producer.flush()
        consumer.commit(asynchronous=False)
    consumer.close()


if __name__ == "__main__":
    main(*sys.argv[1:6])
