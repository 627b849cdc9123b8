"""What a worker reports to its supervisor, one JSON line every few seconds over a pipe.

Every figure is a delta since the worker's previous line (the supervisor keeps the totals,
so a restarted worker simply starts again from zero), except `lag` and `partitions`, which
say how things stand: records behind the high watermark per owned partition ("topic:N").

    {"worker": 0, "pid": 4242, "seconds": 2.0, "records": 1000, "dlq": 3, "batches": 1,
     "rebalances": 0, "commit_buckets": [0, 1, 0, ...], "commit_sum": 0.004,
     "lag": {"logs.raw:0": 12}, "partitions": ["logs.raw:0"]}
"""

from __future__ import annotations

from bisect import bisect_left

# Upper bounds (seconds) of the commit latency buckets; the last bucket counts the rest.
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Latencies:
    """A histogram kept as per-bucket counts, so the worker sends a few numbers per line
    however many commits it made."""

    def __init__(self) -> None:
        self.buckets = [0] * (len(COMMIT_BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.buckets[bisect_left(COMMIT_BUCKETS, seconds)] += 1  # le: a bound is inclusive
        self.sum += seconds
