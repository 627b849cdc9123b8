"""Checks of a running deployment against its inventory.

Node checks go through testinfra: `docker://<container>` on the node's Docker host for
a provisioned stack (or the Docker test environment), `local://` for the embedded
local runtime (its supervisors are local processes, its files under runtime.out_dir).
Cluster checks go through the Kafka admin API. Where the target cannot answer a check
(a Tansu stand-in runs no JVM and lists no group members; the local runtime runs one
broker for all Kafka nodes), the check is reported as not run with the reason. The
supervisors' own status files say which worker owns which partition.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import orjson
import testinfra
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource
from docker.errors import NotFound

from consumers.properties import parse, to_property
from tests.infra.conftest import engine, in_container

LOCAL = testinfra.get_host("local://")
LOCAL_BROKER = "the local runtime runs one Tansu broker in place of the planned Kafka nodes"
STAND_IN = "kafka-log-cluster.stand-in"  # the label of scripts/images/kafka-standin
PROBE_DEADLINE_S = 60
SETTLE_S = 60  # right after `up`, consumers may still be joining their group
HEAP_SETTING = {
    "kafka": lambda mb: f"KAFKA_HEAP_OPTS=-Xms{mb}m -Xmx{mb}m",
    "zookeeper": lambda mb: f"ZK_SERVER_HEAP={mb}",
}
JVM_HEAP_FLAGS = {
    "kafka": lambda mb: [f"-Xms{mb}m", f"-Xmx{mb}m"],
    "zookeeper": lambda mb: [f"-Xmx{mb}m"],
}
# Bound by the ensemble's leader only; the ensemble check finds one leader.
LEADER_ONLY_PORTS = {"zookeeper-peer"}


def _local(runtime: dict) -> bool:
    return runtime["kind"] == "local"


def ask(question):
    """The target's answer, or what went wrong: a check fails by name, it never crashes."""
    try:
        return question()
    except Exception as err:
        text = str(err).strip()
        # A command testinfra ran that failed: what the target said is in its stderr.
        said = re.search(r"_stderr=b'(.*?)(?:\\n)?'\)", text)
        return (
            f"no answer ({said.group(1) if said else text.splitlines()[0] if text else repr(err)})"
        )


def settle(question, expected, deadline_s: float = SETTLE_S):
    """Ask until the answer is `expected` or the deadline passes; the last answer."""
    deadline = time.monotonic() + deadline_s
    while True:
        answer = ask(question)
        if answer == expected or time.monotonic() > deadline:
            return answer
        time.sleep(1)


def container_state(host: str, name: str) -> str:
    """ "running", "running (unhealthy)", "exited", ... or "missing"."""
    try:
        state = engine(host).api.inspect_container(name)["State"]
    except NotFound:
        return "missing"
    health = state.get("Health", {}).get("Status")
    unhealthy = state["Running"] and health not in (None, "healthy")
    return state["Status"] + (f" ({health})" if unhealthy else "")


def stand_in(host: str, name: str) -> str | None:
    """What stands in for the real service in this container (its image's label), if any."""
    try:
        labels = engine(host).api.inspect_container(name)["Config"]["Labels"] or {}
    except NotFound:
        return None  # a missing container fails its own check
    return labels.get(STAND_IN)


def _workers(target, pid: int) -> list:
    return [
        p
        for p in target.process.filter(ppid=pid)
        if not p.stat.startswith("Z") and "consumers worker" in p.args
    ]


def _supervisor(member: dict, runtime: dict):
    """(testinfra host, supervisor pid) of a consumer group share."""
    if _local(runtime):
        return LOCAL, member["pid"]
    return in_container(member["host"], member["container"]), 1  # the image's entrypoint


# -- per node


def test_container_running(service_node, runtime, check, not_run):
    node, service = service_node
    name = f"{service} container running"
    if _local(runtime):
        not_run(node["name"], name, LOCAL_BROKER)
    check(node["name"], name, "running", container_state(node["host"], node["containers"][service]))


def test_supervisor_running(member, runtime, check):
    target, pid = _supervisor(member, runtime)

    def running():
        # A zombie has exited and a stopped (T) process does no work: neither is running.
        found = [p for p in target.process.filter(pid=pid) if p.stat[0] not in "ZT"]
        return bool(found) and "consumers" in found[0].args

    check(member["node"], f"{member['group']} supervisor running", True, ask(running))


def test_supervisor_runs_the_planned_workers(member, runtime, check):
    target, pid = _supervisor(member, runtime)
    check(
        member["node"],
        f"{member['group']} worker processes",
        member["workers"],
        ask(lambda: len(_workers(target, pid))),
    )


def test_rendered_file_is_in_place(node_file, runtime, check):
    node, expected = node_file

    def digest():
        if _local(runtime):
            found = LOCAL.file(str(Path(runtime["out_dir"]) / node["name"] / expected["name"]))
        else:  # testinfra asks the container what it is as soon as a module is used
            found = in_container(node["host"], expected["container"]).file(expected["path"])
        return found.sha256sum if found.exists else "missing"

    check(node["name"], f"file {expected['name']} sha256", expected["sha256"], ask(digest))


def _in_service(node: dict, service: str, runtime: dict, not_run, name: str):
    if _local(runtime):
        not_run(node["name"], name, LOCAL_BROKER)
    return in_container(node["host"], node["containers"][service])


def test_live_num_partitions_is_the_cores(broker_node, runtime, check, not_run):
    name = "live server.properties num.partitions"
    target = _in_service(broker_node, "kafka", runtime, not_run, name)
    path = next(f["path"] for f in broker_node["files"] if f["name"] == "server.properties")

    def live():
        settings = {e.key: e.value for e in parse(target.file(path).content_string)}
        return int(settings["num.partitions"])

    check(broker_node["name"], name, broker_node["cores"], ask(live))


def listening_ports(target) -> set[int]:
    """TCP ports in LISTEN state inside the container, from /proc/net (ss and netstat
    are not in every image: the official ZooKeeper image has neither)."""
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in target.file(table).content_string.splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # TCP_LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_listeners_bound_on_the_planned_ports(service_node, runtime, check, not_run):
    node, service = service_node
    name = f"{service} listeners bound"
    target = _in_service(node, service, runtime, not_run, name)
    planned = sorted(
        p["container"]
        for p in node["ports"]
        if p["service"] == service and p["name"] not in LEADER_ONLY_PORTS
    )
    actual = ask(lambda: sorted(set(planned) & listening_ports(target)))
    check(node["name"], name, planned, actual)


def test_data_volume_mounted(service_node, runtime, check, not_run):
    node, service = service_node
    name = f"{service} data volume"
    container, path = node["containers"][service], node["data_dirs"][service]
    _in_service(node, service, runtime, not_run, name)

    def mounted():
        mounts = engine(node["host"]).api.inspect_container(container)["Mounts"]
        found = [m for m in mounts if m["Destination"] == path and m["Type"] == "volume"]
        return f"{found[0]['Name']} at {path}" if found else f"no volume at {path}"

    check(node["name"], name, f"{container}-data at {path}", ask(mounted))


def test_heap_setting(service_node, runtime, check, not_run):
    node, service = service_node
    name = f"{service} heap setting"
    container = node["containers"][service]
    _in_service(node, service, runtime, not_run, name)
    expected = HEAP_SETTING[service](node["heap_mb"][service])
    variable = expected.split("=", 1)[0] + "="
    env = ask(lambda: engine(node["host"]).api.inspect_container(container)["Config"]["Env"])
    actual = [e for e in env if e.startswith(variable)] if isinstance(env, list) else env
    check(node["name"], name, [expected], actual)


def test_jvm_heap_flags(service_node, runtime, check, not_run):
    node, service = service_node
    name = f"{service} JVM heap flags"
    target = _in_service(node, service, runtime, not_run, name)
    container = node["containers"][service]
    if replaced := stand_in(node["host"], container):
        not_run(node["name"], name, f"{container} runs the {replaced} stand-in, not a JVM")
    match = next(p["match"] for p in node["processes"] if p["service"] == service)
    flags = JVM_HEAP_FLAGS[service](node["heap_mb"][service])

    def jvm_flags():
        jvms = [p for p in target.process.filter() if match in p.args]
        if not jvms:
            return f"no process running {match}"
        return [f for f in jvms[0].args.split() if f in flags or f.startswith(("-Xms", "-Xmx"))]

    check(node["name"], name, flags, ask(jvm_flags))


def test_kraft_storage_formatted_with_the_cluster_id(
    broker_node, inventory, runtime, check, not_run
):
    name = "storage formatted with the cluster id"
    if inventory["cluster"]["mode"] != "kraft":
        not_run(broker_node["name"], name, "ZooKeeper mode: ZooKeeper assigns the cluster id")
    target = _in_service(broker_node, "kafka", runtime, not_run, name)
    meta = f"{broker_node['data_dirs']['kafka']}/meta.properties"

    def formatted():
        return {e.key: e.value for e in parse(target.file(meta).content_string)}["cluster.id"]

    check(broker_node["name"], name, inventory["cluster"]["cluster_id"], ask(formatted))


def test_zookeeper_myid(zookeeper_node, runtime, check, not_run):
    name = "zookeeper myid"
    target = _in_service(zookeeper_node, "zookeeper", runtime, not_run, name)
    myid = f"{zookeeper_node['data_dirs']['zookeeper']}/myid"
    actual = ask(lambda: int(target.file(myid).content_string.strip()))
    check(zookeeper_node["name"], name, zookeeper_node["zookeeper_id"], actual)


def zookeeper_mode(node: dict) -> str:
    """leader, follower or standalone, in the member's own words (`zkServer.sh status`)."""
    config = next(f["path"] for f in node["files"] if f["name"] == "zookeeper.properties")
    target = in_container(node["host"], node["containers"]["zookeeper"])
    out = target.run(f"zkServer.sh status {config}")
    found = re.search(r"^Mode: (\w+)", out.stdout + out.stderr, re.M)
    return found.group(1) if found else "not serving"


def test_zookeeper_ensemble_has_one_leader(ensemble, runtime, check, not_run):
    members = ensemble
    name = "zookeeper ensemble: one leader, the rest followers"
    if _local(runtime):
        not_run("cluster", name, LOCAL_BROKER)
    expected = {"leader": 1, "follower": len(members) - 1}

    def modes():
        found = [ask(lambda n=n: zookeeper_mode(n)) for n in members]
        return {mode: found.count(mode) for mode in sorted(set(found))}

    check("cluster", name, expected, settle(modes, expected))


# -- the cluster


def metadata_of(bootstrap: str, topic: str | None = None):
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    return ask(lambda: admin.list_topics(topic, timeout=10))


def test_brokers_reachable(bootstrap, check):
    metadata = metadata_of(bootstrap)
    reachable = not isinstance(metadata, str) and len(metadata.brokers) > 0
    check("cluster", f"brokers reachable at {bootstrap}", True, reachable)


def test_every_planned_broker_in_the_metadata(inventory, bootstrap, runtime, check, not_run):
    name = "brokers in the cluster metadata"
    brokers = [n for n in inventory["nodes"] if n["num_partitions"]]
    if _local(runtime):
        not_run("cluster", name, LOCAL_BROKER)
    first = brokers[0]
    if replaced := stand_in(first["host"], first["containers"]["kafka"]):
        not_run("cluster", name, f"the {replaced} stand-in's proxies each report only themselves")
    metadata = metadata_of(bootstrap)
    actual = metadata if isinstance(metadata, str) else len(metadata.brokers)
    check("cluster", name, len(brokers), actual)


def test_cluster_id_is_the_planned_one(inventory, bootstrap, check, not_run):
    name = "cluster id"
    if inventory["cluster"]["mode"] != "kraft":
        not_run("cluster", name, "ZooKeeper mode: ZooKeeper assigns the cluster id")
    metadata = metadata_of(bootstrap)
    actual = metadata if isinstance(metadata, str) else metadata.cluster_id
    check("cluster", name, inventory["cluster"]["cluster_id"], actual)


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


def _status(member: dict, runtime: dict) -> dict:
    if _local(runtime):
        text = Path(member["status_file"]).read_text()
    else:
        text = in_container(member["host"], member["container"]).file(member["status_file"])
        text = text.content_string
    return json.loads(text)


def test_group_owns_every_partition_once(group, members, runtime, check):
    name = f"group {group['group']} owns every partition once"
    # Tansu lists no group members: the supervisors' own reports say who owns what.
    members = [m for m in members if m["group"] == group["group"]]
    expected = sorted(f"{group['topic']}:{p}" for p in range(group["partitions"]))

    def owned():
        return sorted(
            p for m in members for w in _status(m, runtime)["workers"] for p in w["partitions"]
        )

    check("cluster", name, expected, settle(owned, expected))


class KafkaSink:
    """The sink topic, read from its high watermarks at the start (Tansu's can trail the
    log, which only means reading more)."""

    def __init__(self, bootstrap: str, topic: str):
        self.reader = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"probe-{uuid.uuid4().hex}",
                "log_level": 0,
            }
        )
        metadata = self.reader.list_topics(topic, timeout=10).topics[topic]
        if metadata.error is not None:
            raise LookupError(f"sink topic {topic}: {metadata.error}")
        self.reader.assign(
            [
                TopicPartition(topic, p, self.reader.get_watermark_offsets(
                    TopicPartition(topic, p), timeout=10)[1])
                for p in metadata.partitions
            ]
        )  # fmt: skip

    def records(self) -> list[bytes]:
        return [m.value() for m in self.reader.consume(1000, timeout=0.5) if m.error() is None]

    def close(self) -> None:
        self.reader.close()


class MemberOutput:
    """A file or stdout sink: what the group's supervisors wrote, on their own hosts."""

    def __init__(self, sink: str, members: list[dict], runtime: dict):
        self.sink, self.members, self.runtime = sink, members, runtime

    def _lines(self, member: dict) -> list[bytes]:
        if self.sink == "stdout":
            logs = engine(member["host"]).api.logs(member["container"], stderr=False)
            return logs.splitlines()
        target, _ = _supervisor(member, self.runtime)
        path = target.file(self.sink.removeprefix("file:"))
        return path.content.splitlines() if path.exists else []

    def records(self) -> list[bytes]:
        time.sleep(0.5)
        return [line for m in self.members for line in self._lines(m)]

    def close(self) -> None:
        pass


def test_probe_reaches_the_sink_parsed(group, members, bootstrap, runtime, check, not_run):
    name = f"group {group['group']} probe parsed at {group['sink']}"
    if group["sink"] == "stdout" and _local(runtime):
        not_run("cluster", name, "the local runtime discards its consumers' stdout")
    expected_fields = ("probe", "verify-probe", "rfc5424")
    if group["sink"].startswith("kafka:"):
        sink = ask(lambda: KafkaSink(bootstrap, group["sink"].removeprefix("kafka:")))
    else:
        sink = MemberOutput(
            group["sink"], [m for m in members if m["group"] == group["group"]], runtime
        )
    if isinstance(sink, str):
        check("cluster", name, expected_fields, sink)
    probe = f"probe-{uuid.uuid4().hex}"
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    producer.produce(
        group["topic"], value=f"<134>1 - verify-probe kafka-log-cluster - PROBE - {probe}".encode()
    )
    producer.flush(10)
    found = None
    deadline = time.monotonic() + PROBE_DEADLINE_S
    while found is None and time.monotonic() < deadline:
        records = ask(sink.records)
        if isinstance(records, str):
            break
        found = next((orjson.loads(r) for r in records if probe.encode() in r), None)
    sink.close()
    actual = (
        ("probe", found["host"], found["format"])
        if found and found["message"] == probe
        else (found["message"] if found else f"not found within {PROBE_DEADLINE_S} s")
    )
    check("cluster", name, expected_fields, actual)
