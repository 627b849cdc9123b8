"""The consumer deployment against a real Kafka broker (or KAFKA_BOOTSTRAP_SERVERS)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from consumers.produce import demo_lines
from tests.conftest import REPO
from tests.integration.kafka_helpers import (
    TEST_SESSION_TIMEOUT_MS,
    Deployment,
    read_topic,
    wait_for,
)

JOIN_TIMEOUT_S = 60


def produce(bootstrap: str, topic: str, values) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for value in values:
        while True:
            try:
                producer.produce(topic, value=value)
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(30) == 0


def seqs(records) -> list[int]:
    return [int(orjson.loads(v)["structured_data"]["demo@32473"]["seq"]) for v, _ in records]


def file_seqs(path) -> list[int]:
    if not path.exists():
        return []
    return [
        int(orjson.loads(line)["structured_data"]["demo@32473"]["seq"])
        for line in path.read_bytes().splitlines()
    ]


def test_n_processes_share_every_partition_once_and_stop_cleanly(bootstrap, new_topic, tmp_path):
    topic = new_topic(6)
    sink = tmp_path / "out.jsonl"
    deployment = Deployment(
        tmp_path, "--bootstrap-servers", bootstrap, "--group", f"g-{topic}", "--topic", topic,
        "--processes", "3", "--sink", f"file:{sink}",
    )  # fmt: skip
    try:
        wait_for(lambda: len(deployment.owned()) == 6, JOIN_TIMEOUT_S, "6 partitions owned")
        owned = deployment.owned()
        assert sorted(owned) == sorted(f"{topic}:{p}" for p in range(6))  # each exactly once
        workers = deployment.children()
        assert len(workers) == 3
        for pid in workers:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            assert command[1:4] == [b"-m", b"consumers", b"worker"]
        produce(bootstrap, topic, demo_lines(3000))
        wait_for(lambda: len(set(file_seqs(sink))) == 3000, 60, "3000 records in the file sink")
    finally:
        code = deployment.stop()
    assert code == 0, deployment.log
    assert "stopped\n" in deployment.log
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists(), f"worker {pid} outlived its supervisor"


MALFORMED = {
    b"plain text, no format": "not syslog (<PRI>...) and not a JSON object",
    b"<999>1 2024-01-01T00:00:00Z h a - - - too high": "syslog priority 999 is above 191",
    b"<13>1 yesterday h a - - - bad time": "RFC 5424 timestamp 'yesterday' is not RFC 3339",
    b"<13>Feb 30 17:32:18 h app: no such day": (
        "RFC 3164 timestamp is not a date: day is out of range for month"
    ),
    b'{"level": "info"}': "a JSON line needs a message (or msg) field",
    b"[1, 2, 3]": "not syslog (<PRI>...) and not a JSON object",
    b'{"msg": unquoted}': (
        "not valid JSON: unexpected character, expected a JSON value: line 1 column 9 (char 8)"
    ),
    b"\xff\xfe binary": "not UTF-8: invalid start byte at byte 0",
}


def test_each_malformed_line_goes_to_the_dlq_with_its_reason(bootstrap, new_topic, tmp_path):
    topic, dlq = new_topic(2), None
    dlq = new_topic(1, prefix="dlq")
    sink = tmp_path / "out.jsonl"
    good = list(demo_lines(10))
    produce(bootstrap, topic, [*good[:5], *MALFORMED, *good[5:]])
    deployment = Deployment(
        tmp_path, "--bootstrap-servers", bootstrap, "--group", f"g-{topic}", "--topic", topic,
        "--processes", "1", "--sink", f"file:{sink}", "--dlq", dlq,
    )  # fmt: skip
    try:
        wait_for(lambda: len(file_seqs(sink)) >= 10, JOIN_TIMEOUT_S, "the valid lines parsed")
        dead = wait_for(
            lambda: (r := read_topic(bootstrap, dlq, quiet_s=1)) and len(r) >= len(MALFORMED) and r,
            30,
            "every malformed line in the DLQ",
        )
    finally:
        assert deployment.stop() == 0, deployment.log
    assert sorted(file_seqs(sink)) == list(range(10))
    by_value = {value: dict(headers) for value, headers in dead}
    assert set(by_value) == set(MALFORMED)
    for value, reason in MALFORMED.items():
        headers = by_value[value]
        assert headers["error"].decode() == reason
        assert headers["source.topic"].decode() == topic
        assert int(headers["source.partition"]) in (0, 1)
        assert int(headers["source.offset"]) >= 0


# The plan runs KIP-848's consumer protocol on Kafka 4.x and the classic one on 3.9:
# the at-least-once contract holds with both.
PROTOCOLS = pytest.mark.parametrize("protocol", ["classic", "consumer"])


@PROTOCOLS
def test_sigkill_of_a_worker_loses_nothing(protocol, bootstrap, new_topic, tmp_path):
    """50,000 unique records; one worker is SIGKILLed halfway; every record arrives."""
    total, batch = 50_000, 500
    topic, out = new_topic(6), new_topic(6, prefix="out")
    config = tmp_path / "consumer.properties"
    config.write_text(
        f"consumer.max.poll.records={batch}\nproducer.linger.ms=5\n"
        f"consumer.group.protocol={protocol}\n"
    )
    deployment = Deployment(
        tmp_path, "--config", str(config), "--bootstrap-servers", bootstrap,
        "--group", f"g-{topic}", "--topic", topic, "--processes", "3", "--sink", f"kafka:{out}",
    )  # fmt: skip
    produced = threading.Event()

    def feed():  # a steady stream, so the kill lands mid-flow
        for start in range(0, total, 2_500):
            produce(bootstrap, topic, demo_lines(2_500, start))
            time.sleep(0.2)
        produced.set()

    try:
        wait_for(lambda: len(deployment.owned()) == 6, JOIN_TIMEOUT_S, "6 partitions owned")
        feeder = threading.Thread(target=feed)
        feeder.start()
        time.sleep(1.5)
        victim = next(w for w in deployment.status()["workers"] if w["partitions"])
        subprocess.run(["kill", "-KILL", str(victim["pid"])], check=True)
        wait_for(
            lambda: (
                next(w for w in deployment.status()["workers"] if w["index"] == victim["index"])[
                    "restarts"
                ]
                == 1
            ),
            30,
            "the killed worker restarted",
        )
        feeder.join()
        assert produced.is_set()
        records = wait_for(
            lambda: (
                (r := read_topic(bootstrap, out, quiet_s=2)) and len(set(seqs(r))) == total and r
            ),
            120,
            "every record in the sink",
        )
    finally:
        code = deployment.stop()
    got = seqs(records)
    assert set(got) == set(range(total)), f"lost {total - len(set(got))}"
    duplicates = len(got) - total
    assert duplicates <= batch, f"{duplicates} duplicates exceed one uncommitted batch ({batch})"
    assert code == 0, deployment.log
    assert f"worker {victim['index']} was killed by SIGKILL; restarting in 0.5 s" in deployment.log


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> list[int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 0})
    try:
        found = consumer.committed(
            [TopicPartition(topic, p) for p in range(partitions)], timeout=10
        )
        return [tp.offset for tp in found]
    finally:
        consumer.close()


@PROTOCOLS
def test_a_sink_that_is_down_stops_commits_and_skips_nothing(
    protocol, bootstrap, new_topic, tmp_path
):
    topic = new_topic(2)
    group = f"g-{topic}"
    # A file where the sink's directory belongs: it cannot be written or made.
    blocked_dir = tmp_path / "not-mounted-yet"
    blocked_dir.write_text("")
    sink = blocked_dir / "out.jsonl"
    produce(bootstrap, topic, demo_lines(2000))
    config = tmp_path / "consumer.properties"
    config.write_text(f"consumer.group.protocol={protocol}\n")
    deployment = Deployment(
        tmp_path, "--config", str(config), "--bootstrap-servers", bootstrap, "--group", group,
        "--topic", topic, "--processes", "1", "--sink", f"file:{sink}",
    )  # fmt: skip
    try:
        wait_for(
            lambda: "File exists; retrying" in deployment.log,
            JOIN_TIMEOUT_S,
            "the sink to fail",
        )
        time.sleep(1)
        assert all(offset < 0 for offset in committed(bootstrap, group, topic, 2)), (
            "offsets were committed while the sink was down"
        )
        wait_for(
            lambda: (deployment.status() or {}).get("lag") == 2000,
            30,
            lambda: f"the status to owe all 2000 records: {deployment.status()}",
        )
        blocked_dir.unlink()  # the sink comes back
        wait_for(lambda: len(set(file_seqs(sink))) == 2000, 60, "every record after recovery")
        wait_for(
            # A partition may hold nothing (keyless records go to one partition per batch).
            lambda: sum(max(0, o) for o in committed(bootstrap, group, topic, 2)) == 2000,
            30,
            lambda: f"offsets committed: {committed(bootstrap, group, topic, 2)}\n{deployment.log}",
        )
    finally:
        assert deployment.stop() == 0, deployment.log
    assert sorted(set(file_seqs(sink))) == list(range(2000))


def test_partitions_taken_away_during_an_outage_are_read_when_they_return(
    bootstrap, new_topic, tmp_path
):
    """A worker pauses its partitions while its sink is down. Those that move to another
    member meanwhile, and come back after the sink has, must be fetched again."""
    topic = new_topic(4)
    group = f"g-{topic}"
    blocked_dir = tmp_path / "not-mounted-yet"
    blocked_dir.write_text("")
    sink = blocked_dir / "out.jsonl"
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for seq, line in enumerate(demo_lines(2000)):
        producer.produce(topic, value=line, partition=seq % 4)
    assert producer.flush(30) == 0
    deployment = Deployment(
        tmp_path, "--bootstrap-servers", bootstrap, "--group", group, "--topic", topic,
        "--processes", "1", "--sink", f"file:{sink}",
    )  # fmt: skip
    other = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "partition.assignment.strategy": "cooperative-sticky",
            "session.timeout.ms": TEST_SESSION_TIMEOUT_MS,
            "enable.auto.commit": False,
            "log_level": 0,
        }
    )
    try:
        wait_for(lambda: "File exists; retrying" in deployment.log, JOIN_TIMEOUT_S, "the outage")
        other.subscribe([topic])  # takes half the partitions, paused, from the worker

        def other_owns_two() -> bool:
            other.poll(0.2)  # joins, and serves its rebalances
            return len(other.assignment()) == 2

        wait_for(other_owns_two, JOIN_TIMEOUT_S, "another member owning two partitions")
        wait_for(lambda: len(deployment.owned()) == 2, JOIN_TIMEOUT_S, "the worker keeping two")
        blocked_dir.unlink()  # the sink comes back while two partitions are elsewhere
        wait_for(
            lambda: sum(max(0, o) for o in committed(bootstrap, group, topic, 4)) == 1000,
            60,
            "the worker's own two partitions committed",
        )
        other.close()  # its two partitions return to the worker
        wait_for(
            lambda: committed(bootstrap, group, topic, 4) == [500] * 4,
            60,
            lambda: f"every partition committed: {committed(bootstrap, group, topic, 4)}",
        )
    finally:
        assert deployment.stop() == 0, deployment.log
    assert sorted(set(file_seqs(sink))) == list(range(2000))


def run_consumers(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "consumers", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bad_input_is_one_line_and_exit_2(bootstrap, tmp_path):
    unreachable = run_consumers(
        "--bootstrap-servers", "127.0.0.1:1", "--group", "g", "--topic", "t",
        "--connect-timeout", "2",
    )  # fmt: skip
    assert unreachable.returncode == 2 and unreachable.stdout == ""
    assert unreachable.stderr.startswith("consumers: cannot reach 127.0.0.1:1 within 2 s (")
    assert unreachable.stderr.rstrip().endswith("); check --bootstrap-servers")
    assert unreachable.stderr.count("\n") == 1

    missing = run_consumers("--bootstrap-servers", bootstrap, "--group", "g", "--topic", "nope")
    assert (missing.returncode, missing.stderr) == (
        2,
        f"consumers: topic nope does not exist on {bootstrap}\n",
    )
    no_group = run_consumers("--bootstrap-servers", bootstrap, "--topic", "t")
    assert (no_group.returncode, no_group.stderr) == (
        2,
        "consumers: the command line: missing --group\n",
    )
    no_topic = run_consumers("--bootstrap-servers", bootstrap, "--group", "g")
    assert (no_topic.returncode, no_topic.stderr) == (
        2,
        "consumers: the command line: missing --topic\n",
    )
    no_file = run_consumers("--config", str(tmp_path / "absent.properties"))
    assert no_file.returncode == 2
    assert no_file.stderr == (
        f"consumers: {tmp_path / 'absent.properties'}: cannot read the settings file: "
        "No such file or directory\n"
    )


def test_produce_sends_a_file_at_least_once(bootstrap, new_topic, tmp_path):
    topic = new_topic(3)
    lines = tmp_path / "lines.log"
    lines.write_bytes(b"\n".join(demo_lines(500)) + b"\n")
    result = run_consumers(
        "produce", "--bootstrap-servers", bootstrap, "--topic", topic, str(lines)
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.endswith(f"sent 500 records to {topic}\n")
    assert sorted(v for v, _ in read_topic(bootstrap, topic)) == sorted(demo_lines(500))


def huge_line(n: int, size: int) -> bytes:
    """An RFC 5424 line of about `size` bytes that does not compress (random text)."""
    noise = base64.b64encode(os.urandom(size)).decode()[:size]
    return f'<134>1 2026-01-01T00:00:00Z h app - - [demo@32473 seq="{n}"] {noise}'.encode()


def test_records_a_topic_refuses_go_to_the_dlq_and_nothing_loops(bootstrap, tmp_path):
    """The sink takes 4 KiB a batch and the DLQ 2 KiB: a 6 KB line parses into a record
    the sink refuses, and the DLQ then keeps it cut, with headers saying why."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic, sink, dlq = (f"{p}-{uuid.uuid4().hex[:8]}" for p in ("in", "out", "dlq"))
    limits = {sink: "4096", dlq: "2048"}
    wanted = [NewTopic(t, 1, 1, config={"max.message.bytes": limits[t]} if t in limits else {})
              for t in (topic, sink, dlq)]  # fmt: skip
    for future in admin.create_topics(wanted).values():
        future.result(timeout=30)
    small, huge = list(demo_lines(20)), huge_line(999, 6000)
    produce(bootstrap, topic, [*small[:10], huge, *small[10:]])
    deployment = Deployment(
        tmp_path, "--bootstrap-servers", bootstrap, "--group", f"g-{topic}", "--topic", topic,
        "--processes", "1", "--sink", f"kafka:{sink}", "--dlq", dlq,
    )  # fmt: skip
    try:
        dead = wait_for(lambda: read_topic(bootstrap, dlq, quiet_s=1), 60, "the refused record")
        parsed = wait_for(
            lambda: len(r := read_topic(bootstrap, sink, quiet_s=1)) >= 20 and r, 60, "the rest"
        )
        status = wait_for(deployment.status, 30, "the status file")
        assert status["restarts"] == 0  # refused, not crashed into a loop
    finally:
        assert deployment.stop() == 0, deployment.log
    assert sorted(seqs(parsed)) == list(range(20))
    ((value, headers),) = dead
    headers = dict(headers)
    assert (
        headers["error"]
        .decode()
        .startswith(f"kafka:{sink} refused the parsed record: Broker: Message size too large")
    )
    assert headers["truncated"].decode().startswith(f"{len(huge)} bytes, kept 512: ")
    assert value == huge[:512]  # the start of the original line, as it came


def test_sigterm_while_the_sink_is_down_stops_at_once_and_commits_nothing(
    bootstrap, new_topic, tmp_path
):
    topic = new_topic(2)
    group = f"g-{topic}"
    blocked_dir = tmp_path / "not-mounted"
    blocked_dir.write_text("")  # a file where the sink's directory belongs
    produce(bootstrap, topic, demo_lines(500))
    deployment = Deployment(
        tmp_path, "--bootstrap-servers", bootstrap, "--group", group, "--topic", topic,
        "--processes", "1", "--sink", f"file:{blocked_dir / 'out.jsonl'}",
    )  # fmt: skip
    wait_for(lambda: "File exists; retrying" in deployment.log, JOIN_TIMEOUT_S, "the sink down")
    started = time.monotonic()
    code = deployment.stop(timeout=60)
    assert code == 0, deployment.log
    assert time.monotonic() - started < 15, "it waited for a sink that was down"
    assert "the batches in flight are left uncommitted for the next owner" in deployment.log
    assert all(offset < 0 for offset in committed(bootstrap, group, topic, 2))


def test_workers_stop_when_their_supervisor_is_killed(bootstrap, new_topic, tmp_path):
    topic = new_topic(2)
    deployment = Deployment(
        tmp_path, "--bootstrap-servers", bootstrap, "--group", f"g-{topic}", "--topic", topic,
        "--processes", "2", "--sink", f"file:{tmp_path / 'out.jsonl'}",
    )  # fmt: skip
    workers = wait_for(lambda: len(w := deployment.children()) == 2 and w, 30, "two workers")
    deployment.process.kill()  # SIGKILL: no chance to stop them itself
    deployment.process.wait()
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers), 30, "workers gone")
