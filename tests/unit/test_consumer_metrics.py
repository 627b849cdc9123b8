"""The deployment's Prometheus series without Kafka: where they are served, what the
workers put in their stats lines, and how the supervisor turns those into series."""

from __future__ import annotations

import os
import socket

import orjson
import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from prometheus_client import CollectorRegistry

from consumers.metrics import serve
from consumers.produce import demo_lines
from consumers.settings import Settings, SettingsError, build, metrics_address
from consumers.sinks import Sent
from consumers.stats import COMMIT_BUCKETS, Latencies
from consumers.supervisor import CRASH_LOOP_DEATHS, Supervisor
from consumers.worker import Worker

G = {"group": "g"}

# -- where


@pytest.mark.parametrize(
    "value, expected",
    [
        ("127.0.0.1:9404", ("127.0.0.1", 9404)),
        ("0.0.0.0:1", ("0.0.0.0", 1)),
        ("localhost:65535", ("localhost", 65535)),
        ("[::1]:9404", ("::1", 9404)),
    ],
)
def test_metrics_address_is_host_and_port(value, expected):
    assert metrics_address(value, "metrics") == expected


@pytest.mark.parametrize(
    "value", ["9404", ":9404", "host:", "host:0", "host:65536", "host:http", "host:-1", "h:٩٤"]
)
def test_a_bad_metrics_address_is_one_line(value):
    with pytest.raises(SettingsError) as refused:
        metrics_address(value, "c.properties: metrics")
    assert str(refused.value) == (
        f"c.properties: metrics must be HOST:PORT with a port from 1 to 65535, got {value!r}"
    )


def built(tmp_path, text: str, flag: str | None) -> Settings:
    config = tmp_path / "consumer.properties"
    config.write_text(f"bootstrap.servers=b:9092\ngroup.id=g\ntopics=t\n{text}")
    return build(
        config=str(config), bootstrap_servers=None, group=None, topics=None, sink=None,
        dlq=None, processes=1, metrics=flag, overrides={},
    )  # fmt: skip


def test_the_settings_file_names_the_endpoint_and_the_flag_overrides_it(tmp_path):
    assert built(tmp_path, "metrics=0.0.0.0:9404\n", None).metrics == "0.0.0.0:9404"
    assert built(tmp_path, "metrics=0.0.0.0:9404\n", "127.0.0.1:9500").metrics == "127.0.0.1:9500"
    assert built(tmp_path, "", None).metrics == ""


def test_a_bad_address_says_whether_the_file_or_the_flag_gave_it(tmp_path):
    with pytest.raises(SettingsError, match=r"^/.*/consumer.properties: metrics must be "):
        built(tmp_path, "metrics=9404\n", None)
    with pytest.raises(SettingsError, match=r"^--metrics must be HOST:PORT .*, got 'x:y'$"):
        built(tmp_path, "metrics=0.0.0.0:9404\n", "x:y")


def test_without_a_metrics_setting_nothing_is_served(monkeypatch):
    served = []
    monkeypatch.setattr("consumers.supervisor.serve", lambda *args: served.append(args))
    Supervisor(Settings("b:9092", "g", ["t"], processes=1)).serve_metrics()
    assert served == []
    Supervisor(Settings("b:9092", "g", ["t"], processes=1, metrics="h:1")).serve_metrics()
    assert [address for _, address in served] == ["h:1"]


def test_a_port_already_taken_is_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(SettingsError) as refused:
            serve(Supervisor(Settings("b:9092", "g", ["t"], processes=1)).metrics, address)
    assert str(refused.value) == (
        f"cannot serve metrics at {address} (Address already in use); "
        "choose a free port or an address of this host"
    )


# -- the supervisor: worker stats into series


def stats_line(**figures) -> dict:
    """A worker's stats line (consumers/stats.py): nothing happened unless told."""
    return {
        "worker": 0, "pid": 1, "seconds": 2.0, "records": 0, "dlq": 0, "batches": 0,
        "rebalances": 0, "commit_buckets": [0] * (len(COMMIT_BUCKETS) + 1), "commit_sum": 0.0,
        "lag": {}, "partitions": [], **figures,
    }  # fmt: skip


class FakeWorker:
    """Popen's stand-in: keeps the write end of the stats pipe the supervisor hands over."""

    def __init__(self, spawned: list[FakeWorker], pass_fds, **_kwargs):
        self.pipe = os.dup(pass_fds[0])
        self.pid = 1000 + len(spawned)
        self.code: int | None = None
        spawned.append(self)

    def poll(self) -> int | None:
        return self.code

    def send(self, **figures) -> None:
        os.write(self.pipe, orjson.dumps(stats_line(**figures)) + b"\n")


@pytest.fixture
def spawned(monkeypatch):
    workers: list[FakeWorker] = []
    monkeypatch.setattr(
        "consumers.supervisor.subprocess.Popen",
        lambda _command, **kwargs: FakeWorker(workers, **kwargs),
    )
    yield workers
    for worker in workers:
        os.close(worker.pipe)


def supervising(processes: int) -> tuple[Supervisor, CollectorRegistry]:
    supervisor = Supervisor(Settings("b:9092", "g", ["t"], processes=processes))
    registry = CollectorRegistry()
    registry.register(supervisor.metrics)
    for slot in supervisor.slots:
        supervisor.start(slot)
    return supervisor, registry


def deliver(supervisor: Supervisor, worker: FakeWorker, index: int, **figures) -> None:
    worker.send(**figures)
    supervisor._read_stats(supervisor.slots[index])


def test_counters_are_totals_that_survive_a_worker_restart(spawned):
    supervisor, registry = supervising(2)
    first, other = spawned
    deliver(supervisor, first, 0, records=100, dlq=3, rebalances=1)
    deliver(supervisor, first, 0, records=20, dlq=1)
    deliver(supervisor, other, 1, records=50, rebalances=1)
    assert registry.get_sample_value("klc_consumer_records_total", G) == 170
    assert registry.get_sample_value("klc_consumer_workers", G) == 2

    first.code = -9  # killed: its replacement starts counting from zero
    supervisor.tend(now=100.0)
    assert registry.get_sample_value("klc_consumer_workers", G) == 1
    assert registry.get_sample_value("klc_consumer_workers_planned", G) == 2
    supervisor.tend(now=101.0)  # after the 0.5 s backoff
    replacement = spawned[2]
    deliver(supervisor, replacement, 0, records=7, dlq=2, rebalances=1)

    assert registry.get_sample_value("klc_consumer_records_total", G) == 177
    assert registry.get_sample_value("klc_consumer_dlq_records_total", G) == 6
    assert registry.get_sample_value("klc_consumer_rebalances_total", G) == 3
    assert registry.get_sample_value("klc_consumer_workers", G) == 2
    restarts = [
        registry.get_sample_value("klc_consumer_worker_restarts_total", {**G, "worker": w})
        for w in ("0", "1")
    ]
    assert restarts == [1, 0]


def lag_series(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    return {
        (s.labels["topic"], s.labels["partition"]): s.value
        for family in registry.collect()
        if family.name == "klc_consumer_lag"
        for s in family.samples
    }


def test_a_partition_no_worker_owns_any_more_has_no_lag_series(spawned):
    supervisor, registry = supervising(2)
    first, other = spawned
    deliver(supervisor, first, 0, lag={"t:0": 7, "t:1": 2}, partitions=["t:0", "t:1"])
    deliver(supervisor, other, 1, lag={"t:2": 4}, partitions=["t:2"])
    assert lag_series(registry) == {("t", "0"): 7, ("t", "1"): 2, ("t", "2"): 4}

    deliver(supervisor, first, 0, lag={"t:0": 5}, partitions=["t:0"])  # t:1 revoked
    assert lag_series(registry) == {("t", "0"): 5, ("t", "2"): 4}

    other.code = 1  # a dead worker owns nothing
    supervisor.tend(now=100.0)
    assert lag_series(registry) == {("t", "0"): 5}


def test_a_worker_is_crash_looping_after_five_deaths_in_a_minute_and_not_after(spawned):
    supervisor, registry = supervising(2)
    looping = {**G, "worker": "0"}
    now = 0.0
    for death in range(CRASH_LOOP_DEATHS):
        assert registry.get_sample_value("klc_consumer_crash_looping", looping) == 0, death
        spawned[-1 if death else 0].code = 1
        supervisor.tend(now)
        now = supervisor.slots[0].restart_at
        supervisor.tend(now)  # restarted
    assert registry.get_sample_value("klc_consumer_crash_looping", looping) == 1
    assert registry.get_sample_value("klc_consumer_crash_looping", {**G, "worker": "1"}) == 0

    supervisor.report(now + 61)  # the last deaths fell out of the window: running again
    assert registry.get_sample_value("klc_consumer_crash_looping", looping) == 0


def test_commit_latencies_add_up_across_stats_lines(spawned):
    supervisor, registry = supervising(1)
    for seconds in ([0.001, 0.003], [0.003, 20.0]):
        latencies = Latencies()
        for s in seconds:
            latencies.observe(s)
        deliver(
            supervisor, spawned[0], 0,
            commit_buckets=latencies.buckets, commit_sum=latencies.sum,
        )  # fmt: skip

    def bucket(le: str) -> float | None:
        return registry.get_sample_value("klc_consumer_commit_seconds_bucket", {**G, "le": le})

    assert bucket("0.001") == 1  # a bound is inclusive
    assert bucket("0.0025") == 1
    assert bucket("0.005") == 3
    assert bucket("10.0") == 3
    assert bucket("+Inf") == 4
    assert registry.get_sample_value("klc_consumer_commit_seconds_count", G) == 4
    assert registry.get_sample_value("klc_consumer_commit_seconds_sum", G) == pytest.approx(20.007)


# -- the worker: what its stats lines carry


class ConsumerStandIn:
    def __init__(self, owned: list[TopicPartition], refuse_commits: bool = False):
        self.owned, self.refuse_commits = owned, refuse_commits

    def assignment(self) -> list[TopicPartition]:
        return self.owned

    def position(self, partitions):
        return [TopicPartition(tp.topic, tp.partition, 10) for tp in partitions]

    def resume(self, _partitions) -> None: ...

    def commit(self, offsets, asynchronous):
        if self.refuse_commits:
            raise KafkaException(KafkaError(KafkaError.REBALANCE_IN_PROGRESS))


def worker(consumer: ConsumerStandIn, stats_fd: int | None = None) -> Worker:
    """A worker that connects to nothing, with its consumer stood in."""
    quiet = {"log_level": "0"}
    settings = Settings("127.0.0.1:1", "g", ["t"], dlq="t.dlq", consumer=quiet, producer=quiet)
    w = Worker(settings, index=0, stats_fd=stats_fd)
    w.consumer = consumer  # type: ignore[assignment]
    return w


@pytest.fixture
def stats_pipe():
    read_fd, write_fd = os.pipe()
    yield read_fd, write_fd
    os.close(read_fd)
    os.close(write_fd)


def test_the_stats_line_has_lag_for_owned_partitions_only_and_resets_its_deltas(stats_pipe):
    read_fd, write_fd = stats_pipe
    w = worker(ConsumerStandIn([TopicPartition("t", 0)]), write_fd)
    w.lag = {"t:0": 5, "t:1": 9}  # librdkafka's stats still name t:1, revoked since
    w.counts["records"] = 40
    w._commit_timed(w.consumer, [TopicPartition("t", 0, 10)])
    w._report(force=True)
    w._report(force=True)
    first, second = (orjson.loads(line) for line in os.read(read_fd, 65536).splitlines())
    assert (first["lag"], first["partitions"], first["records"]) == ({"t:0": 5}, ["t:0"], 40)
    assert sum(first["commit_buckets"]) == 1
    assert (second["records"], sum(second["commit_buckets"]), second["commit_sum"]) == (0, 0, 0)


def test_each_rebalance_callback_counts_once():
    w = worker(ConsumerStandIn([]))
    w._on_assign(w.consumer, [TopicPartition("t", 0), TopicPartition("t", 1)])
    w._on_revoke(w.consumer, [TopicPartition("t", 1)])
    w._on_assign(w.consumer, [])
    assert w.counts["rebalances"] == 3


def test_a_refused_commit_is_timed_too():
    w = worker(ConsumerStandIn([TopicPartition("t", 0)], refuse_commits=True))
    w.settled = {("t", 0): 10}
    w._commit()
    assert w.settled == {("t", 0): 10}  # kept, for the next round
    assert sum(w.commits.buckets) == 1


class Message:
    def __init__(self, value: bytes, offset: int):
        self._value, self._offset = value, offset

    def error(self) -> None:
        return None

    def value(self) -> bytes:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_700_000_000_000)

    def topic(self) -> str:
        return "t"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset


class RefusesTheFirst:
    name = "kafka:out"

    def send(self, values, _keepalive):
        return Sent([])

    def settle(self, _sent, _keepalive):
        return [(0, "Message size too large")]


class DeadLetters:
    """A DLQ that takes everything at once, and keeps it."""

    def __init__(self):
        self.letters: list[dict] = []

    def send_messages(self, letters, _keepalive):
        self.letters += letters
        return Sent([])

    def settle(self, _sent, _keepalive):
        return []

    def deliver_messages(self, letters, keepalive):
        return self.settle(self.send_messages(letters, keepalive), keepalive)


def test_records_the_sink_refuses_count_as_dead_letters_not_as_delivered():
    w = worker(ConsumerStandIn([TopicPartition("t", 0)]))
    w.sink, w.dlq = RefusesTheFirst(), DeadLetters()  # type: ignore[assignment]
    valid = list(demo_lines(3))
    w._send([Message(v, i) for i, v in enumerate([*valid, b"not a log line"])])
    w._settle_oldest()
    assert (w.counts["records"], w.counts["dlq"], len(w.dlq.letters)) == (2, 2, 2)
    assert w.settled == {("t", 0): 4}  # every record of the batch is accounted for
