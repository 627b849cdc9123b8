"""Real Kafka clusters on this machine, reading topics back and running a consumer
deployment, for the integration tests."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import yaml
from confluent_kafka import Consumer, Producer, TopicPartition

from consumers.produce import demo_lines
from infra.build import Built, build
from infra.model.topology import (
    CONSUMER_METRICS_BELOW,
    LOCAL_PORT_BLOCK,
    MAX_GROUPS,
    PORT_OFFSETS,
    Placement,
)
from infra.render.files import install
from infra.runtime.cluster import LocalCluster, ephemeral_ports, port_taken
from tests.conftest import REPO, TEST_LOCAL_CORES

# Kafka's group.min.session.timeout.ms (and the test broker's KIP-848 session): a dead
# worker's partitions move within 6 s.
TEST_SESSION_TIMEOUT_MS = 6000


def free_port_block(nodes: int) -> int:
    """A port block (infra/model/topology.py) whose every port is free for `nodes` nodes,
    below the ephemeral range: a broker's or client's outgoing connection could take a port
    there between this check and the bind (kafka-3 once failed to start so)."""
    while True:
        base = random.randrange(LOCAL_PORT_BLOCK, ephemeral_ports().start - 10 * (nodes + 1), 10)
        ports = [base + 10 * k + offset for k in range(nodes) for offset in PORT_OFFSETS.values()]
        below = base - CONSUMER_METRICS_BELOW  # the consumer groups' metrics
        ports += [below + 10 * k + g for k in range(nodes) for g in range(MAX_GROUPS)]
        if not any(port_taken(p) for p in ports):
            return base


def local_build(spec: str | Path | dict, out: Path) -> Built:
    """A spec (a path, or a dict written to OUT/spec.yaml) planned for the local placement."""
    if isinstance(spec, dict):
        out.mkdir(parents=True, exist_ok=True)
        (out / "spec.yaml").write_text(yaml.safe_dump(spec))
        spec = out / "spec.yaml"
    nodes = len(yaml.safe_load(Path(spec).read_text())["nodes"])
    placement = Placement.local(str(out.resolve()), free_port_block(nodes))
    return build(str(spec), TEST_LOCAL_CORES, placement)


def planned(tmp_path: Path, spec: dict, name: str, placement: Placement) -> Built:
    """`spec` written to TMP/NAME.yaml and planned for `placement` (a roll's two sides
    share one placement: the same directories and ports)."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return build(str(path), TEST_LOCAL_CORES, placement)


@contextlib.contextmanager
def local_cluster(spec: str | Path | dict, out: Path) -> Iterator[tuple[LocalCluster, Built]]:
    """The spec's cluster running on real Kafka JVMs; stopped, with nothing left, after."""
    built = local_build(spec, out)
    install(built.rendered)
    cluster = LocalCluster(built.plan, log=lambda _line: None)
    cluster.start()
    try:
        yield cluster, built
    finally:
        cluster.stop()


def read_topic(
    bootstrap: str,
    topic: str,
    quiet_s: float = 3.0,
    timeout_s: float = 120.0,
    login: dict[str, str] | None = None,
):
    """Every record of `topic` (value, headers), read until nothing came for `quiet_s`
    (records still being written arrive too); `login`: a secured cluster's client file."""
    consumer = Consumer(
        {
            **(login or {}),
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "log_level": 0,
        }
    )
    metadata = consumer.list_topics(topic, timeout=10)
    consumer.assign([TopicPartition(topic, p, 0) for p in metadata.topics[topic].partitions])
    records, last, start = [], time.monotonic(), time.monotonic()
    while time.monotonic() - last < quiet_s and time.monotonic() - start < timeout_s:
        batch = consumer.consume(10_000, timeout=0.5)
        for message in batch:
            if message.error() is None:
                records.append((message.value(), message.headers()))
        if batch:
            last = time.monotonic()
    consumer.close()
    return records


def demo_seqs(records) -> set[int]:
    """The sequence numbers of demo lines (consumers.produce.demo_lines), parsed."""
    return {int(orjson.loads(v)["structured_data"]["demo@32473"]["seq"]) for v, _ in records}


def wait_parsed(bootstrap: str, acked: set[int], login: dict[str, str], what, timeout_s=180):
    """logs.parsed, read again until it holds every acknowledged demo line."""
    return wait_for(
        lambda: (
            (r := read_topic(bootstrap, "logs.parsed", 3, login=login))
            and acked <= demo_seqs(r)
            and r
        ),
        timeout_s,
        what,
    )


def wait_for(predicate, timeout_s: float, what, interval: float = 0.2):
    """predicate()'s first truthy value; `what` (text, or a callable for the state at the
    deadline) names what timed out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout_s:g} s waiting for {what() if callable(what) else what}"
    )


class Deployment:
    """`python -m consumers ...` as a child process, with its status file."""

    def __init__(self, tmp_path: Path, *args: str):
        self.status_file = tmp_path / f"status-{uuid.uuid4().hex[:6]}.json"
        self.stderr_path = tmp_path / "supervisor.err"
        # A KIP-848 group's session timeout is the brokers' (the test broker's is 6 s).
        config = args[args.index("--config") + 1] if "--config" in args else None
        kip848 = config and "consumer.group.protocol=consumer" in Path(config).read_text()
        session = [] if kip848 else ["--session-timeout-ms", str(TEST_SESSION_TIMEOUT_MS)]
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "consumers",
                *args,
                *session,
                "--status-file",
                str(self.status_file),
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=self.stderr_path.open("w"),
        )

    def status(self) -> dict | None:
        try:
            return json.loads(self.status_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def owned(self) -> list[str]:
        status = self.status() or {"workers": []}
        return [p for w in status["workers"] for p in w["partitions"]]

    def children(self) -> list[int]:
        out = subprocess.run(
            ["ps", "--ppid", str(self.process.pid), "-o", "pid="], capture_output=True, text=True
        ).stdout
        return [int(pid) for pid in out.split()]

    def stop(self, timeout: float = 60) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            for child in self.children():
                os.kill(child, signal.SIGKILL)
            self.process.kill()
            self.process.wait()

    @property
    def log(self) -> str:
        return self.stderr_path.read_text()


class Feeder:
    """An idempotent acks=all producer writing numbered demo lines to `topic` in a
    thread, as a log shipper would: what was acknowledged, and every delivery error."""

    def __init__(self, login: dict[str, str], bootstrap: str, topic: str = "logs.raw"):
        self.settings = {
            **login, "bootstrap.servers": bootstrap, "enable.idempotence": True,
            "acks": "all", "linger.ms": 5, "log_level": 0,
        }  # fmt: skip
        self.topic = topic
        self.acked: set[int] = set()
        self.errors: list[str] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run)
        self.unflushed = 0
        self.failure: BaseException | None = None

    def _delivered(self, err, msg) -> None:
        if err is None:
            self.acked.add(int(msg.key()))
        else:
            self.errors.append(err.str())

    def _run(self) -> None:
        try:
            self._produce()
        except BaseException as exc:  # re-raised by stop(), in the test's own thread
            self.failure = exc

    def _produce(self) -> None:
        producer = Producer(self.settings)
        seq = 0
        while not self.stopping.is_set():
            for line in demo_lines(500, seq):
                key = str(seq).encode()
                while True:
                    try:
                        producer.produce(
                            self.topic, key=key, value=line, on_delivery=self._delivered
                        )
                        break
                    except BufferError:
                        # The local queue is full while a leader moves: wait for room, as
                        # a shipper applying backpressure does, and never drop the line.
                        producer.poll(0.1)
                seq += 1
            producer.poll(0)
            time.sleep(0.05)
        self.unflushed = producer.flush(60)

    def start(self) -> Feeder:
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop producing and wait for every outstanding delivery report."""
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(timeout=90)
        failure, self.failure = self.failure, None  # raised once; a second stop() cleans up
        if failure is not None:
            raise AssertionError(f"the feeder stopped early: {failure!r}") from failure
