"""`python -m infra verify` against the local runtime: it passes, and each check can fail.

Each negative case breaks the target itself (never the expectation) and asserts that
exactly the checks it concerns fail, naming node, expected and actual: a changed file,
a stopped supervisor, a frozen worker, a stopped broker, a planned topic grown by a
partition, an unreachable cluster, and an inventory that cannot be read.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
import yaml
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewPartitions,
    ResourcePatternType,
    ResourceType,
)

from consumers.settings import client_file
from infra.verify.suite import results
from tests.conftest import REPO, plaintext
from tests.infra.test_security import PLAINTEXT_PLAN
from tests.integration.kafka_helpers import free_port_block, wait_for


@contextlib.contextmanager
def _running(out, spec: str, partitions: int):
    """`up --local SPEC` until its group owns every partition; stopped after, whatever."""
    process = subprocess.Popen(
        [sys.executable, "-m", "infra", "up", "--local", spec,
         "--out", str(out), "--demo", "2000", "--port-base", str(free_port_block(4))],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        inventory_path = out / "inventory.json"
        wait_for(inventory_path.exists, 180, "the inventory")
        inventory = json.loads(inventory_path.read_text())
        (member,) = inventory["runtime"]["consumers"]
        status = out / "parsers-1" / "status-siem-parsers.json"
        wait_for(
            lambda: (
                status.exists() and json.loads(status.read_text())["partitions_owned"] == partitions
            ),
            90,
            f"the group owning all {partitions} partitions",
        )
        yield {"out": out, "inventory": inventory, "supervisor": member["pid"]}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=90)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    """three-node-kraft opting out of security: the checks of a plaintext plan."""
    out = tmp_path_factory.mktemp("local")
    spec = plaintext(REPO / "specs/three-node-kraft.yaml")
    (out / "plaintext.yaml").write_text(yaml.safe_dump(spec))
    with _running(out, str(out / "plaintext.yaml"), 24) as up:
        yield up


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    with _running(tmp_path_factory.mktemp("secured"), "specs/secure-kraft.yaml", 12) as up:
        yield up


def verify(
    tmp_path, inventory: dict, *flags: str, env: dict[str, str] | None = None, timeout_s: int = 300
) -> tuple[int, list[dict]]:
    """`python -m infra verify` of `inventory` (and `env`, over the tests' own)."""
    path = tmp_path / f"inventory-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(inventory))
    junit = tmp_path / f"junit-{uuid.uuid4().hex[:6]}.xml"
    completed = subprocess.run(
        [sys.executable, "-m", "infra", "verify", "--inventory", str(path), "--junit", str(junit),
         *flags],
        cwd=REPO, capture_output=True, text=True, timeout=timeout_s,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    return completed.returncode, results(junit)


# A broken runtime: a converging check need not wait the minute a runtime just up gets.
BROKEN = ("--settle", "15")
# What a frozen siem-parsers worker may fail: the worker count, and, once the broker
# drops the member (its 10 s session over mid-run), the member count and the
# supervisors' status files, which still list its partitions beside their new owners'.
FROZEN_WORKER_FAILURES = {
    "siem-parsers worker processes",
    "group siem-parsers: members, each partition owned once",
    "group siem-parsers: supervisors' status files agree with the broker",
}


def failed(rows):
    return [
        (r["node"], r["check"], r["expected"], r["actual"]) for r in rows if r["result"] == "FAILED"
    ]


def test_a_healthy_runtime_passes_and_says_what_was_not_run(runtime, tmp_path):
    code, rows = verify(tmp_path, runtime["inventory"])
    assert code == 0, failed(rows)
    not_run = [r for r in rows if r["result"] == "not run"]
    # Only what a local process truly cannot answer (a container's volume and environment),
    # and the locks a plaintext plan does not have.
    assert {(r["node"], r["check"]) for r in not_run} == {
        (node, check) for node in ("kafka-1", "kafka-2", "kafka-3")
        for check in ("kafka data volume", "kafka heap setting")
    } | {("cluster", check) for check in SECURITY_CHECKS}  # fmt: skip
    assert {r["actual"] for r in not_run if r["check"] in SECURITY_CHECKS} == {PLAINTEXT_PLAN}
    passed = {r["check"] for r in rows if r["result"] == "passed"}
    assert {
        "kafka JVM heap flags", "broker ids in the cluster metadata", "cluster id",
        "topic logs.raw configs", "topic logs.raw replication factor",
        "group siem-parsers: members, each partition owned once",
        "group siem-parsers: supervisors' status files agree with the broker",
    } <= passed  # fmt: skip


SECURITY_CHECKS = {
    "every client port refuses a plaintext client",
    "every client port refuses a wrong password",
    "ACLs held by the cluster",
    "ingest user reading a topic it only writes",
    "each group's user describes its topic and group",
    "each client port's certificate chains to the cluster CA and names its host",
    "no password in the inventory",
}


def test_a_secured_runtime_passes_every_security_check(secured, tmp_path):
    code, rows = verify(tmp_path, secured["inventory"])
    assert code == 0, failed(rows)
    assert {r["check"] for r in rows if r["result"] == "passed"} >= SECURITY_CHECKS


def test_an_acl_granted_outside_the_plan_fails_the_acl_checks(secured, tmp_path):
    login = client_file(secured["inventory"]["runtime"]["clients"]["admin"])
    admin = AdminClient({**login, "log_level": 0})
    extra = AclBinding(
        ResourceType.TOPIC, "logs.raw", ResourcePatternType.LITERAL, "User:ingest", "*",
        AclOperation.READ, AclPermissionType.ALLOW,
    )  # fmt: skip
    admin.create_acls([extra])[extra].result(timeout=30)
    try:
        code, rows = verify(tmp_path, secured["inventory"])
    finally:
        every_match = AclBindingFilter(
            ResourceType.TOPIC, "logs.raw", ResourcePatternType.LITERAL, "User:ingest", "*",
            AclOperation.READ, AclPermissionType.ALLOW,
        )  # fmt: skip
        for future in admin.delete_acls([every_match]).values():
            future.result(timeout=30)
    assert code == 1
    assert {check for _node, check, _want, _got in failed(rows)} == {
        "ACLs held by the cluster",
        "ingest user reading a topic it only writes",
    }


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
        code, rows = verify(tmp_path, runtime["inventory"], *BROKEN)
    finally:
        os.kill(runtime["supervisor"], signal.SIGCONT)
    assert code == 1
    (metrics,) = [t for t in runtime["inventory"]["metrics"] if t["node"] == "parsers-1"]
    # Its metrics endpoint, served by a thread of the stopped process, answers no more.
    assert {(r[0], r[1], r[2]) for r in failed(rows)} == {
        ("parsers-1", "siem-parsers supervisor running", "True"),
        (
            "parsers-1",
            f"consumer:siem-parsers metrics at {metrics['address']}",
            str(sorted(metrics["series"])),
        ),
    }


def test_a_frozen_worker_fails_the_worker_count(runtime, tmp_path):
    # SIGSTOP keeps the worker from running without letting the supervisor restart it.
    worker = next(
        int(pid)
        for pid in subprocess.run(
            ["ps", "--ppid", str(runtime["supervisor"]), "-o", "pid="],
            capture_output=True,
            text=True,
        ).stdout.split()
    )
    os.kill(worker, signal.SIGSTOP)
    try:
        code, rows = verify(tmp_path, runtime["inventory"], *BROKEN)
    finally:
        os.kill(worker, signal.SIGCONT)
    assert code == 1
    failures = failed(rows)
    assert ("parsers-1", "siem-parsers worker processes", "8", "7") in failures
    assert {f[1] for f in failures} <= FROZEN_WORKER_FAILURES


def test_a_stopped_broker_fails_its_own_checks_and_the_cluster_still_answers(runtime, tmp_path):
    kafka_3 = next(e for e in runtime["inventory"]["runtime"]["kafka"] if e["node"] == "kafka-3")
    os.kill(kafka_3["pid"], signal.SIGSTOP)  # frozen: it holds its ports but answers nothing
    try:
        code, rows = verify(tmp_path, runtime["inventory"], *BROKEN)
    finally:
        os.kill(kafka_3["pid"], signal.SIGCONT)
    assert code == 1
    by_node = {(r[0], r[1]) for r in failed(rows)}
    assert ("kafka-3", "kafka running") in by_node
    assert {node for node, _ in by_node} <= {"kafka-3", "cluster"}
    assert (
        "cluster",
        "brokers reachable at " + runtime["inventory"]["runtime"]["bootstrap_servers"],
    ) not in by_node


def test_an_unreadable_inventory_is_one_line_and_no_old_results(runtime, tmp_path):
    junit = tmp_path / "junit.xml"
    junit.write_text("<testsuite/>")  # a previous run's results must not be shown
    completed = subprocess.run(
        [sys.executable, "-m", "infra", "verify", "--inventory", "/nonexistent.json",
         "--junit", str(junit)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert completed.returncode == 2
    assert completed.stderr == (
        "verify: --inventory /nonexistent.json: cannot read it: No such file or directory\n"
    )
    assert "verification" not in completed.stdout


def test_an_unreachable_cluster_fails_reachability_once_and_finishes_fast(runtime, tmp_path):
    inventory = json.loads(json.dumps(runtime["inventory"]))
    inventory["runtime"]["bootstrap_servers"] = "127.0.0.1:1"
    start = time.monotonic()
    code, rows = verify(tmp_path, inventory)
    elapsed = time.monotonic() - start
    assert code == 1
    assert [(r[0], r[1], r[2]) for r in failed(rows)] == [
        ("cluster", "brokers reachable at 127.0.0.1:1", "True")
    ]
    unanswered = [
        r
        for r in rows
        if r["result"] == "not run" and r["node"] == "cluster" and r["check"] not in SECURITY_CHECKS
    ]
    assert unanswered and all("did not answer at 127.0.0.1:1" in r["actual"] for r in unanswered)
    assert elapsed < 60, f"verify took {elapsed:.0f} s against an unreachable cluster"


def test_a_planned_topic_grown_by_a_partition_fails_its_count(runtime, tmp_path):
    """Last in this module: partitions never shrink, so the topic stays grown."""
    bootstrap = runtime["inventory"]["runtime"]["bootstrap_servers"]
    admin = AdminClient({"bootstrap.servers": bootstrap})  # alive until the future resolves
    grown = NewPartitions("logs.parsed", 25)  # the sink: no group reads it
    admin.create_partitions([grown])["logs.parsed"].result(timeout=30)
    code, rows = verify(tmp_path, runtime["inventory"])
    assert code == 1
    assert failed(rows) == [("cluster", "topic logs.parsed partitions", "24", "25")]
