"""The Pulumi program under Pulumi's own mocks: what it registers, for every example spec.

No Pulumi engine can run on the build machines, so the program is run with
pulumi.runtime.set_mocks (infra/program/mocks.py records every registration). Under
mocks, input keys are camelCase and numbers arrive as floats.
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
import shutil
from collections import Counter
from pathlib import Path

import pulumi
import pytest
import yaml

from consumers.properties import parse
from infra.build import build
from infra.model.metrics import AGENT_IN_CONTAINER
from infra.model.topology import CONSUMER_METRICS_PORT
from infra.provision.components import kafka as kafka_component
from infra.provision.components.consumers import context_digest
from infra.provision.components.secrets import KEYRING
from infra.provision.program import mocks
from infra.provision.stack import provider_name
from infra.render.files import monitoring
from infra.secrets import Keyring, fill, secret_contents
from tests.conftest import EXAMPLE_SPECS, REPO, plaintext

CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
TOPIC = "kafka:index/topic:Topic"
SCRAM_USER = "kafka:index/userScramCredential:UserScramCredential"
ACL = "kafka:index/acl:Acl"


@functools.cache
def keyring(spec: str) -> Keyring:
    """What `make up` puts in the stack's secret config, once per spec."""
    plan = build(spec).plan
    return fill(plan, Keyring({}, plan.cluster.name))


def run_program(spec: str, **config: str):
    secured = build(spec).plan.security is not None
    secrets = {KEYRING: keyring(spec).dumps()} if secured else {}
    run = mocks.run_program(spec, secrets=secrets, **config)
    return run.recorder, run.result


@pytest.fixture(params=EXAMPLE_SPECS, ids=lambda p: p.stem)
def example(request):
    spec = str(request.param.relative_to(REPO))
    recorder, result = run_program(spec)
    return spec, recorder, result, build(spec)


def uploads(container) -> dict[str, str | bytes]:
    """Path -> content: the rendered files' text, the secret files' bytes (a file of this
    machine, the JMX exporter's jar: its bytes)."""

    def content(u: dict) -> str | bytes:
        if "source" in u:
            return Path(u["source"]).read_bytes()
        return u["content"] if "content" in u else base64.b64decode(u["contentBase64"])

    return {u["file"]: content(u) for u in container.inputs.get("uploads", [])}


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
                port = next(p.container for p in node.ports if p.name == f"{service}-metrics")
                agent = (
                    f"-javaagent:{AGENT_IN_CONTAINER}=0.0.0.0:{port}:"
                    f"{node.config_dir}/{service}-metrics.yaml"
                )
                flags = "KAFKA_OPTS" if service == "kafka" else "SERVER_JVMFLAGS"
                assert inputs["envs"] == [env, f"{flags}={agent}"]
                # The JMX exporter's jar, from this machine's Maven cache.
                assert uploads(containers[name])[AGENT_IN_CONTAINER][:2] == b"PK"  # a jar
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
        metrics = [  # each consumer group's supervisor, published from its container
            (
                float(CONSUMER_METRICS_PORT),
                float(s.metrics_target.rsplit(":", 1)[1]),
                node.publish_ip,
            )
            for s in node.consumers
        ]
        assert sorted(got) == sorted(
            [(float(p.container), float(p.published), node.publish_ip) for p in published] + metrics
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
    prometheus = yaml.safe_load(monitoring(built.plan)["prometheus.yml"])
    scraped = [t for job in prometheus["scrape_configs"] for c in job["static_configs"]
               for t in c["targets"]]  # fmt: skip
    assert outputs["metrics"] == [f"http://{t}/metrics" for t in scraped]
    code, printed, _ = cli("plan", spec, "--inventory", "--stack", "test")
    assert code == 0
    assert outputs["inventory"] == json.loads(printed)
    # The stack is part of the cluster id: two stacks of one spec are two clusters.
    _code, unstacked, _ = cli("plan", spec, "--inventory")
    stacked_id = outputs["inventory"]["cluster"]["cluster_id"]
    assert stacked_id != json.loads(unstacked)["cluster"]["cluster_id"]
    _, other = run_program(spec, stack="ci-1")
    assert other["outputs"]["inventory"]["cluster"]["cluster_id"] != stacked_id


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
            else:  # on the listener its cluster uses: ApiVersions, or a TLS ClientHello
                port = 9092 if "broker" in node.roles else 9093
                assert script.startswith(f"exec 3<>/dev/tcp/127.0.0.1/{port} ")
                tls = built.plan.security is not None and built.plan.security.tls
                probe = kafka_component.TLS_HELLO if tls else kafka_component.API_VERSIONS
                assert probe in script


@pytest.mark.parametrize("spec", EXAMPLE_SPECS, ids=lambda p: p.stem)
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


def test_the_kafka_provider_gets_every_input_the_plan_decides(example):
    _, recorder, _, built = example
    (provider,) = recorder.of("pulumi:providers:kafka")
    # Unset, the SDK turns TLS on, which planned PLAINTEXT listeners refuse.
    tls = built.plan.security is not None and built.plan.security.tls
    assert provider.inputs["tlsEnabled"] == str(tls).lower()
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
            access = {r.name for r in recorder.of(SCRAM_USER) + recorder.of(ACL)}
            assert access <= needs, "a worker exits when it may not read its topic"
    (provider,) = recorder.of("pulumi:providers:kafka")
    kafka = {n.containers["kafka"] for n in built.plan.nodes if "kafka" in n.containers}
    assert kafka <= set(recorder.depends_on[provider.name])


def leaves(value, path: str = ""):
    """(path, value) of every leaf input, paths spelled as mocks.secret_paths spells them."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, f"{path}.{key}".lstrip("."))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from leaves(item, f"{path}[{i}]")
    else:
        yield path, value


@pytest.mark.parametrize("spec", EXAMPLE_SPECS, ids=lambda p: p.stem)
def test_keys_and_passwords_reach_the_engine_only_as_secrets(spec):
    path = str(spec.relative_to(REPO))
    recorder, result = run_program(path)
    plan, ring = build(path).plan, keyring(path)
    passwords = [ring.password(u.name) for u in plan.security.users]
    containers = {c.name: c for c in recorder.of(CONTAINER)}
    for node in plan.nodes:
        expected = dict(secret_contents(plan, ring)[node.name])
        for f in node.secret_files:
            container = containers[node.containers[f.service]]
            (upload,) = [u for u in container.inputs["uploads"] if u["file"] == f.path]
            assert base64.b64decode(upload["contentBase64"]) == expected[f]
            assert upload["permissions"] == "0600"
            owner = kafka_component.KAFKA_UID if f.service == "kafka" else None
            assert (upload.get("owner"), upload.get("group")) == (owner, owner)
            index = container.inputs["uploads"].index(upload)
            assert f"uploads[{index}].contentBase64" in recorder.secret[container.name]
    (provider,) = recorder.of("pulumi:providers:kafka")
    assert {"saslPassword", "caCert"} <= set(recorder.secret[provider.name])
    for user in recorder.of(SCRAM_USER):
        assert recorder.secret[user.name] == ["password"]
    # Nowhere else: no password, key or keystore in any input the engine keeps in the clear.
    sealed = passwords + [base64.b64encode(ring.store[i]).decode() for i in ring.store]
    for resource in recorder.registered:
        secret = recorder.secret[resource.name]
        for where, value in leaves(resource.inputs):
            if where not in secret:
                assert not any(s in str(value) for s in sealed), (resource.name, where)
    assert result["secret_outputs"] == {
        "bootstrap_servers": False, "metrics": False, "inventory": False,
        "clients": True, "ca_pem": True,
    }  # fmt: skip
    admin = result["outputs"]["clients"]["admin"]
    assert admin["sasl.password"] == ring.password("admin")
    assert admin["ssl.ca.pem"] == result["outputs"]["ca_pem"] == ring.ca_pem().decode()


@pytest.mark.parametrize("spec", EXAMPLE_SPECS, ids=lambda p: p.stem)
def test_users_and_acls_are_the_plans_and_the_brokers_make_the_admin(spec):
    path = str(spec.relative_to(REPO))
    recorder, _ = run_program(path)
    security = build(path).plan.security
    users = {u.inputs["username"]: u.inputs for u in recorder.of(SCRAM_USER)}
    assert set(users) == {u.name for u in security.users} - {"admin"}
    for inputs in users.values():
        assert (inputs["scramMechanism"], inputs["scramIterations"]) == (security.sasl, 8192.0)
    acls = {
        (a.inputs["aclPrincipal"], a.inputs["aclResourceType"], a.inputs["aclResourceName"],
         a.inputs["resourcePatternTypeFilter"], a.inputs["aclOperation"])
        for a in recorder.of(ACL)
    }  # fmt: skip
    assert acls == {
        (f"User:{u.name}", a.resource.capitalize(), a.name, a.pattern.capitalize(),
         a.operation.capitalize())
        for u in security.users
        for a in u.acls
    }  # fmt: skip
    kraft = build(path).plan.cluster.mode == "kraft"
    for container in recorder.of(CONTAINER):
        if labels(container)["kafka-log-cluster.role"] == "kafka":
            script = container.inputs["command"][2]
            # The admin's password is read from its file when the container starts.
            if kraft:  # at format
                admin = "SCRAM-SHA-512=[name=admin,iterations=8192,password=$(sed"
                assert f'--add-scram "{admin}' in script
            else:  # written to ZooKeeper before the broker starts
                admin = "SCRAM-SHA-512=[iterations=8192,password=$(sed"
                assert "kafka-configs.sh --zookeeper legacy-zk-1:2181" in script
                assert f'--add-config "{admin}' in script
                assert script.index("kafka-configs.sh") < script.index("kafka-server-start.sh")


def test_a_keyring_without_a_planned_secret_is_refused_in_one_line():
    path = "specs/secure-kraft.yaml"
    ring = keyring(path)
    items = dict(ring.store)
    kept = [line for line in items["passwords.properties"].decode().splitlines()
            if not line.startswith("siem-reader=")]  # fmt: skip
    items["passwords.properties"] = ("\n".join(kept) + "\n").encode()
    stale = Keyring(items, ring.cluster).dumps()
    with pytest.raises(pulumi.RunError) as refused:
        mocks.run_program(path, secrets={KEYRING: stale})
    assert str(refused.value).startswith(
        "stack config keyring lacks a password for siem-reader for this spec: `make up` fills it"
    )


def test_a_stack_config_keyring_that_is_not_one_is_refused_in_one_line():
    with pytest.raises(pulumi.RunError) as refused:
        mocks.run_program("specs/secure-kraft.yaml", secrets={KEYRING: "hunter2"})
    assert str(refused.value).startswith("stack config keyring is not a keyring")


def test_a_spec_that_opts_out_needs_no_keyring_and_registers_no_secret(tmp_path):
    spec = tmp_path / "plaintext.yaml"
    spec.write_text(yaml.safe_dump(plaintext(REPO / "specs/three-node-kraft.yaml")))
    run = mocks.run_program(str(spec))  # no keyring in its config
    recorder, result = run.recorder, run.result
    assert not any(recorder.secret.values())
    assert set(result["outputs"]) == {"bootstrap_servers", "metrics", "inventory"}
    assert recorder.of(SCRAM_USER) == recorder.of(ACL) == []
    (provider,) = recorder.of("pulumi:providers:kafka")
    assert provider.inputs["tlsEnabled"] == "false" and "saslUsername" not in provider.inputs
    for container in recorder.of(CONTAINER):
        assert all("contentBase64" not in u for u in container.inputs.get("uploads", []))
        if labels(container)["kafka-log-cluster.role"] == "kafka":
            tests = container.inputs["healthcheck"]["tests"][-1]
            assert kafka_component.API_VERSIONS in tests


def test_containers_are_replaced_delete_first_and_dedicated_kafka_nodes_one_by_one():
    recorder, _ = run_program("specs/dedicated-controllers.yaml")
    plan = build("specs/dedicated-controllers.yaml").plan
    for container in recorder.of(CONTAINER):  # a fixed name: the old one must go first
        assert recorder.delete_before_replace[container.name] is True
    for role in ("broker", "controller"):
        chain = [n.containers["kafka"] for n in plan.nodes if n.roles == [role]]
        assert len(chain) >= 2
        for before, after in itertools.pairwise(chain):
            assert before in recorder.depends_on[after], (after, role)
        assert not set(chain[1:]) & set(recorder.depends_on[chain[0]])


def test_a_dedicated_broker_is_created_once_every_voter_answers():
    recorder, _ = run_program("specs/dedicated-controllers.yaml")
    plan = build("specs/dedicated-controllers.yaml").plan
    voters = {n.containers["kafka"] for n in plan.nodes if n.roles == ["controller"]}
    brokers = {n.containers["kafka"] for n in plan.nodes if n.roles == ["broker"]}
    for broker in brokers:
        assert voters <= set(recorder.depends_on[broker]), broker
    for voter in voters:  # and a voter waits for no broker
        assert not set(recorder.depends_on[voter]) & brokers


def test_combined_nodes_are_not_chained_since_one_is_healthy_only_with_a_quorum():
    recorder, _ = run_program("specs/three-node-kraft.yaml")
    kafka = {
        c.name for c in recorder.of(CONTAINER) if labels(c)["kafka-log-cluster.role"] == "kafka"
    }
    for name in kafka:
        assert not (kafka - {name}) & set(recorder.depends_on[name])


def test_declaring_the_quorum_first_leaves_the_images_named_by_the_spec_order(tmp_path):
    """A Kafka image per host, counted in spec order: a broker-first spec keeps its
    image names, which a running stack knows (renamed, `pulumi up` would create new
    image resources on every host and delete the old)."""
    edge = yaml.safe_load((REPO / "specs/multi-host.yaml").read_text())
    a1, a2, b1, _ = edge["nodes"]
    a1["roles"], a2["roles"], b1["roles"] = ["broker"], ["broker"], ["controller"]
    spec = tmp_path / "brokers-first.yaml"
    spec.write_text(yaml.safe_dump(edge))
    recorder, _ = run_program(str(spec))
    images = {r.name: r.provider for r in recorder.of("docker:index/remoteImage:RemoteImage")}
    assert f"::{provider_name(a1['host'])}::" in images["kafka-kafka-image-0"]
    assert f"::{provider_name(b1['host'])}::" in images["kafka-kafka-image-1"]
