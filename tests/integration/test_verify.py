"""`python -m infra verify` against the local runtime: it passes, and each check can fail.

Each negative case breaks one thing and asserts that exactly that check fails, naming
node, expected and actual. Real breakage where the target allows it (a changed file,
a stopped supervisor, a topic created with the wrong count, an unreachable broker); a
missing worker cannot be held missing (the supervisor restarts it within 0.5 s), so
that case expects one worker more than the plan's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from infra.verify.suite import results
from tests.conftest import REPO
from tests.infra.test_live import LOCAL_BROKER
from tests.integration.kafka_helpers import wait_for


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    process = subprocess.Popen(
        [sys.executable, "-m", "infra", "up", "--local", "specs/three-node-kraft.yaml",
         "--out", str(out), "--demo", "2000"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        inventory_path = out / "inventory.json"
        wait_for(inventory_path.exists, 60, "the inventory")
        inventory = json.loads(inventory_path.read_text())
        (member,) = inventory["runtime"]["consumers"]
        status = out / "parsers-1" / "status-siem-parsers.json"
        wait_for(
            lambda: status.exists() and json.loads(status.read_text())["partitions_owned"] == 24,
            90,
            "the group owning all 24 partitions",
        )
        yield {"out": out, "inventory": inventory, "supervisor": member["pid"]}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=90)


def verify(tmp_path, inventory: dict) -> tuple[int, list[dict]]:
    path = tmp_path / f"inventory-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(inventory))
    junit = tmp_path / "junit.xml"
    completed = subprocess.run(
        [sys.executable, "-m", "infra", "verify", "--inventory", str(path), "--junit", str(junit)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return completed.returncode, results(junit)


def failed(rows):
    return [
        (r["node"], r["check"], r["expected"], r["actual"]) for r in rows if r["result"] == "FAILED"
    ]


def test_a_healthy_runtime_passes_and_says_what_was_not_run(runtime, tmp_path):
    code, rows = verify(tmp_path, runtime["inventory"])
    assert code == 0, failed(rows)
    not_run = [r for r in rows if r["result"] == "not run"]
    # One local broker stands for the three Kafka nodes: their checks, and only those.
    assert {r["node"] for r in not_run} == {"kafka-1", "kafka-2", "kafka-3", "cluster"}
    assert {r["actual"] for r in not_run} == {LOCAL_BROKER}
    assert [r["check"] for r in not_run if r["node"] == "cluster"] == [
        "brokers in the cluster metadata"
    ]
    assert sum(r["result"] == "passed" for r in rows) == 16


def test_a_changed_file_fails_its_hash_check(runtime, tmp_path):
    path = runtime["out"] / "parsers-1" / "consumer-siem-parsers.properties"
    original = path.read_text()
    expected = next(
        f["sha256"]
        for n in runtime["inventory"]["nodes"]
        for f in n["files"]
        if n["name"] == "parsers-1"
    )
    try:
        path.write_text(original + "consumer.fetch.min.bytes=1\n")
        code, rows = verify(tmp_path, runtime["inventory"])
    finally:
        path.write_text(original)
    assert code == 1
    ((node, check, want, got),) = failed(rows)
    assert (node, check, want) == (
        "parsers-1",
        "file consumer-siem-parsers.properties sha256",
        expected,
    )
    assert got != expected and len(got) == 64


def test_a_stopped_supervisor_fails_the_running_check(runtime, tmp_path):
    os.kill(runtime["supervisor"], signal.SIGSTOP)
    try:
        code, rows = verify(tmp_path, runtime["inventory"])
    finally:
        os.kill(runtime["supervisor"], signal.SIGCONT)
    assert code == 1
    assert failed(rows) == [("parsers-1", "siem-parsers supervisor running", "True", "False")]


def test_a_missing_worker_fails_the_worker_count(runtime, tmp_path):
    inventory = json.loads(json.dumps(runtime["inventory"]))
    for node in inventory["nodes"]:
        for process in node["processes"]:
            if process.get("group") == "siem-parsers":
                process["workers"] = 9  # the plan says 8 run; one more cannot be found
    code, rows = verify(tmp_path, inventory)
    assert code == 1
    assert failed(rows) == [("parsers-1", "siem-parsers worker processes", "9", "8")]


def test_a_topic_with_the_wrong_partition_count_fails(runtime, tmp_path):
    bootstrap = runtime["inventory"]["runtime"]["bootstrap_servers"]
    name = f"wrong-{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the future resolves
    admin.create_topics([NewTopic(name, 2, 1)])[name].result(timeout=10)
    inventory = json.loads(json.dumps(runtime["inventory"]))
    inventory["topics"].append(
        {"name": name, "partitions": 6, "replication_factor": 1, "config": {}}
    )
    code, rows = verify(tmp_path, inventory)
    assert code == 1
    assert failed(rows) == [("cluster", f"topic {name} partitions", "6", "2")]


def test_an_unreachable_cluster_fails_every_cluster_check(runtime, tmp_path):
    inventory = json.loads(json.dumps(runtime["inventory"]))
    inventory["runtime"]["bootstrap_servers"] = "127.0.0.1:1"
    start = time.monotonic()
    code, rows = verify(tmp_path, inventory)
    assert code == 1
    failures = failed(rows)
    assert ("cluster", "brokers reachable at 127.0.0.1:1", "True", "False") in failures
    assert {r[0] for r in failures} == {"cluster"}  # the node checks still pass
    assert time.monotonic() - start < 240
