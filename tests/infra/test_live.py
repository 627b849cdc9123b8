"""Checks of a running deployment against its inventory, one question per test.

Node checks ask each JVM (Kafka, ZooKeeper) and each consumer supervisor where it runs:
its container, or this machine for the local runtime. Cluster checks ask the brokers
through the Kafka admin API. The supervisors' status files cross-check the broker's
own account of the groups. Where the target cannot answer (a local process has no
container environment or volume), the check is reported as not run with the reason.
"""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.request
import uuid

import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import ConfigResource
from docker.errors import NotFound

from consumers.properties import parse, to_property
from tests.infra.conftest import LOCAL, Jvm, Member, engine, in_container, members

PROBE_DEADLINE_S = 60
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
NO_CONTAINER = "the local runtime runs {what} as a process on this machine, not in a container"


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


@pytest.fixture
def settle(request):
    """Ask until the answer is `expected` or --settle seconds pass; the last answer."""
    deadline_s = request.config.getoption("--settle")

    def settled(question, expected):
        deadline = time.monotonic() + deadline_s
        while True:
            answer = ask(question)
            if answer == expected or time.monotonic() > deadline:
                return answer
            time.sleep(1)

    return settled


def container_state(host: str, name: str) -> str:
    """ "running", "running (unhealthy)", "exited", ... or "missing"."""
    try:
        state = engine(host).api.inspect_container(name)["State"]
    except NotFound:
        return "missing"
    health = state.get("Health", {}).get("Status")
    unhealthy = state["Running"] and health not in (None, "healthy")
    return state["Status"] + (f" ({health})" if unhealthy else "")


def properties(host, path: str) -> dict[str, str]:
    return {e.key: e.value for e in parse(host.file(path).content_string)}


# -- each JVM


def test_jvm_running(jvm: Jvm, check):
    name = f"{jvm.service} running"
    if jvm.local:
        running = ask(lambda: [jvm.match for _ in jvm.processes()])
        check(jvm.node["name"], name, [jvm.match], running)
        return
    check(jvm.node["name"], name, "running", container_state(jvm.node["host"], jvm.container))


def listening_ports(host) -> set[int]:
    """TCP ports in LISTEN state on the target, from /proc/net (ss and netstat are not in
    every image: the official ZooKeeper image has neither)."""
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in host.file(table).content_string.splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # TCP_LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_listeners_bound_on_the_planned_ports(jvm: Jvm, check):
    planned = sorted(
        p["container"]
        for p in jvm.node["ports"]
        if p["service"] == jvm.service and p["name"] not in LEADER_ONLY_PORTS
    )
    actual = ask(lambda: sorted(set(planned) & listening_ports(jvm.host)))
    check(jvm.node["name"], f"{jvm.service} listeners bound", planned, actual)


def served_series(address: str) -> list[str]:
    """The series names an endpoint serves, from its Prometheus text."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return sorted({line.split("{")[0].split(" ")[0] for line in text.splitlines()
                   if line and not line.startswith("#")})  # fmt: skip


def test_metrics_endpoint_serves_its_planned_series(metrics_target: dict, check, settle):
    """Each JMX exporter agent and consumer supervisor answers at its planned address with
    the series its rules (or the workload) make; the brokers' are there once they run."""
    planned = sorted(metrics_target["series"])

    def served():
        found = served_series(metrics_target["address"])
        return [name for name in planned if name in found]

    name = f"{metrics_target['service']} metrics at {metrics_target['address']}"
    check(metrics_target["node"], name, planned, settle(served, planned))


def test_data_volume_mounted(jvm: Jvm, check, not_run):
    name = f"{jvm.service} data volume"
    path = jvm.node["data_dirs"][jvm.service]
    if jvm.local:
        not_run(jvm.node["name"], name, NO_CONTAINER.format(what="it") + f"; data in {path}")

    def mounted():
        mounts = engine(jvm.node["host"]).api.inspect_container(jvm.container)["Mounts"]
        found = [m for m in mounts if m["Destination"] == path and m["Type"] == "volume"]
        return f"{found[0]['Name']} at {path}" if found else f"no volume at {path}"

    check(jvm.node["name"], name, f"{jvm.container}-data at {path}", ask(mounted))


def test_heap_setting(jvm: Jvm, check, not_run):
    name = f"{jvm.service} heap setting"
    if jvm.local:
        not_run(jvm.node["name"], name, "the local runtime sets the heap on the java command line")
    expected = HEAP_SETTING[jvm.service](jvm.node["heap_mb"][jvm.service])
    variable = expected.split("=", 1)[0] + "="
    container = jvm.container
    env = ask(lambda: engine(jvm.node["host"]).api.inspect_container(container)["Config"]["Env"])
    actual = [e for e in env if e.startswith(variable)] if isinstance(env, list) else env
    check(jvm.node["name"], name, [expected], actual)


def test_container_gets_its_share_of_the_node(limited, check):
    """The memory limit and CPU weight the plan split the node's resources into."""
    node, service = limited
    planned = node["limits"][service]
    expected = {"memory": planned["memory_mb"] * 2**20, "cpu shares": planned["cpu_shares"]}

    def applied():
        config = engine(node["host"]).api.inspect_container(node["containers"][service])
        return {
            "memory": config["HostConfig"]["Memory"],
            "cpu shares": config["HostConfig"]["CpuShares"],
        }

    check(
        node["name"],
        f"{service.replace('consumer:', '')} memory and CPU share",
        expected,
        ask(applied),
    )


def test_jvm_heap_flags(jvm: Jvm, check):
    flags = JVM_HEAP_FLAGS[jvm.service](jvm.node["heap_mb"][jvm.service])

    def jvm_flags():
        found = jvm.processes()
        if not found:
            return f"no process running {jvm.match}"
        return [f for f in found[0].args.split() if f.startswith(("-Xms", "-Xmx"))]

    check(jvm.node["name"], f"{jvm.service} JVM heap flags", flags, ask(jvm_flags))


# -- Kafka and ZooKeeper nodes


def test_live_num_partitions_is_the_planned_one(kafka: Jvm, check):
    node = kafka.node
    path = next(f["path"] for f in node["files"] if f["name"] == "server.properties")
    live = ask(lambda: int(properties(kafka.host, path)["num.partitions"]))
    check(node["name"], "live server.properties num.partitions", node["num_partitions"], live)


def test_storage_belongs_to_this_cluster_and_node(kafka: Jvm, inventory, answering, check):
    """KRaft: formatted with the plan's cluster id. ZooKeeper mode: ZooKeeper assigns the
    id, and the broker writes the one the cluster reports, with its planned broker.id."""
    name = "meta.properties: cluster id, node id"
    node = kafka.node
    kraft = inventory["cluster"]["mode"] == "kraft"
    cluster_id = (
        inventory["cluster"]["cluster_id"] if kraft else answering(name).metadata.cluster_id
    )
    meta = f"{node['data_dirs']['kafka']}/meta.properties"

    def formatted():
        found = properties(kafka.host, meta)
        return [found["cluster.id"], int(found["node.id" if kraft else "broker.id"])]

    check(node["name"], name, [cluster_id, node["node_id"]], ask(formatted))


def test_zookeeper_myid(zookeeper: Jvm, check):
    node = zookeeper.node
    myid = f"{node['data_dirs']['zookeeper']}/myid"
    actual = ask(lambda: int(zookeeper.host.file(myid).content_string.strip()))
    check(node["name"], "zookeeper myid", node["zookeeper_id"], actual)


def zookeeper_mode(node: dict, runtime: dict) -> str:
    """leader, follower or standalone, in the member's own words: `srvr` on its client port
    (locally), `zkServer.sh status` in its container."""
    port = next(p["container"] for p in node["ports"] if p["name"] == "zookeeper-client")
    if runtime["kind"] == "local":
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"srvr")
            said = b"".join(iter(lambda: conn.recv(4096), b"")).decode()
    else:
        jvm = Jvm(node, "zookeeper", runtime)
        config = next(f["path"] for f in node["files"] if f["name"] == "zookeeper.properties")
        out = jvm.host.run(f"zkServer.sh status {config}")
        said = out.stdout + out.stderr
    found = re.search(r"^Mode: (\w+)", said, re.M)
    return found.group(1) if found else "not serving"


def test_zookeeper_ensemble_has_one_leader(ensemble, runtime, check, settle):
    expected = (
        {"leader": 1, "follower": len(ensemble) - 1} if len(ensemble) > 1 else {"standalone": 1}
    )

    def modes():
        found = [ask(lambda n=n: zookeeper_mode(n, runtime)) for n in ensemble]
        return {mode: found.count(mode) for mode in sorted(set(found))}

    check(
        "cluster",
        "zookeeper ensemble: one leader, the rest followers",
        expected,
        settle(modes, expected),
    )


def test_rendered_file_is_in_place(node_file, runtime, check):
    node, expected = node_file
    host = (
        LOCAL if runtime["kind"] == "local" else in_container(node["host"], expected["container"])
    )

    def digest():
        found = host.file(expected["path"])
        return found.sha256sum if found.exists else "missing"

    check(node["name"], f"file {expected['name']} sha256", expected["sha256"], ask(digest))


# -- consumer supervisors


def _workers(member: Member) -> list:
    """The supervisor's live workers: a stopped (T) or exited (Z) worker does no work."""
    return [
        p
        for p in member.host.process.filter(ppid=member.pid)
        if p.stat[0] not in "ZT" and "consumers worker" in p.args
    ]


def test_supervisor_running(member: Member, check):
    def running():
        found = [p for p in member.host.process.filter(pid=member.pid) if p.stat[0] not in "ZT"]
        return bool(found) and "consumers" in found[0].args

    check(member.node, f"{member.group} supervisor running", True, ask(running))


def test_supervisor_runs_the_planned_workers(member: Member, check):
    actual = ask(lambda: len(_workers(member)))
    check(member.node, f"{member.group} worker processes", member.workers, actual)


def test_file_sink_writes_onto_a_volume(file_sink: Member, check, not_run):
    name = f"{file_sink.group} file sink volume"
    if file_sink.runtime["kind"] == "local":
        not_run(
            file_sink.node,
            name,
            NO_CONTAINER.format(what="the group") + f"; it writes in {file_sink.sink_dir}",
        )

    def mounted():
        mounts = engine(file_sink.host_name).api.inspect_container(file_sink.container)["Mounts"]
        found = [
            m for m in mounts if m["Destination"] == file_sink.sink_dir and m["Type"] == "volume"
        ]
        return (
            f"{found[0]['Name']} at {file_sink.sink_dir}"
            if found
            else f"no volume at {file_sink.sink_dir}"
        )

    check(file_sink.node, name, f"{file_sink.container}-data at {file_sink.sink_dir}", ask(mounted))


# -- the cluster


def test_brokers_reachable(cluster, check):
    reachable = cluster.metadata is not None and len(cluster.metadata.brokers) > 0
    check("cluster", f"brokers reachable at {cluster.bootstrap}", True, reachable or cluster.error)


def test_every_planned_broker_is_registered(inventory, answering, check):
    name = "broker ids in the cluster metadata"
    planned = sorted(n["node_id"] for n in inventory["nodes"] if "broker" in n["roles"])
    check("cluster", name, planned, sorted(answering(name).metadata.brokers))


def test_cluster_id_is_the_planned_one(inventory, answering, check, not_run):
    name = "cluster id"
    if inventory["cluster"]["mode"] != "kraft":
        not_run(
            "cluster",
            name,
            "ZooKeeper mode: ZooKeeper assigns the cluster id, so the plan holds none (each "
            "broker's meta.properties is checked against the one the cluster reports)",
        )
    check("cluster", name, inventory["cluster"]["cluster_id"], answering(name).metadata.cluster_id)


def _topic(cluster, name: str):
    found = cluster.metadata.topics.get(name)
    return found if found is not None and found.error is None else None


def test_topic_partitions(topic, answering, check):
    name = f"topic {topic['name']} partitions"
    found = _topic(answering(name), topic["name"])
    check("cluster", name, topic["partitions"], len(found.partitions) if found else "missing")


def test_topic_replication_factor(topic, answering, check):
    name = f"topic {topic['name']} replication factor"
    found = _topic(answering(name), topic["name"])
    actual = sorted({len(p.replicas) for p in found.partitions.values()}) if found else "missing"
    check("cluster", name, [topic["replication_factor"]], actual)


def test_topic_configs(topic, answering, check):
    name = f"topic {topic['name']} configs"
    planned = {k: to_property(v) for k, v in topic["config"].items()}
    cluster = answering(name)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic["name"])
    answer = ask(lambda: cluster.admin.describe_configs([resource])[resource].result(timeout=10))
    actual = (
        answer if isinstance(answer, str) else {k: answer[k].value for k in planned if k in answer}
    )
    check("cluster", name, planned, actual)


def _assignments(cluster, group: str) -> list[list[str]]:
    """Per member of the group, as the broker says, the partitions assigned to it."""
    described = cluster.admin.describe_consumer_groups([group])[group].result(timeout=10)
    return [
        sorted(f"{tp.topic}:{tp.partition}" for tp in m.assignment.topic_partitions)
        for m in described.members
    ]


def test_group_members_own_every_partition_once(group, answering, check, settle):
    name = f"group {group['group']}: members, each partition owned once"
    cluster = answering(name)
    partitions = (
        len(_topic(cluster, group["topic"]).partitions) if _topic(cluster, group["topic"]) else 0
    )
    expected = {
        "members": group["processes"],
        "partitions": sorted(f"{group['topic']}:{p}" for p in range(partitions)),
    }

    def owned():
        assigned = _assignments(cluster, group["group"])
        return {"members": len(assigned), "partitions": sorted(p for a in assigned for p in a)}

    check("cluster", name, expected, settle(owned, expected))


def test_supervisors_status_agrees_with_the_broker(group, inventory, answering, check, settle):
    name = f"group {group['group']}: supervisors' status files agree with the broker"
    cluster = answering(name)
    shares = [m for m in members(inventory) if m.group == group["group"]]

    def reported():
        return sorted(
            p
            for m in shares
            for w in json.loads(m.host.file(m.status_file).content_string)["workers"]
            for p in w["partitions"]
        )

    expected = ask(lambda: sorted(p for a in _assignments(cluster, group["group"]) for p in a))
    check("cluster", name, expected, settle(reported, expected))


class KafkaSink:
    """The sink topic, read from its end as the probe starts."""

    def __init__(self, login: dict[str, str], topic: str):
        self.reader = Consumer(
            {
                **login,
                "group.id": f"probe-{uuid.uuid4().hex}",
                "log_level": 0,
            }
        )
        metadata = self.reader.list_topics(topic, timeout=10).topics[topic]
        if metadata.error is not None:
            raise LookupError(f"sink topic {topic}: {metadata.error}")
        ends = [
            TopicPartition(
                topic, p, self.reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            )
            for p in metadata.partitions
        ]
        self.reader.assign(ends)

    def records(self) -> list[bytes]:
        return [m.value() for m in self.reader.consume(1000, timeout=0.5) if m.error() is None]

    def close(self) -> None:
        self.reader.close()


class MemberOutput:
    """A file or stdout sink: what the group's supervisors wrote, on their own hosts."""

    def __init__(self, sink: str, shares: list[Member]):
        self.sink, self.shares = sink, shares

    def _lines(self, member: Member) -> list[bytes]:
        if self.sink == "stdout":
            return engine(member.host_name).api.logs(member.container, stderr=False).splitlines()
        path = member.host.file(self.sink.removeprefix("file:"))
        return path.content.splitlines() if path.exists else []

    def records(self) -> list[bytes]:
        time.sleep(0.5)
        return [line for m in self.shares for line in self._lines(m)]

    def close(self) -> None:
        pass


def test_probe_reaches_the_sink_parsed(group, inventory, runtime, answering, check, not_run):
    name = f"group {group['group']} probe parsed at {group['sink']}"
    cluster = answering(name)
    if group["sink"] == "stdout" and runtime["kind"] == "local":
        not_run("cluster", name, "the local runtime discards its consumers' stdout")
    expected_fields = ("probe", "verify-probe", "rfc5424")
    if group["sink"].startswith("kafka:"):
        sink = ask(lambda: KafkaSink(cluster.login("admin"), group["sink"].removeprefix("kafka:")))
    else:
        sink = MemberOutput(
            group["sink"], [m for m in members(inventory) if m.group == group["group"]]
        )
    if isinstance(sink, str):
        check("cluster", name, expected_fields, sink)
    probe = f"probe-{uuid.uuid4().hex}"
    shipper = "ingest" if "ingest" in cluster.logins else "admin"  # as a log shipper writes
    producer = Producer({**cluster.login(shipper), "acks": "all", "log_level": 0})
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
