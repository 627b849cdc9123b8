"""Hypothesis: any valid spec plans deterministically and renders files Kafka would accept."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.properties import parse
from infra.model.load import parse_spec
from infra.model.planner import build_plan
from infra.render.files import render
from infra.render.inventory import build_inventory

NAME = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
TOPIC = st.from_regex(r"[a-zA-Z0-9._-]{1,30}", fullmatch=True).filter(
    lambda s: s not in {".", ".."}
)
MODES = [("4.1", "kraft"), ("3.9", "kraft"), ("3.9", "zookeeper")]


@st.composite
def specs(draw) -> dict:
    version, mode = draw(st.sampled_from(MODES))
    quorum_role = "controller" if mode == "kraft" else "zookeeper"
    optional_roles = ["broker", quorum_role, "consumer"]
    count = draw(st.integers(1, 7))
    names = draw(st.lists(NAME, min_size=count, max_size=count, unique=True))
    remote = draw(st.booleans())
    hosts = (
        draw(
            st.lists(
                st.sampled_from(["ssh://ops@a.example", "tcp://b.example:2376"]),
                min_size=count,
                max_size=count,
            )
        )
        if remote
        else ["local"] * count
    )
    nodes = []
    for i, (name, host) in enumerate(zip(names, hosts, strict=True)):
        roles = draw(st.lists(st.sampled_from(optional_roles), min_size=1, max_size=3, unique=True))
        if i == 0:  # every valid spec has a broker and a quorum
            roles = sorted({*roles, "broker", quorum_role})
        cores = draw(st.integers(1, 64))
        nodes.append(
            {
                "name": name,
                "host": host,
                "cores": cores,
                # Room for a worker per core in each of up to 3 groups beside the JVMs.
                "memory_gb": max(draw(st.sampled_from([0.5, 2, 8, 31.5, 256])), cores + 4.0),
                "roles": roles,
            }
        )
    brokers = sum("broker" in n["roles"] for n in nodes)
    topics = []
    for topic_name in draw(st.lists(TOPIC, max_size=3, unique=True)):
        topic: dict = {"name": topic_name}
        if draw(st.booleans()):
            topic["partitions"] = draw(st.integers(1, 200))
        if draw(st.booleans()):
            rf = draw(st.integers(1, brokers))
            topic["replication_factor"] = rf
            topic["min_insync_replicas"] = 1 if rf == 1 else draw(st.integers(1, rf - 1))
        if draw(st.booleans()):
            topic["retention"] = draw(st.sampled_from(["30m", "12h", "7d", "2w"]))
        if draw(st.booleans()):
            topic["compression"] = draw(st.sampled_from(["none", "lz4", "zstd", "producer"]))
        topics.append(topic)
    consumer_nodes = [n for n in nodes if "consumer" in n["roles"]]
    consumers = []
    if consumer_nodes:
        for i, topic in enumerate(topics):
            consumers.append({"group": f"group-{i}", "topic": topic["name"], "sink": "stdout"})
    return {
        "cluster": {"name": draw(NAME), "kafka_version": version, "mode": mode},
        "nodes": nodes,
        "topics": topics,
        "consumers": consumers,
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_any_valid_spec_renders_checked_files_deterministically(data):
    spec, _ = parse_spec(data, "generated.yaml")
    plan, _ = build_plan(spec, "generated.yaml", local_cores=4)
    rendered = render(plan, "generated.yaml")  # raises if a broker would refuse a file
    again, _ = build_plan(spec, "generated.yaml", local_cores=4)
    assert plan.to_json() == again.to_json()
    assert render(again, "generated.yaml") == rendered

    for node in plan.nodes:
        files = {f.name: f.content for f in rendered[node.name]}
        if "broker" in node.roles:
            settings_ = {e.key: e.value for e in parse(files["server.properties"])}
            assert settings_["num.partitions"] == str(node.cores)
        for share in node.consumers:
            assert share.processes <= node.cores
    for group in plan.groups:
        owned = sorted(
            p
            for n in plan.nodes
            for s in n.consumers
            if s.group == group.group
            for process in s.partitions
            for p in process
        )
        assert owned == list(range(group.partitions))
    assert len(build_inventory(plan, rendered)["nodes"]) == len(spec.nodes)
