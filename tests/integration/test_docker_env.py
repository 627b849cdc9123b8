"""`python -m infra verify` against Docker: the environment the Pulumi program declares.

scripts/docker_env.py runs the program under mocks and creates what it registers on a
private dockerd, with images built here (Apache Kafka and ZooKeeper from Maven Central's
jars on Debian's Java). Every example spec on one host passes verification, and each
kind of check fails on its own when the environment itself is broken on purpose,
naming node, expected and actual.
"""

from __future__ import annotations

import contextlib
import json
import subprocess

import docker
import pytest
from confluent_kafka.admin import AdminClient, NewPartitions
from rich.console import Console

from consumers.settings import client_file
from infra.ops.stacks import inventory_of
from scripts.docker_env import (
    CannotBuild,
    create,
    declare,
    destroy,
    main,
    stack_name,
    wait_healthy,
)
from tests.infra.test_security import PLAINTEXT_PLAN
from tests.integration.test_verify import (
    BROKEN,
    FROZEN_WORKER_FAILURES,
    SECURITY_CHECKS,
    failed,
)
from tests.integration.test_verify import verify as verify_inventory

# What a real cluster cannot answer, and only that, is not run: ZooKeeper mode's
# cluster id is ZooKeeper's, not the plan's; the locks of a plan that has none.
NOT_RUN = {
    "cluster id": "ZooKeeper mode: ZooKeeper assigns the cluster id",
    **dict.fromkeys(SECURITY_CHECKS, PLAINTEXT_PLAN),
}


@contextlib.contextmanager
def environment(client, spec: str, tmp_path):
    stack = stack_name(spec)
    try:
        run = declare(spec, stack, client)
        create(client, run, Console(quiet=True))
        inventory = inventory_of(run.result["outputs"], tmp_path)
        (tmp_path / "inventory.json").write_text(json.dumps(inventory))
        # The built consumers image carries the stack's labels, so its sweeper finds it.
        assert client.images.list(filters={"label": f"kafka-log-cluster.stack={stack}"})
        yield inventory
    finally:
        destroy(client, stack)
        ours = {"label": f"kafka-log-cluster.stack={stack}"}
        assert not client.images.list(filters=ours), "the stack's image outlived it"
        assert not client.containers.list(all=True, filters=ours)


def verify(tmp_path, inventory: dict, docker_host: str, *flags: str) -> tuple[int, list[dict]]:
    """verify on the tests' Docker engine, given longer: it asks each container too."""
    env = {"DOCKER_HOST": docker_host}
    return verify_inventory(tmp_path, inventory, *flags, env=env, timeout_s=600)


def assert_passes(code: int, rows: list[dict]) -> None:
    assert code == 0, failed(rows)
    for row in rows:
        if row["result"] == "not run":
            reason = next((r for check, r in NOT_RUN.items() if row["check"] == check), None)
            assert reason and reason in row["actual"], row


@pytest.fixture(scope="module")
def client(docker_engine):
    return docker.DockerClient(base_url=docker_engine)


@pytest.mark.parametrize(
    "spec", ["single-node", "zookeeper-3.9", "dedicated-controllers", "secure-kraft"]
)
def test_verify_passes_against_what_the_program_declares(spec, client, docker_engine, tmp_path):
    with environment(client, f"specs/{spec}.yaml", tmp_path) as inventory:
        code, rows = verify(tmp_path, inventory, docker_engine)
    assert_passes(code, rows)
    checks = {r["check"] for r in rows if r["result"] == "passed"}
    assert {
        "kafka running", "kafka listeners bound", "kafka data volume", "kafka JVM heap flags",
        "broker ids in the cluster metadata", "meta.properties: cluster id, node id",
    } <= checks  # fmt: skip
    if spec == "zookeeper-3.9":
        assert "zookeeper ensemble: one leader, the rest followers" in checks
        assert "zookeeper JVM heap flags" in checks and "zookeeper myid" in checks
    if spec == "secure-kraft":  # the locks hold on containers too, each tried from outside
        assert set(SECURITY_CHECKS) <= checks


def test_a_spec_over_several_hosts_is_refused_in_one_line(client):
    run = declare("specs/multi-host.yaml", "refused", client)
    with pytest.raises(CannotBuild) as refused:
        create(client, run, Console(quiet=True))
    assert str(refused.value) == (
        "the nodes are on 2 Docker hosts (ssh://ops@docker-a.example.internal, "
        "tcp://docker-b.example.internal:2376); this environment is made on one engine: "
        "give every node host: local"
    )
    assert client.containers.list(all=True, filters={"label": "kafka-log-cluster.stack"}) == []


def test_a_bad_spec_gets_the_cli_lines_and_nothing_is_made(
    client, docker_engine, monkeypatch, capsys
):
    monkeypatch.setenv("DOCKER_HOST", docker_engine)
    spec = "tests/unit/bad_specs/cores-not-a-number.yaml"
    assert main([spec]) == 2
    assert f"{spec}: nodes[1].cores: must be an integer >= 1 or \"auto\", got 'four'" in (
        capsys.readouterr().err
    )
    assert client.containers.list(all=True, filters={"label": "kafka-log-cluster.stack"}) == []


# -- broken on purpose, one thing at a time, in the three-node KRaft environment


@pytest.fixture(scope="module")
def three_nodes(client, docker_engine, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("three-nodes")
    with environment(client, "specs/three-node-kraft.yaml", tmp_path) as inventory:
        yield inventory


def test_the_three_node_environment_passes(three_nodes, docker_engine, tmp_path):
    assert_passes(*verify(tmp_path, three_nodes, docker_engine))


def test_a_changed_file_fails_its_hash_check(three_nodes, client, docker_engine, tmp_path):
    container = client.containers.get("siem-kafka-2")
    path = "/etc/kafka-log-cluster/server.properties"
    # As root: the rendered files belong to root, the broker (appuser) only reads them.
    edit = f"cp {path} /tmp/original && echo '# edited' >> {path}"
    assert container.exec_run(["sh", "-c", edit], user="root").exit_code == 0
    try:
        code, rows = verify(tmp_path, three_nodes, docker_engine, *BROKEN)
    finally:
        container.exec_run(["cp", "/tmp/original", path], user="root")
    expected = next(
        f["sha256"] for n in three_nodes["nodes"] for f in n["files"] if n["name"] == "kafka-2"
    )
    assert code == 1
    ((node, check, want, got),) = failed(rows)
    assert (node, check, want) == ("kafka-2", "file server.properties sha256", expected)
    assert got != expected and len(got) == 64


def test_a_frozen_worker_fails_the_worker_count(three_nodes, client, docker_engine, tmp_path):
    # SIGSTOP: the worker stays, does nothing, and its supervisor does not replace it.
    container = client.containers.get("siem-parsers-1")
    worker = next(
        pid for pid, ppid, args in container.top(ps_args="-eo pid,ppid,args")["Processes"]
        if "consumers worker" in args
    )  # fmt: skip
    subprocess.run(["kill", "-STOP", worker], check=True)  # its pid as the host sees it
    try:
        code, rows = verify(tmp_path, three_nodes, docker_engine, *BROKEN)
    finally:
        subprocess.run(["kill", "-CONT", worker], check=True)
    assert code == 1
    failures = failed(rows)
    assert ("parsers-1", "siem-parsers worker processes", "8", "7") in failures
    assert {f[1] for f in failures} <= FROZEN_WORKER_FAILURES


def test_a_stopped_container_fails_its_nodes_checks_only(
    three_nodes, client, docker_engine, tmp_path
):
    container = client.containers.get("siem-kafka-2")
    container.stop(timeout=30)
    try:
        code, rows = verify(tmp_path, three_nodes, docker_engine, *BROKEN)
    finally:
        container.start()
        wait_healthy(client, "siem-kafka-2", 180)  # back in the cluster for the next test
    assert code == 1
    failures = failed(rows)
    assert ("kafka-2", "kafka running", "running", "exited") in failures
    # What looks inside the stopped container cannot answer; the rest of the cluster can,
    # except that kafka-2 is missing from its broker list and its client port from the
    # locks tried port by port.
    assert {node for node, *_ in failures} <= {"kafka-2", "cluster"}
    assert {check for node, check, *_ in failures if node == "cluster"} <= {
        "broker ids in the cluster metadata",
        "every client port refuses a wrong password",
        "each client port's certificate chains to the cluster CA and names its host",
    }


def test_a_planned_topic_grown_by_a_partition_fails_its_count(three_nodes, docker_engine, tmp_path):
    """Last in this module: partitions never shrink, so the topic stays grown."""
    login = client_file(three_nodes["runtime"]["clients"]["admin"])  # secure by default
    admin = AdminClient({**login, "log_level": 0})  # alive until the future resolves
    admin.create_partitions([NewPartitions("logs.parsed", 25)])["logs.parsed"].result(timeout=30)
    code, rows = verify(tmp_path, three_nodes, docker_engine, *BROKEN)
    assert code == 1
    assert failed(rows) == [("cluster", "topic logs.parsed partitions", "24", "25")]
