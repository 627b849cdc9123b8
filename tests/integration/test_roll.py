"""A broker config change rolled over a running three-node cluster on real Kafka.

three-node-kraft (secured by default: RF 3, min ISR 2) runs with an idempotent
acks=all producer (as the ingest user) and its consumer group throughout. A roll that
would leave a partition below its min ISR is refused before anything stops; the real
one restarts each node in turn, waits for 0 under-replicated partitions after each,
and loses nothing the producer was told was written.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from consumers.properties import parse
from infra.model.topology import Placement
from infra.render.files import install
from infra.runtime.cluster import LocalCluster
from infra.runtime.roll import RollRefused, roll
from infra.runtime.tools import KafkaTools
from infra.runtime.topics import create_topics
from tests.conftest import REPO
from tests.integration.kafka_helpers import (
    Deployment,
    Feeder,
    demo_seqs,
    free_port_block,
    planned,
    wait_for,
    wait_parsed,
)

SPEC = yaml.safe_load((REPO / "specs/three-node-kraft.yaml").read_text())
CHANGE = {"socket.send.buffer.bytes": 1048576}  # read-only: a restart per broker


@pytest.fixture
def running(tmp_path):
    placement = Placement.local(str((tmp_path / "local").resolve()), free_port_block(4))
    old = planned(tmp_path, SPEC, "old", placement)
    changed = copy.deepcopy(SPEC)
    changed["tuning"]["broker"] |= CHANGE
    new = planned(tmp_path, changed, "new", placement)
    install(old.rendered)
    cluster = LocalCluster(old.plan, log=lambda _line: None)
    cluster.start()
    try:
        create_topics(cluster.admin_config(), old)
        yield cluster, old, new
    finally:
        cluster.stop()


def pids(cluster: LocalCluster) -> dict[str, int]:
    return {s.name: s.process.pid for s in cluster.of("kafka") if s.process}


def test_a_roll_that_would_break_min_isr_is_refused_before_anything_stops(running):
    cluster, old, new = running
    admin = AdminClient({**cluster.admin_config(), "log_level": 0})
    strict = NewTopic("strict", 1, 3, config={"min.insync.replicas": "3"})
    admin.create_topics([strict])["strict"].result(timeout=30)
    wait_for(  # the controller has it; the broker the roll asks may learn of it later
        lambda: (
            "strict" in (topics := admin.list_topics(timeout=10).topics)
            and len(topics["strict"].partitions[0].isrs) == 3
        ),
        30,
        "strict in the metadata with 3 in-sync replicas",
    )
    before = pids(cluster)
    with pytest.raises(RollRefused) as refused:
        roll(cluster, old, new, say=lambda _line: None)
    # The first node whose broker-side metadata already holds the topic is named.
    assert re.fullmatch(
        r"stopping kafka-[123]: strict-0 keeps 2 in-sync replica\(s\), below its min ISR 3; "
        r"nothing was stopped",
        str(refused.value),
    ), refused.value
    assert pids(cluster) == before and all(p.poll() is None for p in _processes(cluster))


def _processes(cluster: LocalCluster):
    return [s.process for s in cluster.of("kafka") if s.process]


def test_a_broker_config_change_rolls_node_by_node_and_loses_nothing(running, tmp_path):
    cluster, old, new = running
    logins = cluster.logins()
    config = next(
        f"{n.config_dir}/consumer-siem-parsers.properties" for n in old.plan.nodes if n.consumers
    )
    deployment = Deployment(tmp_path, "--config", config, "--processes", "2")
    feeder = Feeder(logins["ingest"], cluster.bootstrap)
    acked, stop = feeder.acked, feeder.stopping
    behind: list[set[int]] = []  # the brokers missing from some ISR, sampled

    def watch():
        admin = AdminClient({**logins["admin"], "log_level": 0})
        while not stop.is_set():
            with contextlib.suppress(KafkaException):
                topics = admin.list_topics(timeout=5).topics.values()
                partitions = [p for t in topics for p in t.partitions.values()]
                behind.append({r for p in partitions for r in p.replicas if r not in p.isrs})
            time.sleep(0.2)

    before = pids(cluster)
    leader = KafkaTools(cluster.release, cluster.admin_config(), tmp_path).quorum_leader()
    watcher = threading.Thread(target=watch)
    lines: list[str] = []
    try:
        feeder.start()
        wait_for(lambda: len(acked) > 2_000, 60, "records flowing")
        watcher.start()
        steps = roll(cluster, old, new, say=lines.append)
        during = len(acked)
        time.sleep(2)
        feeder.stop()
        watcher.join(timeout=30)
        admin = logins["admin"]
        parsed = wait_parsed(cluster.bootstrap, acked, admin, "every acknowledged record parsed")
    finally:
        feeder.stop()
        code = deployment.stop()
    # Every node, the active controller last (KafkaRoller's order): it moves only once.
    assert sorted(s.node for s in steps) == ["kafka-1", "kafka-2", "kafka-3"]
    assert steps[-1].node == f"kafka-{leader}"
    assert f"  rolled kafka-{leader} (the active controller, last) in " in lines[-1]
    # Each step waited for its node to catch up: never two brokers behind at once.
    assert max(len(missing) for missing in behind) == 1, "a node stopped before one caught up"
    assert len(lines) == 3 and all(
        line.endswith(": 0 under-replicated partitions") for line in lines
    )
    assert set(pids(cluster).values()).isdisjoint(before.values())  # each node restarted
    for service in cluster.of("kafka"):
        live = {e.key: e.value for e in parse(Path(service.config).read_text())}
        assert live["socket.send.buffer.bytes"] == "1048576"
    assert feeder.errors == [], feeder.errors[:3]  # no delivery failed, through every step
    assert feeder.unflushed == 0
    assert not acked - demo_seqs(parsed), "acknowledged records lost"
    assert len(acked) > during > 2_000  # records went on flowing through the roll
    assert code == 0, deployment.log


def jvm_pids(inventory: Path) -> dict[str, int]:
    return {e["node"]: e["pid"] for e in json.loads(inventory.read_text())["runtime"]["kafka"]}


def test_roll_local_asks_the_running_runtime_and_says_each_step(tmp_path):
    out, new = tmp_path / "local", tmp_path / "new.yaml"
    changed = copy.deepcopy(SPEC)
    changed["tuning"]["broker"] |= CHANGE
    new.write_text(yaml.safe_dump(changed))
    runtime = subprocess.Popen(
        [sys.executable, "-m", "infra", "up", "--local", "specs/three-node-kraft.yaml",
         "--out", str(out), "--demo", "0", "--port-base", str(free_port_block(4))],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def infra(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "infra", *args], cwd=REPO, capture_output=True, text=True,
            timeout=600,
        )  # fmt: skip

    try:
        inventory = out / "inventory.json"
        wait_for(inventory.exists, 180, "the inventory")
        before = {
            e["node"]: e["pid"] for e in json.loads(inventory.read_text())["runtime"]["kafka"]
        }
        done = infra("roll", "--local", str(new), "--out", str(out))
        assert done.returncode == 0, done.stdout + done.stderr
        lines = done.stdout.splitlines()
        rolled = [line for line in lines if line.startswith("  rolled ")]
        assert sorted(line.split()[1] for line in rolled) == ["kafka-1", "kafka-2", "kafka-3"]
        assert "(the active controller, last)" in rolled[-1]
        assert lines[-1] == f"roll: rolled 3 Kafka node(s) to {new.resolve()}"
        after = jvm_pids(inventory)
        assert set(after.values()).isdisjoint(before.values())
        # rebalance reads the same inventory: three equal brokers hold every replica already.
        balanced = infra("rebalance", "--local", "--out", str(out))
        assert balanced.returncode == 0, balanced.stdout + balanced.stderr
        assert balanced.stdout.splitlines()[0] == "balanced already: nothing to move"
        assert re.search(r"^  kafka-1 \(node 1, 8 cores\): \d+ replicas$", balanced.stdout, re.M)
        consumer = infra("rebalance", "--local", "--out", str(out), "--drain", "parsers-1")
        assert (consumer.returncode, consumer.stdout) == (1, "")
        assert consumer.stderr == (
            "rebalance: --drain parsers-1: not a broker of this cluster (kafka-1, kafka-2, "
            "kafka-3)\n"
        )
        # A change no roll can make is refused by the runtime, nothing stopped.
        inserted = copy.deepcopy(changed)
        inserted["nodes"].insert(
            0, {"name": "kafka-0", "cores": 8, "memory_gb": 32, "roles": ["broker"]}
        )
        (tmp_path / "inserted.yaml").write_text(yaml.safe_dump(inserted))
        refused = infra("roll", "--local", str(tmp_path / "inserted.yaml"), "--out", str(out))
        assert refused.returncode == 1
        assert refused.stdout.splitlines()[-1] == (
            "roll: kafka-1: node id 1 -> 2: its data belongs to id 1: add `id: 1` to it"
        )
        assert {
            e["node"]: e["pid"] for e in json.loads(inventory.read_text())["runtime"]["kafka"]
        } == after
    finally:
        runtime.send_signal(signal.SIGTERM)
        assert runtime.wait(timeout=90) == 0
    gone = infra("roll", "--local", str(new), "--out", str(out))
    assert (gone.returncode, gone.stdout) == (2, "")
    assert gone.stderr.startswith(f"roll: no local runtime serves {out} (no live pid in ")
