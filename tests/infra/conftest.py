"""The live verification suite: checks generated from an inventory, run against its hosts.

Run it with `python -m infra verify` (which also prints the table and writes JUnit),
or directly: pytest tests/infra --inventory FILE | --stack NAME. Each test records
node, check, expected and actual as JUnit properties, and prints one progress line. A
check the target cannot answer is skipped with `not run: <reason>`, never passed.

The target of a node check is testinfra's: `docker://<container>` on the node's Docker
host for a provisioned stack, `local://` for the local runtime (whose JVMs and
supervisors are processes here, their pids in the inventory's runtime section).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

import docker
import pytest
import testinfra
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from testinfra.backend.docker import DockerBackend
from testinfra.host import Host

from consumers.settings import client_file
from infra.ops.stacks import backend_url

LOCAL = testinfra.get_host("local://")
REACH_TIMEOUT_S = 10
SETTLE_S = 60  # right after `up`, consumers may still be joining their group


def pytest_addoption(parser):
    group = parser.getgroup("kafka-log-cluster verification")
    group.addoption(
        "--inventory", help="inventory JSON (plan --inventory, a stack's, or up --local's)"
    )
    group.addoption("--stack", help="read the inventory from this Pulumi stack's outputs")
    group.addoption(
        "--settle",
        type=float,
        default=SETTLE_S,
        help="seconds a converging check (group membership, metrics) waits for its answer",
    )


def load_inventory(config) -> dict:
    path, stack = config.getoption("--inventory"), config.getoption("--stack")
    if stack:
        done = subprocess.run(
            ["pulumi", "stack", "output", "inventory", "--json", "--stack", stack],
            capture_output=True,
            text=True,
            env={**os.environ, "PULUMI_BACKEND_URL": backend_url()},
        )
        if done.returncode != 0:
            raise pytest.UsageError(f"stack {stack}: {done.stderr.strip().splitlines()[-1]}")
        return json.loads(done.stdout)
    if not path:
        raise pytest.UsageError("tests/infra needs --inventory FILE or --stack NAME")
    return json.loads(Path(path).read_text())


def pytest_configure(config):
    config.inventory = load_inventory(config)


# -- what runs, as the inventory says


def runtime_of(inventory: dict) -> dict:
    return inventory.get("runtime", {"kind": "docker"})


@dataclass(frozen=True)
class Jvm:
    """One Kafka or ZooKeeper JVM of the inventory: a container, or a local process."""

    node: dict
    service: str  # "kafka" or "zookeeper"
    runtime: dict

    @property
    def local(self) -> bool:
        return self.runtime["kind"] == "local"

    @property
    def id(self) -> str:
        return f"{self.node['name']}/{self.service}"

    @property
    def container(self) -> str:
        return self.node["containers"][self.service]

    @property
    def match(self) -> str:
        return next(p["match"] for p in self.node["processes"] if p["service"] == self.service)

    @cached_property
    def entry(self) -> dict:
        """The local runtime's record of this JVM (pid, log, ...)."""
        return next(
            e
            for e in self.runtime.get("kafka", [])
            if (e["node"], e["service"]) == (self.node["name"], self.service)
        )

    @property
    def host(self) -> Host:
        return LOCAL if self.local else in_container(self.node["host"], self.container)

    def processes(self) -> list:
        """The JVM's process (not stopped, not a zombie), found by its pid or main class."""
        if self.local:
            found = self.host.process.filter(pid=self.entry["pid"])
        else:
            found = self.host.process.filter()
        return [p for p in found if self.match in p.args and p.stat[0] not in "ZT"]


@dataclass(frozen=True)
class Member:
    """One consumer node's share of one group: a supervisor and its workers."""

    node: str
    host_name: str  # the node's Docker host
    group: str
    workers: int
    container: str
    status_file: str
    sink_dir: str | None  # where a file sink writes, kept on a volume in Docker
    runtime: dict

    @property
    def id(self) -> str:
        return f"{self.node}/{self.group}"

    @property
    def host(self) -> Host:
        if self.runtime["kind"] == "local":
            return LOCAL
        return in_container(self.host_name, self.container)

    @property
    def pid(self) -> int:
        """The supervisor: the image's entrypoint in a container; locally, its recorded pid."""
        if self.runtime["kind"] != "local":
            return 1
        return next(
            c["pid"]
            for c in self.runtime["consumers"]
            if (c["node"], c["group"]) == (self.node, self.group)
        )


def jvms(inventory: dict) -> list[Jvm]:
    runtime = runtime_of(inventory)
    return [
        Jvm(node, service, runtime)
        for node in inventory["nodes"]
        for service in ("zookeeper", "kafka")
        if service in node["containers"]
    ]


def members(inventory: dict) -> list[Member]:
    runtime = runtime_of(inventory)
    return [
        Member(
            node=node["name"],
            host_name=node["host"],
            group=p["group"],
            workers=p["workers"],
            container=p["container"],
            status_file=p["status_file"],
            sink_dir=node["data_dirs"].get(f"consumer:{p['group']}"),
            runtime=runtime,
        )
        for node in inventory["nodes"]
        for p in node["processes"]
        if p["service"] == "consumer"
    ]


def pytest_generate_tests(metafunc):
    inventory = metafunc.config.inventory
    nodes = inventory["nodes"]
    every = jvms(inventory)
    zookeepers = [n for n in nodes if n["zookeeper_id"]]
    params = {
        "jvm": (every, lambda j: j.id),
        "kafka": ([j for j in every if j.service == "kafka"], lambda j: j.node["name"]),
        "zookeeper": ([j for j in every if j.service == "zookeeper"], lambda j: j.node["name"]),
        "member": (members(inventory), lambda m: m.id),
        "file_sink": ([m for m in members(inventory) if m.sink_dir], lambda m: m.id),
        "node_file": ([(n, f) for n in nodes for f in n["files"]], lambda nf: nf[1]["path"]),
        "ensemble": ([zookeepers] if zookeepers else [], lambda _: "zookeeper"),
        "limited": (
            [(n, s) for n in nodes for s in n.get("limits", {})],
            lambda ns: f"{ns[0]['name']}/{ns[1]}",
        ),
        "topic": (inventory["topics"], lambda t: t["name"]),
        "group": (inventory["groups"], lambda g: g["group"]),
        "metrics_target": (
            inventory.get("metrics", []),
            lambda t: f"{t['node']}/{t['service']}",
        ),
    }
    for name, (values, ids) in params.items():
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, values, ids=[ids(v) for v in values])


def pytest_collection_modifyitems(config, items):
    """A check with nothing to check in this inventory (ZooKeeper's on a KRaft cluster)
    is no row at all, rather than pytest's "empty parameter set" skip."""
    empty = [
        item
        for item in items
        if any(
            "empty parameter set" in str(m.kwargs.get("reason", "")) for m in item.iter_markers()
        )
    ]
    if empty:
        config.hook.pytest_deselected(items=empty)
        items[:] = [item for item in items if item not in empty]


def pytest_runtest_logreport(report):
    """One line per check as it ends, so a long verification shows where it is."""
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        props = dict(report.user_properties)
        what = f"{props.get('node', '')}: {props.get('check', report.nodeid.split('::')[-1])}"
        outcome = "not run" if report.outcome == "skipped" else report.outcome
        print(f"  {what} ... {outcome}", file=sys.__stderr__, flush=True)


# -- a node's Docker host


@cache
def engine(host: str) -> docker.DockerClient:
    """The node's Docker engine: "local" is DOCKER_HOST's (or the default socket)."""
    return docker.from_env() if host == "local" else docker.DockerClient(base_url=host)


class _DockerOnHost(DockerBackend):
    """testinfra's docker:// on a named engine (its own uses the environment's)."""

    def __init__(self, name: str, engine_url: str):
        super().__init__(name)
        self.engine_url = engine_url

    def run(self, command, *args, **kwargs):
        cmd = self.get_command(command, *args)
        out = self.run_local("docker -H %s exec %s /bin/sh -c %s", self.engine_url, self.name, cmd)
        out.command = self.encode(cmd)
        return out


@cache
def in_container(host: str, container: str) -> Host:
    """A testinfra host inside `container` on the node's Docker host."""
    if host == "local":
        return testinfra.get_host(f"docker://{container}")
    return Host(_DockerOnHost(container, host))


# -- the cluster, asked once


@dataclass(frozen=True)
class Cluster:
    bootstrap: str
    admin: AdminClient  # one client for the run: its futures need it alive
    metadata: object | None  # ClusterMetadata, or None when it did not answer
    error: str
    logins: dict[str, dict[str, str]]  # user -> its client settings (none: plaintext)

    def login(self, user: str) -> dict[str, str]:
        """librdkafka settings to connect as `user` (the admin when the cluster has none)."""
        return {**self.logins.get(user, {}), "bootstrap.servers": self.bootstrap}


@pytest.fixture(scope="session")
def inventory(pytestconfig) -> dict:
    return pytestconfig.inventory


@pytest.fixture(scope="session")
def runtime(inventory) -> dict:
    return runtime_of(inventory)


@pytest.fixture(scope="session")
def cluster(inventory, runtime) -> Cluster:
    """The cluster's metadata, asked once: an unreachable cluster costs one timeout, and
    every check that needs it is then reported as not run."""
    bootstrap = runtime.get("bootstrap_servers") or inventory["cluster"]["bootstrap_servers"]
    logins = {user: client_file(path) for user, path in runtime.get("clients", {}).items()}
    admin_login = {**logins.get("admin", {}), "bootstrap.servers": bootstrap}
    admin = AdminClient({**admin_login, "log_level": 0})
    try:
        metadata = admin.list_topics(timeout=REACH_TIMEOUT_S)
        return Cluster(bootstrap, admin, metadata, "", logins)
    except KafkaException as err:
        return Cluster(bootstrap, admin, None, err.args[0].str(), logins)


@pytest.fixture
def check(record_property):
    """check(node, name, expected, actual): record all four, then compare."""

    def compare(node: str, name: str, expected, actual) -> None:
        for key, value in (
            ("node", node),
            ("check", name),
            ("expected", expected),
            ("actual", actual),
        ):
            record_property(key, str(value))
        assert actual == expected, f"{node}: {name}: expected {expected}, got {actual}"

    return compare


@pytest.fixture
def not_run(record_property):
    def skip(node: str, name: str, reason: str) -> None:
        record_property("node", node)
        record_property("check", name)
        pytest.skip(f"not run: {reason}")

    return skip


@pytest.fixture
def answering(cluster, not_run):
    """answering(name): the cluster, or this check reported as not run because it is not."""

    def ask(name: str) -> Cluster:
        if cluster.metadata is None:
            not_run(
                "cluster",
                name,
                f"the cluster did not answer at {cluster.bootstrap} (see brokers reachable)",
            )
        return cluster

    return ask
