"""The Pulumi program under Pulumi's own mocks: what it registers, for every example spec.

No Pulumi engine can run on the build machines, so the program is run with
pulumi.runtime.set_mocks (infra/program/mocks.py records every registration). Under
mocks, input keys are camelCase and numbers arrive as floats.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter

import pulumi
import pytest

from consumers.properties import parse
from infra.build import build
from infra.provision.components import kafka as kafka_component
from infra.provision.components.consumers import context_digest
from infra.provision.program import mocks
from infra.provision.stack import provider_name
from tests.conftest import DOCKER_SPECS, REPO, SECURED_SPECS

CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
TOPIC = "kafka:index/topic:Topic"


def run_program(spec: str, **config: str):
    run = mocks.run_program(spec, **config)
    return run.recorder, run.result


@pytest.fixture(params=DOCKER_SPECS, ids=lambda p: p.stem)
def example(request):
    spec = str(request.param.relative_to(REPO))
    recorder, result = run_program(spec)
    return spec, recorder, result, build(spec)


def uploads(container) -> dict[str, str]:
    return {u["file"]: u["content"] for u in container.inputs.get("uploads", [])}


def labels(resource) -> dict[str, str]:
    return {item["label"]: item["value"] for item in resource.inputs["labels"]}


def test_a_container_per_node_service_on_its_hosts_provider(example):
    _, recorder, _, built = example
    containers = {c.name: c for c in recorder.of(CONTAINER)}
    expected = {name: node for node in built.plan.nodes for name in node.containers.values()}
    assert set(containers) == set(expected)
    for name, node in expected.items():
        assert containers[name].inputs["name"] == name
        assert f"::{provider_name(node.host)}::" in containers[name].provider
    providers = [r.name for r in recorder.of("pulumi:providers:docker")]  # engine's order
    assert sorted(providers) == sorted({provider_name(n.host) for n in built.plan.nodes})


def test_uploaded_files_are_the_rendered_ones_and_num_partitions_is_cores(example):
    _, recorder, _, built = example
    containers = {c.name: c for c in recorder.of(CONTAINER)}
    for node in built.plan.nodes:
        for f in built.rendered[node.name]:
            container = containers[node.containers[f.service]]
            assert uploads(container)[f.path] == f.content  # byte-identical
        if "broker" in node.roles:
            server = uploads(containers[node.containers["kafka"]])[
                "/etc/kafka-log-cluster/server.properties"
            ]
            assert {e.key: e.value for e in parse(server)}["num.partitions"] == str(node.cores)


def test_data_volumes_heap_and_ports(example):
    _, recorder, _, built = example
    containers = {c.name: c for c in recorder.of(CONTAINER)}
    volumes = {v.name for v in recorder.of(VOLUME)}
    for node in built.plan.nodes:
        for service, name in node.containers.items():
            inputs = containers[name].inputs
            if service in node.data_dirs:  # a JVM's data, or a file sink's directory
                assert f"{name}-data" in volumes
                (mount,) = inputs["volumes"]
                assert (mount["volumeName"], mount["containerPath"]) == (
                    f"{name}-data",
                    node.data_dirs[service],
                )
            else:
                assert "volumes" not in inputs or inputs["volumes"] == []
            if service in ("kafka", "zookeeper"):
                heap = node.heap_mb[service].value
                env = (
                    f"KAFKA_HEAP_OPTS=-Xms{heap}m -Xmx{heap}m"
                    if service == "kafka"
                    else f"ZK_SERVER_HEAP={heap}"
                )
                assert inputs["envs"] == [env]
                assert inputs["restart"] == "unless-stopped"
                # The heap fits inside the container's share of the node's memory.
                assert heap < inputs["memory"] == inputs["memorySwap"]
            limit = node.limits[service]
            assert (inputs["memory"], inputs["cpuShares"]) == (
                limit.memory_mb.value,
                limit.cpu_shares.value,
            )
        published = [p for p in node.ports if p.published is not None]
        got = [
            (p["internal"], p["external"], p["ip"])
            for name in node.containers.values()
            for p in containers[name].inputs.get("ports", [])
        ]
        assert sorted(got) == sorted(
            (float(p.container), float(p.published), node.publish_ip) for p in published
        )


def test_every_resource_carries_the_sweepers_labels(example):
    _, recorder, _, built = example
    for resource in recorder.of(CONTAINER) + recorder.of(VOLUME):
        found = labels(resource)
        assert found["kafka-log-cluster.stack"] == "test"
        assert found["kafka-log-cluster.cluster"] == built.plan.cluster.name
        assert found["kafka-log-cluster.managed-by"] == "pulumi"
        assert found["kafka-log-cluster.role"] in ("kafka", "zookeeper", "consumer")
        assert found["kafka-log-cluster.node"] in {n.name for n in built.plan.nodes}
        assert "kafka-log-cluster.created-at" not in found and "kafka-log-cluster.ttl" not in found
    for network in recorder.of("docker:index/network:Network"):
        assert labels(network)["kafka-log-cluster.cluster"] == built.plan.cluster.name


def test_created_at_and_ttl_come_from_stack_config():
    recorder, _ = run_program(
        "specs/single-node.yaml", **{"created-at": "2026-11-25T09:00:00Z", "ttl": "2h"}
    )
    for resource in recorder.of(CONTAINER) + recorder.of(VOLUME):
        found = labels(resource)
        assert (found["kafka-log-cluster.created-at"], found["kafka-log-cluster.ttl"]) == (
            "2026-11-25T09:00:00Z",
            "2h",
        )


def test_topics_with_planned_partitions_and_configs(example):
    _, recorder, _, built = example
    topics = {t.inputs["name"]: t.inputs for t in recorder.of(TOPIC)}
    assert set(topics) == {t.name for t in built.plan.topics}
    for topic in built.plan.topics:
        registered = topics[topic.name]
        assert registered["partitions"] == topic.partitions.value
        assert registered["replicationFactor"] == topic.replication_factor.value
        assert registered["config"] == {
            k: str(d.value).lower() if isinstance(d.value, bool) else str(d.value)
            for k, d in topic.config.items()
        }
    (provider,) = recorder.of("pulumi:providers:kafka")
    assert json.loads(
        provider.inputs["bootstrapServers"]
    ) == built.plan.cluster.bootstrap_servers.split(",")


def test_consumer_containers_run_the_planned_processes(example):
    _, recorder, _, built = example
    containers = {c.name: c for c in recorder.of(CONTAINER)}
    consumer_containers = [
        containers[node.containers[f"consumer:{share.group}"]]
        for node in built.plan.nodes
        for share in node.consumers
    ]
    for node in built.plan.nodes:
        for share in node.consumers:
            container = containers[node.containers[f"consumer:{share.group}"]]
            path = f"/etc/kafka-log-cluster/consumer-{share.group}.properties"
            assert container.inputs["command"][:2] == ["--config", path]
            settings = {e.key: e.value for e in parse(uploads(container)[path])}
            assert settings["processes"] == str(share.processes)
    images = recorder.of("docker:index/image:Image")
    hosts_with_consumers = {n.host for n in built.plan.nodes if n.consumers}
    assert len(images) == len(hosts_with_consumers)
    for image in images:
        assert image.inputs["build"]["dockerfile"] == "consumers/Dockerfile"
        assert image.inputs["skipPush"] is True
        # The stack's own tag, labelled for its sweeper (the mocks' stack is "test").
        assert image.inputs["imageName"] == f"kafka-log-cluster/consumers:test-{context_digest()}"
        args = image.inputs["build"]["args"]
        assert (args["LABEL_STACK"], args["LABEL_MANAGED_BY"]) == ("test", "pulumi")
        assert args["LABEL_CLUSTER"] == built.plan.cluster.name
        assert {c.inputs["image"] for c in consumer_containers} == {image.inputs["imageName"]}


def test_the_consumers_image_tag_follows_its_build_context(tmp_path, monkeypatch):
    from infra.provision.components import consumers

    before = consumers.context_digest()
    copy = tmp_path / "repo"
    for entry in consumers.CONTEXT:
        source, target = REPO / entry, copy / entry
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(
                source, target, ignore=shutil.ignore_patterns("__pycache__", "wheelhouse")
            )
        else:
            shutil.copy(source, target)
    monkeypatch.setattr(consumers, "REPO", copy)
    assert consumers.context_digest() == before  # the same content, the same tag
    (copy / "consumers/parsing.py").write_text((copy / "consumers/parsing.py").read_text() + "\n")
    assert consumers.context_digest() != before


def test_zookeeper_containers_only_in_zookeeper_mode(example):
    _, recorder, _, built = example
    counts = Counter(r.typ for r in recorder.registered)
    zookeepers = [n for n in built.plan.nodes if "zookeeper" in n.containers]
    assert counts["kafka-log-cluster:index:ZooKeeperEnsemble"] == (
        built.plan.cluster.mode == "zookeeper"
    )
    assert bool(zookeepers) == (built.plan.cluster.mode == "zookeeper")
    images = [r.inputs["name"] for r in recorder.of("docker:index/remoteImage:RemoteImage")]
    assert ("zookeeper:3.8.4" in images) == bool(zookeepers)
    assert f"apache/kafka:{built.plan.cluster.kafka_release}" in images


def test_kafka_containers_are_children_of_the_cluster_component(example):
    _, _, result, _ = example
    for urn in result["urns"]:
        assert "kafka-log-cluster:index:KafkaCluster$docker:index/container:Container" in urn


def test_outputs_are_the_bootstrap_servers_and_the_cli_inventory(example, cli):
    spec, _, result, built = example
    outputs = result["provisioned"].outputs
    assert outputs["bootstrap_servers"] == built.plan.cluster.bootstrap_servers
    code, printed, _ = cli("plan", spec, "--inventory")  # what verify SPEC reads
    assert code == 0
    assert outputs["inventory"] == json.loads(printed)


def test_jvm_containers_wait_on_a_healthcheck_that_asks_the_service(example):
    _, recorder, _, built = example
    containers = {c.name: c.inputs for c in recorder.of(CONTAINER)}
    for node in built.plan.nodes:
        for service in ("kafka", "zookeeper"):
            if service not in node.containers:
                continue
            inputs = containers[node.containers[service]]
            assert inputs["wait"] is True
            shell, flag, script = inputs["healthcheck"]["tests"][1:]
            assert (shell, flag) == ("bash", "-c")
            if service == "zookeeper":
                assert "printf 'srvr'" in script and "grep -q '^Mode: '" in script
            else:  # an ApiVersions request on the listener its cluster uses
                port = 9092 if "broker" in node.roles else 9093
                assert script.startswith(f"exec 3<>/dev/tcp/127.0.0.1/{port} ")
                assert kafka_component.API_VERSIONS in script


@pytest.mark.parametrize("spec", DOCKER_SPECS, ids=lambda p: p.stem)
def test_two_runs_register_identical_inputs(spec):
    path = str(spec.relative_to(REPO))
    first, _ = run_program(path)
    second, _ = run_program(path)

    def signature(recorder):  # registration order is the engine's, not the program's
        return sorted(
            (r.typ, r.name, json.dumps(r.inputs, sort_keys=True, default=str))
            for r in recorder.registered
        )

    assert signature(first) == signature(second)


def test_a_bad_spec_registers_nothing_and_says_why_in_the_cli_lines():
    spec = "tests/unit/bad_specs/cores-not-a-number.yaml"
    run = mocks.Run(mocks.Recorder())
    with pytest.raises(pulumi.RunError) as caught:
        mocks.run_program(spec, run=run)
    assert run.recorder.registered == []
    assert str(caught.value) == (
        f"{spec}: nodes[1].cores: must be an integer >= 1 or \"auto\", got 'four'"
    )


@pytest.mark.parametrize("spec", SECURED_SPECS, ids=lambda p: p.stem)
def test_a_secured_spec_is_refused_before_any_resource(spec):
    path = str(spec.relative_to(REPO))
    run = mocks.Run(mocks.Recorder())
    with pytest.raises(pulumi.RunError, match=r"security: the Docker placement does not carry"):
        mocks.run_program(path, run=run)
    assert run.recorder.registered == []


def test_the_kafka_provider_gets_every_input_the_plan_decides(example):
    _, recorder, _, built = example
    (provider,) = recorder.of("pulumi:providers:kafka")
    # Unset, the SDK turns TLS on, which the planned PLAINTEXT listeners refuse.
    assert provider.inputs["tlsEnabled"] == "false"
    assert provider.inputs["skipTlsVerify"] == "false"
    assert json.loads(provider.inputs["bootstrapServers"]) == (
        built.plan.cluster.bootstrap_servers.split(",")
    )


def test_consumers_wait_for_their_topics_and_topics_for_the_brokers(example):
    _, recorder, _, built = example
    topics = {t.name for t in recorder.of(TOPIC)}
    for node in built.plan.nodes:
        for share in node.consumers:
            needs = set(recorder.depends_on[node.containers[f"consumer:{share.group}"]])
            assert topics <= needs, "a worker exits when its topic is missing"
    (provider,) = recorder.of("pulumi:providers:kafka")
    kafka = {n.containers["kafka"] for n in built.plan.nodes if "kafka" in n.containers}
    assert kafka <= set(recorder.depends_on[provider.name])
