"""The deployment's Prometheus series, served by the supervisor (one endpoint per group).

The supervisor tells `GroupMetrics` what its workers report (consumers/stats.py) and what
it sees of them (starts, exits, crash loops). The totals live here, not in the workers,
so counters survive a worker's restart. Scrapes run in the HTTP server's thread, hence
the lock.
"""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from consumers.settings import SettingsError, metrics_address
from consumers.stats import COMMIT_BUCKETS

COUNTED = {  # a worker's stats key -> (series without _total, help)
    "records": (
        "klc_consumer_records",
        "Records the workers delivered to the sink (acknowledged) and committed past.",
    ),
    "dlq": ("klc_consumer_dlq_records", "Malformed records sent to the dead-letter topic."),
    "rebalances": (
        "klc_consumer_rebalances",
        "Partition assignments and revocations seen by the workers, one per callback.",
    ),
}
LE = [*(floatToGoString(b) for b in COMMIT_BUCKETS), "+Inf"]


class GroupMetrics(Collector):
    def __init__(self, group: str, planned: int):
        self.group, self.planned = group, planned
        self.lock = threading.Lock()
        self.totals = dict.fromkeys(COUNTED, 0)
        self.commit_buckets = [0] * len(LE)
        self.commit_sum = 0.0
        self.lag: dict[int, dict[str, int]] = {}  # worker -> "topic:N" -> records behind
        self.alive: set[int] = set()
        self.restarts = dict.fromkeys(range(planned), 0)
        self.looping = dict.fromkeys(range(planned), False)

    # -- what the supervisor tells

    def started(self, worker: int, restarts: int) -> None:
        """`worker` runs again; `restarts`: the supervisor's count of its restarts."""
        with self.lock:
            self.alive.add(worker)
            self.restarts[worker] = restarts

    def exited(self, worker: int) -> None:
        with self.lock:
            self.alive.discard(worker)
            self.lag.pop(worker, None)  # its partitions are no longer its own

    def crash_looping(self, worker: int, looping: bool) -> None:
        with self.lock:
            self.looping[worker] = looping

    def reported(self, worker: int, stats: dict) -> None:
        """A worker's stats line: its deltas added to the totals, its lag as it stands."""
        with self.lock:
            for key in COUNTED:
                self.totals[key] += stats[key]
            for i, count in enumerate(stats["commit_buckets"]):
                self.commit_buckets[i] += count
            self.commit_sum += stats["commit_sum"]
            self.lag[worker] = stats["lag"]

    # -- what a scrape reads

    def collect(self) -> list[Metric]:
        with self.lock:
            return [*self._counters(), *self._workers(), self._lag(), self._commits()]

    def _counters(self) -> list[Metric]:
        found: list[Metric] = []
        for key, (name, text) in COUNTED.items():
            family = CounterMetricFamily(name, text, labels=["group"])
            family.add_metric([self.group], self.totals[key])
            found.append(family)
        return found

    def _workers(self) -> list[Metric]:
        alive = GaugeMetricFamily(
            "klc_consumer_workers", "Live worker processes.", labels=["group"]
        )
        alive.add_metric([self.group], len(self.alive))
        planned = GaugeMetricFamily(
            "klc_consumer_workers_planned", "Worker processes planned.", labels=["group"]
        )
        planned.add_metric([self.group], self.planned)
        restarts = CounterMetricFamily(
            "klc_consumer_worker_restarts", "Restarts of each worker.", labels=["group", "worker"]
        )
        looping = GaugeMetricFamily(
            "klc_consumer_crash_looping",
            "1 while a worker died 5 times within a minute, else 0.",
            labels=["group", "worker"],
        )
        for worker in range(self.planned):
            restarts.add_metric([self.group, str(worker)], self.restarts[worker])
            looping.add_metric([self.group, str(worker)], int(self.looping[worker]))
        return [alive, planned, restarts, looping]

    def _lag(self) -> Metric:
        lag = GaugeMetricFamily(
            "klc_consumer_lag",
            "Records behind the high watermark, per partition a worker owns.",
            labels=["group", "topic", "partition"],
        )
        # Mid-rebalance two workers may both name a partition: one series, the later one's.
        owned = {p: n for worker in sorted(self.lag) for p, n in self.lag[worker].items()}
        for partition, behind in sorted(owned.items()):
            topic, _, number = partition.rpartition(":")
            lag.add_metric([self.group, topic, number], behind)
        return lag

    def _commits(self) -> Metric:
        commits = HistogramMetricFamily(
            "klc_consumer_commit_seconds",
            "Latency of the workers' offset commits.",
            labels=["group"],
        )
        cumulative, total = [], 0
        for le, count in zip(LE, self.commit_buckets, strict=True):
            total += count
            cumulative.append((le, total))
        commits.add_metric([self.group], cumulative, self.commit_sum)
        return commits


def serve(metrics: GroupMetrics, address: str) -> None:
    """Serve `metrics` (and the supervisor's own process_* series) at http://ADDRESS/metrics,
    from a daemon thread; an address that cannot be bound is a SettingsError."""
    host, port = metrics_address(address, "metrics")
    registry = CollectorRegistry()
    registry.register(metrics)
    ProcessCollector(registry=registry)
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as err:
        raise SettingsError(
            f"cannot serve metrics at {address} ({err.strerror or err}); "
            "choose a free port or an address of this host"
        ) from None
