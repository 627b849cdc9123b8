"""A fourth broker added, rebalanced, drained and removed on a running cluster, real Kafka.

three-node-kraft (secured by default) runs with an idempotent acks=all producer and its
consumer group throughout. `roll` starts kafka-4 (4 cores beside three of 8) and grows
the topics to the new plan's partitions; `rebalance` gives kafka-4 its core-weighted
share of every topic's replicas; `rebalance --drain kafka-4` empties it; `roll` to a
spec without it (partitions kept) stops and unregisters it. Nothing acknowledged is lost.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from infra.model.topology import Placement
from infra.render.files import install
from infra.runtime.cluster import ClusterError, LocalCluster
from infra.runtime.rebalance import assignment, rebalance
from infra.runtime.roll import ADDED, REMOVED, RollRefused, roll
from infra.runtime.tools import CLUSTER, KafkaTools
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
FOURTH = {"name": "kafka-4", "cores": 4, "memory_gb": 16, "roles": ["broker"]}
ONLINE = {"log.cleaner.backoff.ms": 20000}  # cluster-wide dynamic: set without a restart
THROTTLED = ("leader.replication.throttled.rate", "follower.replication.throttled.rate")


def weights(built, drain: str | None = None) -> dict[int, int]:
    brokers = [n for n in built.plan.nodes if "broker" in n.roles]
    return {int(n.node_id or 0): 0 if n.name == drain else n.cores for n in brokers}


def per_topic(admin: AdminClient) -> dict[str, Counter]:
    found: dict[str, Counter] = {}
    for (topic, _p), replicas in assignment(admin).items():
        found.setdefault(topic, Counter()).update(replicas)
    return found


def throttles(admin: AdminClient, node_ids) -> list[str]:
    """The replication throttles set on the brokers (one broker per describe_configs)."""
    found = []
    for node_id in node_ids:
        resource = ConfigResource(ResourceType.BROKER, str(node_id))
        config = admin.describe_configs([resource])[resource].result(timeout=30)
        found += [f"{node_id}: {k}" for k, e in config.items() if k in THROTTLED and e.value]
    return found


@pytest.fixture
def cluster_of_three(tmp_path):
    placement = Placement.local(str((tmp_path / "local").resolve()), free_port_block(5))
    three = planned(tmp_path, SPEC, "three", placement)
    install(three.rendered)
    cluster = LocalCluster(three.plan, log=lambda _line: None)
    cluster.start()
    try:
        create_topics(cluster.admin_config(), three)
        yield cluster, three, placement
    finally:
        cluster.stop()


def test_a_fourth_broker_is_added_rebalanced_drained_and_removed(cluster_of_three, tmp_path):
    cluster, three, placement = cluster_of_three
    spec_four = copy.deepcopy(SPEC)
    spec_four["nodes"].append(FOURTH)
    spec_four["tuning"]["broker"] |= ONLINE
    four = planned(tmp_path, spec_four, "four", placement)
    grown = {t.name: int(t.partitions.value) for t in four.plan.topics}
    spec_back = copy.deepcopy(spec_four)  # kafka-4 gone, the grown partitions kept
    spec_back["nodes"].remove(FOURTH)
    for topic in spec_back["topics"]:
        topic["partitions"] = grown[topic["name"]]
    spec_back["topics"].append({"name": "logs.raw.dlq", "partitions": grown["logs.raw.dlq"]})
    back = planned(tmp_path, spec_back, "back", placement)
    fourth_id = int(next(n.node_id for n in four.plan.nodes if n.name == "kafka-4") or 0)

    logins = cluster.logins()
    admin = AdminClient({**logins["admin"], "log_level": 0})
    tools = KafkaTools(cluster.release, cluster.admin_config(), tmp_path / "tools")
    out = tmp_path / "local"
    config = next(
        f"{n.config_dir}/consumer-siem-parsers.properties" for n in three.plan.nodes if n.consumers
    )
    deployment = Deployment(tmp_path, "--config", config, "--processes", "2")
    feeder = Feeder(logins["ingest"], cluster.bootstrap)
    lines: list[str] = []
    try:
        feeder.start()
        wait_for(lambda: len(feeder.acked) > 2_000, 60, "records flowing")

        jvms = {s.name: s.process.pid for s in cluster.of("kafka") if s.process}
        steps = roll(cluster, three, four, say=lines.append)
        assert [(s.node, s.what) for s in steps] == [("kafka-4", ADDED)]
        # The dynamic change reached the three running brokers without a restart.
        for name in ("kafka-1", "kafka-2", "kafka-3"):
            assert (
                f"  set log.cleaner.backoff.ms on {name} online (incrementalAlterConfigs)" in lines
            )
            assert cluster.service(name).process.pid == jvms[name]
            assert "log.cleaner.backoff.ms=20000" in Path(cluster.service(name).config).read_text()
        resource = ConfigResource(ResourceType.BROKER, "1")
        live = admin.describe_configs([resource])[resource].result(timeout=30)
        assert live["log.cleaner.backoff.ms"].value == "20000"
        before = {t: len(admin.list_topics(topic=t, timeout=10).topics[t].partitions)
                  for t in grown}  # fmt: skip
        assert before == grown, "the topics grew to the new plan's partitions"
        assert f"  grew topic logs.raw: 24 -> {grown['logs.raw']} partitions" in lines
        # The group follows the new partitions as the runtime does: its share restarts.
        assert deployment.stop() == 0, deployment.log
        new_config = next(
            f"{n.config_dir}/consumer-siem-parsers.properties"
            for n in four.plan.nodes
            if n.consumers
        )
        deployment = Deployment(tmp_path, "--config", new_config, "--processes", "2")

        # A throttle that lets nothing through, and a deadline: the moves go on in Kafka.
        with pytest.raises(ClusterError, match="still moving after 3 s; Kafka goes on"):
            rebalance(cluster.admin_config(), tools, weights(four), out, lines.append,
                      lambda _p: None, throttle_bytes=1, timeout_s=3)  # fmt: skip
        assert (out / "rebalance" / "reassignment.json").exists()
        assert throttles(admin, [fourth_id]), "the throttle is set while moves run"
        # Asked again, it resumes the same moves (a new throttle) and follows them to the end.
        moved = rebalance(cluster.admin_config(), tools, weights(four), out, lines.append,
                          lambda _p: None)  # fmt: skip
        assert any(line.startswith("resuming the rebalance in ") for line in lines)
        assert moved > 0 and not (out / "rebalance" / "reassignment.json").exists()
        assert throttles(admin, weights(four)) == [], "the throttles are cleared when done"
        share = weights(four)
        total = sum(share.values())
        for topic, held in per_topic(admin).items():  # every broker, every topic
            slots = sum(held.values())
            for broker, cores in share.items():
                target = slots * cores / total
                assert abs(held[broker] - target) < 1, (topic, broker, held, target)

        with pytest.raises(RollRefused, match=r"kafka-4 holds \d+ replica\(s\): empty it first"):
            roll(cluster, four, back, say=lines.append)
        rebalance(cluster.admin_config(), tools, weights(four, drain="kafka-4"), out,
                  lines.append, lambda _p: None)  # fmt: skip
        assert all(held[fourth_id] == 0 for held in per_topic(admin).values())

        steps = roll(cluster, four, back, say=lines.append)
        assert [(s.node, s.what) for s in steps] == [("kafka-4", REMOVED)]
        # Unregistered: not even fenced in the cluster's metadata.
        endpoints = tools.run(CLUSTER, ["list-endpoints", *tools.connect(cluster_tool=True),
                                        "--include-fenced-brokers"])  # fmt: skip
        rows = [line.split() for line in endpoints.splitlines()]
        listed = {int(row[0]) for row in rows if row and row[0].isdigit()}
        assert listed == set(weights(back)), endpoints
        wait_for(lambda: len(feeder.acked) > 10_000, 60, "records still flowing")
        feeder.stop()
        parsed = wait_parsed(cluster.bootstrap, feeder.acked, logins["admin"], "all parsed")
    finally:
        feeder.stop()
        code = deployment.stop()
    assert feeder.errors == [], feeder.errors[:3]
    assert feeder.unflushed == 0
    assert not feeder.acked - demo_seqs(parsed), "acknowledged records lost"
    assert code == 0, deployment.log


def test_rebalance_refuses_what_it_cannot_read_in_one_line(tmp_path):
    def infra(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "infra", *args], cwd=REPO,
                              capture_output=True, text=True, timeout=60)  # fmt: skip

    none = infra("rebalance", "--local", "--out", str(tmp_path))
    assert none.returncode == 1 and none.stdout == ""
    assert none.stderr == (
        f"rebalance: no local runtime's inventory at {tmp_path}/inventory.json: start python "
        f"-m infra up --local SPEC --out {tmp_path}\n"
    )
