"""Checks of a running deployment against its inventory.

Node checks go through testinfra: `local://` for the embedded local runtime (its
supervisors are local processes, its files under runtime.out_dir). Cluster checks go
through the Kafka admin API. Where the target cannot answer a check (Tansu reports only
explicit topic configs and lists no group members), the check is reported as not run
with the reason; the supervisors' own status files say which worker owns which
partition.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import orjson
import testinfra
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource

from infra.properties import to_property

LOCAL = testinfra.get_host("local://")
DOCKER_NOT_BUILT = "checks inside Docker containers are not built yet (the Docker test environment)"
PROBE_DEADLINE_S = 60


def _local(runtime: dict) -> bool:
    return runtime["kind"] == "local"


def _workers(pid: int) -> list:
    return [
        p
        for p in LOCAL.process.filter(ppid=pid)
        if not p.stat.startswith("Z") and "consumers worker" in p.args
    ]


# -- per node


def test_supervisor_running(member, runtime, check, not_run):
    name = f"{member['group']} supervisor running"
    if not _local(runtime):
        not_run(member["node"], name, DOCKER_NOT_BUILT)
    # A zombie has exited and a stopped (T) process does no work: neither is running.
    running = [p for p in LOCAL.process.filter(pid=member["pid"]) if p.stat[0] not in "ZT"]
    check(member["node"], name, True, bool(running) and "consumers" in running[0].args)


def test_supervisor_runs_the_planned_workers(member, runtime, check, not_run):
    name = f"{member['group']} worker processes"
    if not _local(runtime):
        not_run(member["node"], name, DOCKER_NOT_BUILT)
    check(member["node"], name, member["workers"], len(_workers(member["pid"])))


def test_rendered_file_is_in_place(node_file, runtime, check, not_run):
    node, expected = node_file
    name = f"file {expected['name']}"
    if not _local(runtime):
        not_run(node, name, DOCKER_NOT_BUILT)
    found = LOCAL.file(str(Path(runtime["out_dir"]) / node / expected["name"]))
    check(
        node, f"{name} sha256", expected["sha256"], found.sha256sum if found.exists else "missing"
    )


def test_kafka_node(kafka_node, runtime, not_run):
    reason = (
        "the local runtime runs one Tansu broker in place of the planned Kafka nodes"
        if _local(runtime)
        else DOCKER_NOT_BUILT
    )
    not_run(kafka_node["name"], "kafka node (num.partitions, listeners, heap, volume)", reason)


# -- the cluster


def ask(question):
    """The target's answer, or what went wrong: a check fails by name, it never crashes."""
    try:
        return question()
    except Exception as err:
        return f"no answer ({err})"


def metadata_of(bootstrap: str, topic: str | None = None):
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    return ask(lambda: admin.list_topics(topic, timeout=10))


def test_brokers_reachable(bootstrap, check):
    metadata = metadata_of(bootstrap)
    reachable = not isinstance(metadata, str) and len(metadata.brokers) > 0
    check("cluster", f"brokers reachable at {bootstrap}", True, reachable)


def test_topic_partitions(topic, bootstrap, check):
    name = f"topic {topic['name']} partitions"
    metadata = metadata_of(bootstrap)
    if isinstance(metadata, str):
        check("cluster", name, topic["partitions"], metadata)
    found = metadata.topics.get(topic["name"])
    actual = len(found.partitions) if found is not None and found.error is None else "missing"
    check("cluster", name, topic["partitions"], actual)


def test_topic_configs(topic, bootstrap, check, not_run):
    name = f"topic {topic['name']} configs"
    planned = {k: to_property(v) for k, v in topic["config"].items()}
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic["name"])
    answer = ask(lambda: admin.describe_configs([resource])[resource].result(timeout=10))
    if isinstance(answer, str):
        check("cluster", name, planned, answer)
    reported = {k: answer[k].value for k in planned if k in answer}
    check("cluster", name, {k: planned[k] for k in reported}, reported)
    missing = sorted(set(planned) - set(reported))
    if missing:
        not_run("cluster", name, f"the broker does not report {', '.join(missing)}")


def test_group_owns_every_partition_once(group, runtime, check, not_run):
    name = f"group {group['group']} owns every partition once"
    if not _local(runtime):
        not_run("cluster", name, DOCKER_NOT_BUILT)
    # Tansu lists no group members: the supervisors' own reports say who owns what.
    members = [m for m in runtime["consumers"] if m["group"] == group["group"]]
    owned = sorted(
        p
        for m in members
        for w in json.loads(Path(m["status_file"]).read_text())["workers"]
        for p in w["partitions"]
    )
    expected = sorted(f"{group['topic']}:{p}" for p in range(group["partitions"]))
    check("cluster", name, expected, owned)


def test_probe_reaches_the_sink_parsed(group, bootstrap, check, not_run):
    name = f"group {group['group']} probe parsed at {group['sink']}"
    if not group["sink"].startswith("kafka:"):
        not_run("cluster", name, f"the verifier cannot read back sink {group['sink']}")
    sink = group["sink"].removeprefix("kafka:")
    expected_fields = ("probe", "verify-probe", "rfc5424")
    metadata = metadata_of(bootstrap, sink)
    if isinstance(metadata, str):
        check("cluster", name, expected_fields, metadata)
    reader = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"probe-{uuid.uuid4().hex}", "log_level": 0}
    )
    # Start at the high watermarks: Tansu's can trail the log, which only means reading more.
    starts = [
        TopicPartition(
            sink, p, reader.get_watermark_offsets(TopicPartition(sink, p), timeout=10)[1]
        )
        for p in metadata.topics[sink].partitions
    ]
    reader.assign(starts)
    probe = f"probe-{uuid.uuid4().hex}"
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    producer.produce(
        group["topic"], value=f"<134>1 - verify-probe kafka-log-cluster - PROBE - {probe}".encode()
    )
    producer.flush(10)
    found = None
    deadline = time.monotonic() + PROBE_DEADLINE_S
    while found is None and time.monotonic() < deadline:
        for message in reader.consume(1000, timeout=0.5):
            if message.error() is None and probe.encode() in message.value():
                found = orjson.loads(message.value())
    reader.close()
    actual = (
        ("probe" if found["message"] == probe else found["message"], found["host"], found["format"])
        if found
        else "not found within 60 s"
    )
    check("cluster", name, expected_fields, actual)
