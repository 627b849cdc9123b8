"""The local placement: the same plan, as processes on this machine bound to loopback."""

from __future__ import annotations

import pytest

from consumers.properties import parse
from infra.build import build
from infra.model.topology import Placement
from infra.problems import InputError
from tests.conftest import EXAMPLE_SPECS, TEST_LOCAL_CORES

OUT = "/var/tmp/klc-test"


def local(spec: str, port_base: int = 29090):
    return build(spec, TEST_LOCAL_CORES, Placement.local(OUT, port_base))


def settings(built, node: str, name: str) -> dict[str, str]:
    (found,) = [f for f in built.rendered[node] if f.name == name]
    return {e.key: e.value for e in parse(found.content)}


def test_every_listener_binds_loopback_on_a_port_of_its_own():
    for spec in EXAMPLE_SPECS:
        built = local(str(spec))
        ports = [p.container for n in built.plan.nodes for p in n.ports]
        assert len(ports) == len(set(ports)), spec.stem
        for node in built.plan.nodes:
            if node.server_properties:
                listeners = settings(built, node.name, "server.properties")["listeners"]
                assert all(
                    entry.split("://")[1].startswith("127.0.0.1:") for entry in listeners.split(",")
                )


def test_the_port_block_moves_every_port():
    first, second = (
        local("specs/three-node-kraft.yaml"),
        local("specs/three-node-kraft.yaml", 39090),
    )
    assert [p.container - 10000 for n in second.plan.nodes for p in n.ports] == [
        p.container for n in first.plan.nodes for p in n.ports
    ]
    assert (
        second.plan.cluster.bootstrap_servers == "127.0.0.1:39092,127.0.0.1:39102,127.0.0.1:39112"
    )


def test_files_data_and_status_live_under_the_out_directory():
    built = local("specs/zookeeper-3.9.yaml")
    zk = built.plan.node("zk-1")
    assert zk.data_dirs == {"zookeeper": f"{OUT}/zk-1/zookeeper"}
    assert {f.name: f.path for f in built.rendered["zk-1"]} == {
        "zookeeper.properties": f"{OUT}/zk-1/zookeeper.properties",
        "myid": f"{OUT}/zk-1/zookeeper/myid",
        "zookeeper-metrics.yaml": f"{OUT}/zk-1/zookeeper-metrics.yaml",
    }
    zk_settings = settings(built, "zk-1", "zookeeper.properties")
    assert (zk_settings["clientPortAddress"], zk_settings["clientPort"]) == ("127.0.0.1", "29091")
    broker = settings(built, "kafka-1", "server.properties")
    assert broker["log.dirs"] == f"{OUT}/kafka-1/data"
    assert broker["zookeeper.connect"] == "127.0.0.1:29091,127.0.0.1:29101,127.0.0.1:29111"
    (share,) = built.plan.node("parsers-1").consumers
    assert share.status_file == f"{OUT}/parsers-1/status-app-log-shippers.json"


def test_heaps_are_capped_for_one_machine_and_say_so():
    docker = build("specs/three-node-kraft.yaml", TEST_LOCAL_CORES)
    built = local("specs/three-node-kraft.yaml")
    heap = built.plan.node("kafka-1").heap_mb["kafka"]
    assert docker.plan.node("kafka-1").heap_mb["kafka"].value == 6144
    assert heap.value == 512
    assert "6144" in heap.why


def test_the_docker_placement_is_untouched_by_the_local_one():
    docker = build("specs/single-node.yaml", TEST_LOCAL_CORES)
    assert docker.plan.cluster.placement == "docker"
    assert settings(docker, "kafka-1", "server.properties")["log.dirs"] == "/var/lib/kafka/data"


def test_metrics_ports_are_planned_apart_and_a_block_too_low_for_them_is_refused():
    built = local("specs/dedicated-controllers.yaml")
    metrics = [p.container for n in built.plan.nodes for p in n.ports if "metrics" in p.name]
    groups = [s.metrics for n in built.plan.nodes for s in n.consumers]
    # One per Kafka node in its block; each consumer share 1000 below, by node slot and group.
    assert len(metrics) == 6 and all(29090 < p < 29090 + 10 * 8 for p in metrics)
    assert groups == ["127.0.0.1:28150", "127.0.0.1:28160"]  # parsers-1 and -2: slots 6, 7
    served = [f"127.0.0.1:{p}" for p in metrics] + groups
    assert len(set(served)) == len(served)
    with pytest.raises(InputError, match=r"--port-base: port block 1500 puts its consumer "):
        local("specs/dedicated-controllers.yaml", port_base=1500)
