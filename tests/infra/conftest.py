"""The live verification suite: checks generated from an inventory, run against its hosts.

Run it with `python -m infra verify` (which also prints the table and writes JUnit),
or directly: pytest tests/infra --inventory FILE | --stack NAME. Each test records
node, check, expected and actual as JUnit properties. A check the target cannot answer
is skipped with `not run: <reason>`, never passed.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest


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
        {"node": node["name"], **process, **runtime.get((node["name"], process["group"]), {})}
        for node in inventory["nodes"]
        for process in node["processes"]
        if process["service"] == "consumer"
    ]


def pytest_generate_tests(metafunc):
    inventory = metafunc.config.inventory
    nodes = inventory["nodes"]
    params = {
        "member": (_members(inventory), lambda m: f"{m['node']}/{m['group']}"),
        "node_file": (
            [(n["name"], f) for n in nodes for f in n["files"]],
            lambda nf: f"{nf[0]}/{nf[1]['name']}",
        ),
        "kafka_node": ([n for n in nodes if "kafka" in n["containers"]], lambda n: n["name"]),
        "topic": (inventory["topics"], lambda t: t["name"]),
        "group": (inventory["groups"], lambda g: g["group"]),
    }
    for name, (values, ids) in params.items():
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, values, ids=[ids(v) for v in values])


@pytest.fixture(scope="session")
def inventory(pytestconfig) -> dict:
    return pytestconfig.inventory


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
