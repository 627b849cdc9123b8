"""The plan's rules: partitions follow cores, processes follow partitions, sizes follow hardware."""

from __future__ import annotations

import base64

import pytest
import yaml

from consumers.properties import parse
from infra.build import build
from infra.model.groups import spread
from infra.model.kafka_nodes import cluster_id
from infra.model.load import parse_spec
from infra.model.planner import build_plan
from infra.model.sizing import heap_mb
from infra.model.topology import PORT_BLOCK
from infra.problems import InputError
from tests.conftest import EXAMPLE_SPECS, TEST_LOCAL_CORES


def plan_of(data: dict):
    spec, _ = parse_spec(data, "test.yaml")
    return build_plan(spec, "test.yaml", TEST_LOCAL_CORES)


@pytest.fixture(params=EXAMPLE_SPECS, ids=lambda p: p.stem)
def example(request):
    return build(str(request.param), local_cores=TEST_LOCAL_CORES)


def test_every_broker_file_says_num_partitions_equals_its_cores(example):
    brokers = [n for n in example.plan.nodes if "broker" in n.roles]
    assert brokers
    for node in brokers:
        (server,) = [f for f in example.rendered[node.name] if f.name == "server.properties"]
        settings = {e.key: e.value for e in parse(server.content)}
        assert settings["num.partitions"] == str(node.cores)


def test_topics_without_a_count_get_one_partition_per_broker_core(example):
    broker_cores = sum(n.cores for n in example.plan.nodes if "broker" in n.roles)
    derived = [t for t in example.plan.topics if t.partitions.why != "set in the spec"]
    assert derived
    assert {t.partitions.value for t in derived} == {broker_cores}


def test_every_partition_has_exactly_one_process_and_no_node_runs_more_than_its_cores(example):
    for group in example.plan.groups:
        shares = [(n, s) for n in example.plan.nodes for s in n.consumers if s.group == group.group]
        owned = sorted(p for _, s in shares for process in s.partitions for p in process)
        assert owned == list(range(group.partitions))
        assert sum(s.processes for _, s in shares) == group.processes.value
        for node, share in shares:
            assert "consumer" in node.roles
            assert share.processes <= node.cores
            assert len(share.partitions) == share.processes


@pytest.mark.parametrize("spec_path", EXAMPLE_SPECS, ids=lambda p: p.stem)
def test_the_plan_and_files_are_byte_identical_when_planned_again(spec_path):
    first = build(str(spec_path), local_cores=TEST_LOCAL_CORES)
    again = build(str(spec_path), local_cores=TEST_LOCAL_CORES)
    assert first.plan.to_json() == again.plan.to_json()
    assert first.rendered == again.rendered


def test_fewer_consumer_cores_than_partitions_means_one_process_per_core():
    built = build("specs/dedicated-controllers.yaml", local_cores=TEST_LOCAL_CORES)
    (group,) = built.plan.groups
    assert (group.partitions, group.processes.value) == (32, 12)
    assert group.processes.why.startswith("= consumer cores (12) < partitions (32)")
    shares = {n.name: n.consumers[0] for n in built.plan.nodes if n.consumers}
    assert {name: s.processes for name, s in shares.items()} == {"parsers-1": 8, "parsers-2": 4}
    assert {len(p) for s in shares.values() for p in s.partitions} == {2, 3}


@pytest.mark.parametrize(
    ("total", "capacity", "shares"),
    [
        (32, [8, 4], [8, 4]),
        (12, [8, 4], [8, 4]),
        (5, [8, 4], [3, 2]),
        (1, [2, 2], [1, 0]),
        (3, [1, 1, 1, 1], [1, 1, 1, 0]),
        (7, [16], [7]),
    ],
)
def test_spread_is_proportional_capped_and_deterministic(total, capacity, shares):
    assert spread(total, capacity) == shares


@pytest.mark.parametrize(
    ("memory_gb", "service", "mib"),
    [
        (64, "broker", 6144),  # capped: the page cache gets the rest
        (16, "broker", 4096),  # a quarter
        (1, "broker", 512),  # the floor
        (0.5, "broker", 256),  # never more than half
        (4, "controller", 1024),
        (64, "zookeeper", 2048),
    ],
)
def test_heap_is_a_bounded_share_of_memory(memory_gb, service, mib):
    assert heap_mb(memory_gb, service).value == mib


def sizing(plan, node):
    return {
        k: d.value
        for title, section in plan.node(node).server_properties.items()
        if title.startswith("Sizing")
        for k, d in section.items()
    }


def test_broker_threads_follow_cores(minimal_spec):
    minimal_spec["nodes"] = [
        {"name": "small", "cores": 1, "roles": ["broker", "controller"]},
        {"name": "big", "cores": 32, "roles": ["broker", "controller"]},
        {"name": "mid", "cores": 8, "roles": ["broker", "controller", "consumer"]},
    ]
    plan, _ = plan_of(minimal_spec)
    assert sizing(plan, "small") == {
        "num.partitions": 1,
        "num.network.threads": 3,
        "num.io.threads": 8,
        "num.recovery.threads.per.data.dir": 2,
        "num.replica.fetchers": 1,
    }
    assert sizing(plan, "big") == {
        "num.partitions": 32,
        "num.network.threads": 16,
        "num.io.threads": 64,
        "num.recovery.threads.per.data.dir": 32,
        "num.replica.fetchers": 8,
    }


def test_replication_defaults_follow_the_broker_count(minimal_spec):
    plan, _ = plan_of(minimal_spec)
    (raw, *_) = plan.topics
    assert (raw.replication_factor.value, raw.config["min.insync.replicas"].value) == (1, 1)
    minimal_spec["nodes"] += [
        {"name": f"kafka-{i}", "cores": 4, "roles": ["broker", "controller"]} for i in (2, 3, 4)
    ]
    plan, _ = plan_of(minimal_spec)
    (raw, *_) = plan.topics
    assert (raw.replication_factor.value, raw.config["min.insync.replicas"].value) == (3, 2)
    replication = plan.node("kafka-1").server_properties["Replication"]
    assert replication["offsets.topic.replication.factor"].value == 3
    assert replication["auto.create.topics.enable"].value is False


def test_sink_and_dead_letter_topics_are_planned_too(minimal_spec):
    plan, _ = plan_of(minimal_spec)
    assert [(t.name, t.origin) for t in plan.topics] == [
        ("logs.raw", "declared in the spec"),
        ("logs.parsed", "sink of group parsers"),
        ("logs.raw.dlq", "dead letters of group parsers"),
    ]


def test_tuning_overrides_say_what_the_plan_would_have_set(minimal_spec):
    minimal_spec["tuning"] = {
        "broker": {"num.io.threads": 24, "log.retention.check.interval.ms": 60000},
        "producer": {"linger.ms": 5},
    }
    plan, _ = plan_of(minimal_spec)
    sections = plan.node("kafka-1").server_properties
    io = next(s for t, s in sections.items() if t.startswith("Sizing"))["num.io.threads"]
    assert (io.value, io.why) == (24, "operator override in tuning.broker (the plan would set 8)")
    assert sections["Operator tuning"]["log.retention.check.interval.ms"].value == 60000
    linger = plan.groups[0].producer["linger.ms"]
    assert (linger.value, linger.why) == (
        5,
        "operator override in tuning.producer (the plan would set 20)",
    )


def test_each_node_owns_a_block_of_ports_on_its_docker_host():
    built = build("specs/multi-host.yaml", local_cores=TEST_LOCAL_CORES)
    plan = built.plan
    published = {}
    for node in plan.nodes:
        for port in node.ports:
            if port.published is not None:
                assert (node.host, port.published) not in published, "a host port used twice"
                published[(node.host, port.published)] = node.name
    assert plan.cluster.bootstrap_servers == (
        "docker-a.example.internal:19092,docker-a.example.internal:19102,"
        "docker-b.example.internal:19092"
    )
    voters = plan.node("kafka-b1").server_properties["Listeners"]["controller.quorum.voters"]
    assert voters.value == (
        "1@docker-a.example.internal:19094,2@docker-a.example.internal:19104,"
        "3@docker-b.example.internal:19094"
    )
    assert plan.node("kafka-a1").publish_ip == "0.0.0.0"


def test_a_single_host_cluster_talks_over_container_names_and_publishes_clients_and_metrics():
    plan = build("specs/three-node-kraft.yaml", local_cores=TEST_LOCAL_CORES).plan
    node = plan.node("kafka-2")
    assert [(p.name, p.container, p.published) for p in node.ports] == [
        ("INTERNAL", 9092, None),
        ("EXTERNAL", 9094, PORT_BLOCK + 10 + 2),
        ("CONTROLLER", 9093, None),
        ("kafka-metrics", 9404, PORT_BLOCK + 10 + 5),  # for a Prometheus on the host
    ]
    assert plan.cluster.internal_bootstrap_servers == (
        "siem-kafka-1:9092,siem-kafka-2:9092,siem-kafka-3:9092"
    )
    assert node.publish_ip == "127.0.0.1"


def test_container_names_put_the_nodes_first_service_under_its_own_name(minimal_spec):
    plan, _ = plan_of(minimal_spec)
    assert plan.node("kafka-1").containers == {
        "kafka": "logs-kafka-1",
        "consumer:parsers": "logs-kafka-1-parsers",
    }
    minimal_spec["nodes"].append({"name": "parsers-2", "cores": 2, "roles": ["consumer"]})
    minimal_spec["topics"].append({"name": "audit", "partitions": 1})
    minimal_spec["consumers"].append({"group": "auditors", "topic": "audit"})
    plan, _ = plan_of(minimal_spec)
    # One process of auditors lands on kafka-1 (more cores): parsers-2 runs no auditors.
    assert plan.node("parsers-2").containers == {"consumer:parsers": "logs-parsers-2"}
    assert plan.node("kafka-1").containers == {
        "kafka": "logs-kafka-1",
        "consumer:parsers": "logs-kafka-1-parsers",
        "consumer:auditors": "logs-kafka-1-auditors",
    }


def test_cluster_id_is_a_kraft_id_derived_from_the_name():
    first = cluster_id("logs")
    assert len(first) == 22 and len(base64.urlsafe_b64decode(first + "==")) == 16
    assert first == cluster_id("logs") != cluster_id("logs-2")


def test_auto_cores_take_the_machine_count_given_to_the_plan(minimal_spec):
    minimal_spec["nodes"][0]["cores"] = "auto"
    spec, _ = parse_spec(minimal_spec, "test.yaml")
    plan, _ = build_plan(spec, "test.yaml", local_cores=6)
    assert plan.node("kafka-1").cores == 6
    assert plan.topics[0].partitions.value == 6


def test_more_processes_than_partitions_is_a_warning(minimal_spec):
    minimal_spec["topics"][0]["partitions"] = 2
    minimal_spec["consumers"][0]["processes"] = 3
    _, warnings = plan_of(minimal_spec)
    assert [w.line("test.yaml: warning") for w in warnings] == [
        "test.yaml: warning: consumers[0].processes: 3 processes for 2 partitions leave 1 idle"
    ]


def test_soft_bounds_warn_with_their_source_and_plan_anyway():
    spec = {
        "cluster": {"name": "logs"},
        "nodes": [
            {"name": "big", "cores": 1024, "memory_gb": 16384, "roles": ["broker", "controller"]}
        ],
        "topics": [{"name": "t", "partitions": 5000}],
    }
    plan, warnings = plan_of(spec)
    assert plan.node("big").cores == 1024
    lines = [w.line("test.yaml") for w in warnings]
    assert (
        "test.yaml: nodes[0].cores: 1,024 is more than 768: the largest two-socket servers sold "
        "in 2026 (2 x AMD EPYC 9965) have 768 hardware threads"
    ) in lines
    assert any(
        line.startswith("test.yaml: nodes[0].memory_gb: 16,384 is more than 12,288")
        for line in lines
    )
    assert (
        "test.yaml: topics: partition replicas per broker: 5,000 is more than 4,000: KIP-578 "
        "recommends at most 4,000 partition replicas per broker"
    ) in lines


def test_a_huge_partition_count_is_refused_before_anything_is_planned_per_partition():
    spec = {
        "cluster": {"name": "logs"},
        "nodes": [{"name": "k", "cores": 4, "roles": ["broker", "controller", "consumer"]}],
        "topics": [{"name": "t", "partitions": 10**15}],
        "consumers": [{"group": "g", "topic": "t"}],
    }
    with pytest.raises(InputError) as refused:
        plan_of(spec)
    assert refused.value.lines() == [
        "test.yaml: topics: the cluster's partitions: 1,000,000,000,000,004 is more than "
        "2,000,000: about 2 million is the most any published KRaft test reached"
    ]


def test_explicit_ids_survive_a_node_inserted_before_them(tmp_path):
    """Without id:, inserting a node renumbers those after it; with id:, each keeps its own."""

    def ids(nodes) -> dict[str, int]:
        spec = {"cluster": {"name": "logs"}, "nodes": nodes}
        path = tmp_path / "spec.yaml"
        path.write_text(yaml.safe_dump(spec))
        plan = build(str(path), TEST_LOCAL_CORES).plan
        return {n.name: n.node_id for n in plan.nodes}

    def node(name: str, **extra) -> dict:
        return {"name": name, "cores": 4, "roles": ["broker", "controller"], **extra}

    before = ids([node("kafka-1"), node("kafka-2")])
    assert before == {"kafka-1": 1, "kafka-2": 2}
    assert ids([node("kafka-0"), node("kafka-1"), node("kafka-2")])["kafka-2"] == 3  # renumbered
    kept = ids([node("kafka-0", id=3), node("kafka-1", id=1), node("kafka-2", id=2)])
    assert kept == {"kafka-0": 3, "kafka-1": 1, "kafka-2": 2}
