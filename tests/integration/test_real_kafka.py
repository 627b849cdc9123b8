"""Every example spec on real Apache Kafka, and a broker killed under load.

The rendered files of each example spec (local placement) are started by a broker of
the spec's release, which must come up and answer: the final word on whether the
renderer is right. Then, on the three-node cluster (RF 3, min ISR 2), a broker is
SIGKILLed while an idempotent acks=all producer and the planned consumer group run.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from infra.build import build
from infra.provision.components import kafka as kafka_component
from infra.runtime.topics import create_topics
from tests.conftest import EXAMPLE_SPECS, REPO, plaintext
from tests.integration.conftest import TEST_BROKER
from tests.integration.kafka_helpers import (
    Deployment,
    Feeder,
    demo_seqs,
    local_cluster,
    read_topic,
    wait_for,
    wait_parsed,
)


@pytest.mark.parametrize("spec", EXAMPLE_SPECS, ids=lambda p: p.stem)
def test_the_rendered_files_run_on_kafka_of_their_release(spec, tmp_path):
    with local_cluster(spec, tmp_path / "local") as (cluster, built):
        admin = AdminClient({**cluster.admin_config(), "log_level": 0})
        metadata = admin.list_topics(timeout=10)
        planned = {n.node_id for n in built.plan.nodes if "broker" in n.roles}
        assert set(metadata.brokers) == planned
        if built.plan.cluster.mode == "kraft":
            assert metadata.cluster_id == built.plan.cluster.cluster_id
        # A topic created without a count gets the planned default, whoever creates it.
        controllers = [n for n in built.plan.nodes if "controller" in n.roles] or [
            n for n in built.plan.nodes if "broker" in n.roles
        ]
        defaults = {
            int(s["num.partitions"].value)
            for n in controllers
            for s in n.server_properties.values()
            if "num.partitions" in s
        }
        assert len(defaults) == 1, defaults
        admin.create_topics([NewTopic("no-count", -1, -1)])["no-count"].result(timeout=30)
        # The controller has committed the topic; the broker asked may learn of it later.
        created = wait_for(
            lambda: admin.list_topics("no-count", timeout=10).topics["no-count"].partitions,
            30,
            "no-count in the metadata of the broker asked",
        )
        assert len(created) == defaults.pop()
    assert cluster.stop() is True  # stopped already: nothing is left to stop


def _unparsed(bootstrap: str, acked: set[int], deployment: Deployment, login: dict) -> str:
    """What a timeout leaves: how many acknowledged records are neither parsed nor in the
    DLQ, a few of them, and the supervisor's last words."""
    missing = acked - demo_seqs(read_topic(bootstrap, "logs.parsed", login=login))
    dead = read_topic(bootstrap, "logs.raw.dlq", login=login)
    tail = deployment.log.strip().splitlines()[-5:]
    return (
        f"every acknowledged record parsed: {len(missing)} of {len(acked)} are not "
        f"(e.g. {sorted(missing)[:5]}); {len(dead)} in the DLQ; supervisor: {tail}"
    )


def _chaos_spec(name: str) -> Path | dict:
    """secure-kraft as it is; `plaintext`: three-node-kraft opting out of security."""
    if name != "plaintext":
        return REPO / f"specs/{name}.yaml"
    return plaintext(REPO / "specs/three-node-kraft.yaml")


@pytest.mark.parametrize("spec", ["plaintext", "secure-kraft"])
def test_a_broker_killed_under_load_loses_no_acknowledged_record(spec, tmp_path):
    """Over SASL_SSL with each client its own user (the workers as their group's, the
    producer as ingest, the reader as admin), and plaintext (a spec that opts out)."""
    with local_cluster(_chaos_spec(spec), tmp_path / "local") as (cluster, built):
        logins = cluster.logins()
        admin_login, ingest_login = logins.get("admin", {}), logins.get("ingest", {})
        partitions = next(
            int(t.partitions.value) for t in built.plan.topics if t.name == "logs.raw"
        )
        config = next(
            f"{n.config_dir}/consumer-siem-parsers.properties"
            for n in built.plan.nodes
            if n.consumers
        )
        create_topics(cluster.admin_config(), built)  # logs.raw with RF 3 and min ISR 2, as planned
        deployment = Deployment(tmp_path, "--config", config, "--processes", "3")
        feeder = Feeder(ingest_login, cluster.bootstrap)
        acked = feeder.acked
        try:
            wait_for(
                lambda: len(deployment.owned()) == partitions,
                90,
                lambda: (
                    f"the group owning {partitions} partitions (owns {len(deployment.owned())}; "
                    f"supervisor: {deployment.log.strip().splitlines()[-3:]})"
                ),
            )
            feeder.start()
            wait_for(lambda: len(acked) > 5_000, 60, "records flowing")
            victim = cluster.service("kafka-2")
            os.kill(victim.process.pid, signal.SIGKILL)
            victim.process.wait()
            time.sleep(3)  # writes go on with two of three replicas (min ISR 2)
            during = len(acked)
            cluster.restart(victim)
            admin = AdminClient({**cluster.admin_config(), "log_level": 0})
            wait_for(
                lambda: all(
                    len(p.isrs) == 3
                    for p in admin.list_topics("logs.raw", timeout=10)
                    .topics["logs.raw"]
                    .partitions.values()
                ),
                120,
                "kafka-2 back in every ISR",
            )
            time.sleep(2)
            feeder.stop()
            parsed = wait_parsed(
                cluster.bootstrap,
                acked,
                admin_login,
                lambda: _unparsed(cluster.bootstrap, acked, deployment, admin_login),
            )
        finally:
            feeder.stop()
            code = deployment.stop()
    assert feeder.unflushed == 0
    delivered = demo_seqs(parsed)
    assert not acked - delivered, f"lost {len(acked - delivered)} acknowledged records"
    assert len(acked) > during > 5_000  # the producer went on while kafka-2 was down
    assert code == 0, deployment.log


def test_the_brokers_healthcheck_passes_on_kafka_and_fails_on_a_silent_port(bootstrap):
    """The command the program gives a broker container, run here against the test broker,
    and against a port that accepts connections but never answers (which a TCP check
    would call healthy)."""
    plan = build(str(TEST_BROKER)).plan  # plaintext: the ApiVersions probe
    node = next(n for n in plan.nodes if "broker" in n.roles)
    script = kafka_component.health(plan, node)[-1]
    assert "/dev/tcp/127.0.0.1/9092 " in script

    def probe(port: int) -> int:
        at = script.replace("/127.0.0.1/9092 ", f"/127.0.0.1/{port} ")
        return subprocess.run(["bash", "-c", at], timeout=30).returncode

    assert probe(int(bootstrap.split(",")[0].rsplit(":", 1)[1])) == 0
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # the kernel completes the handshake; nothing reads or answers
        assert probe(silent.getsockname()[1]) != 0
