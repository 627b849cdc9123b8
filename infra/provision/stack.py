"""The Pulumi program: the spec from stack config -> plan -> rendered files -> resources.

Run by `pulumi up` through infra/provision/program/ (see Pulumi.yaml). It decides nothing: the
plan holds every number, the components declare Docker resources from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_docker as docker

from infra.build import build
from infra.model.plan import Plan
from infra.model.topology import Placement
from infra.problems import InputError
from infra.provision.components.consumers import DEFAULT_BASE_IMAGE, ConsumerDeployment
from infra.provision.components.kafka import KafkaCluster, kafka_image
from infra.provision.components.labels import Labels
from infra.provision.components.secrets import KEYRING, ClusterSecrets
from infra.provision.components.service import DockerHost, Target
from infra.provision.components.zookeeper import ZOOKEEPER_IMAGE, ZooKeeperEnsemble
from infra.render.inventory import build_inventory


@dataclass
class Provisioned:
    plan: Plan
    hosts: dict[str, DockerHost]
    kafka: KafkaCluster
    zookeeper: ZooKeeperEnsemble | None
    consumers: ConsumerDeployment
    outputs: dict[str, Any]


def provider_name(host: str) -> str:
    return "docker-" + re.sub(r"[^a-z0-9]+", "-", host.lower()).strip("-")


def docker_hosts(plan: Plan, labels: Labels) -> dict[str, DockerHost]:
    """One provider per Docker host of the spec, and the cluster's network on each."""
    hosts = {}
    for host in dict.fromkeys(node.host for node in plan.nodes):
        provider = docker.Provider(provider_name(host), host=None if host == "local" else host)
        network = docker.Network(
            f"{plan.cluster.name}-{provider_name(host)}",
            name=plan.cluster.name,
            labels=labels.network(),
            opts=pulumi.ResourceOptions(provider=provider),
        )
        hosts[host] = DockerHost(provider, network)
    return hosts


def provision() -> Provisioned:
    config = pulumi.Config()
    spec_path = config.require("spec")
    try:
        # The stack is part of the cluster id: two stacks of one spec are two clusters.
        built = build(spec_path, placement=Placement(stack=pulumi.get_stack()))
    except InputError as err:
        # The same lines as `python -m infra check`, before any resource is registered.
        raise pulumi.RunError("\n".join(err.lines())) from None
    plan, rendered = built.plan, built.rendered
    secrets = None
    if plan.security is not None:
        secrets = ClusterSecrets(plan, config.require_secret(KEYRING))
    for line in built.warnings:
        pulumi.log.warn(line)
    labels = Labels(
        stack=pulumi.get_stack(),
        cluster=plan.cluster.name,
        created_at=config.get("created-at"),
        ttl=config.get("ttl"),
        backend=config.get("backend"),
    )
    hosts = docker_hosts(plan, labels)
    target = Target(plan, rendered, secrets, hosts, labels)
    zookeeper = None
    if plan.cluster.mode == "zookeeper":
        image = config.get("zookeeper-image") or ZOOKEEPER_IMAGE
        zookeeper = ZooKeeperEnsemble("zookeeper", target, image)
    kafka = KafkaCluster(
        "kafka",
        target,
        config.get("kafka-image") or kafka_image(plan),
        depends_on=zookeeper.containers if zookeeper else [],
    )
    consumers = ConsumerDeployment(
        "consumers",
        target,
        config.get("consumer-base-image") or DEFAULT_BASE_IMAGE,
        config.get("consumer-pip-args") or "",
        # A worker exits when its topic is missing, or when it may not read it.
        depends_on=kafka.topics + kafka.access,
    )
    inventory = build_inventory(plan, rendered)
    outputs: dict[str, Any] = {
        "bootstrap_servers": plan.cluster.bootstrap_servers,
        # `pulumi up` ends by printing these: where each endpoint's metrics are.
        "metrics": [f"http://{t['address']}/metrics" for t in inventory["metrics"]],
        "inventory": inventory,
    }
    if secrets is not None:
        outputs |= {"clients": secrets.clients, "ca_pem": secrets.ca_pem}  # secret outputs
    for key, value in outputs.items():
        pulumi.export(key, value)
    return Provisioned(plan, hosts, kafka, zookeeper, consumers, outputs)
