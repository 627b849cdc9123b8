"""The live verification suite: checks generated from an inventory, run against its hosts.

Run it with `python -m infra verify` (which also prints the table and writes JUnit),
or directly: pytest tests/infra --inventory FILE | --stack NAME. Each test records
node, check, expected and actual as JUnit properties. A check the target cannot answer
is skipped with `not run: <reason>`, never passed.
"""

from __future__ import annotations

import json
import subprocess
from functools import cache
from pathlib import Path

import docker
import pytest
import testinfra
from testinfra.backend.docker import DockerBackend
from testinfra.host import Host


def pytest_addoption(parser):
    group = parser.getgroup("kafka-log-cluster verification")
    group.addoption(
        "--inventory", help="inventory JSON (plan --inventory, a stack's, or up --local's)"
    )
    group.addoption("--stack", help="read the inventory from this Pulumi stack's outputs")


def load_inventory(config) -> dict:
    path, stack = config.getoption("--inventory"), config.getoption("--stack")
    if stack:
        out = subprocess.run(
            ["pulumi", "stack", "output", "inventory", "--json", "--stack", stack],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return json.loads(out)
    if not path:
        raise pytest.UsageError("tests/infra needs --inventory FILE or --stack NAME")
    return json.loads(Path(path).read_text())


def pytest_configure(config):
    config.inventory = load_inventory(config)


def _members(inventory: dict) -> list[dict]:
    """One entry per consumer group share: its node, group, container and planned workers."""
    runtime = {
        (c["node"], c["group"]): c for c in inventory.get("runtime", {}).get("consumers", [])
    }
    return [
        {
            "node": node["name"],
            "host": node["host"],
            **process,
            **runtime.get((node["name"], process["group"]), {}),
        }
        for node in inventory["nodes"]
        for process in node["processes"]
        if process["service"] == "consumer"
    ]


def pytest_generate_tests(metafunc):
    inventory = metafunc.config.inventory
    nodes = inventory["nodes"]
    services = [(n, s) for n in nodes for s in ("kafka", "zookeeper") if s in n["containers"]]
    params = {
        "member": (_members(inventory), lambda m: f"{m['node']}/{m['group']}"),
        "node_file": ([(n, f) for n in nodes for f in n["files"]], lambda nf: nf[1]["container"]),
        "service_node": (services, lambda ns: f"{ns[0]['name']}/{ns[1]}"),
        "broker_node": ([n for n in nodes if n["num_partitions"]], lambda n: n["name"]),
        "zookeeper_node": ([n for n in nodes if n["zookeeper_id"]], lambda n: n["name"]),
        "ensemble": (
            [zk] if (zk := [n for n in nodes if n["zookeeper_id"]]) else [],
            lambda _: "zookeeper",
        ),
        "topic": (inventory["topics"], lambda t: t["name"]),
        "group": (inventory["groups"], lambda g: g["group"]),
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


@pytest.fixture(scope="session")
def inventory(pytestconfig) -> dict:
    return pytestconfig.inventory


@pytest.fixture(scope="session")
def members(inventory) -> list[dict]:
    return _members(inventory)


@pytest.fixture(scope="session")
def runtime(inventory) -> dict:
    return inventory.get("runtime", {"kind": "docker"})


@pytest.fixture(scope="session")
def bootstrap(inventory, runtime) -> str:
    return runtime.get("bootstrap_servers") or inventory["cluster"]["bootstrap_servers"]


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
