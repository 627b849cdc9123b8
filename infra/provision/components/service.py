"""One node service as a Docker container: the shape Kafka, ZooKeeper and consumer
containers share (rendered files uploaded, data volume, planned ports, labels)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import pulumi
import pulumi_docker as docker

from infra.kafka.releases import exporter_jar
from infra.model.metrics import AGENT_IN_CONTAINER, METRICS_PORT
from infra.model.plan import NodePlan, Plan
from infra.model.topology import CONSUMER_METRICS_PORT
from infra.problems import InputError, Problem
from infra.provision.components.labels import Labels
from infra.provision.components.secrets import ClusterSecrets
from infra.render.files import Rendered, metrics_agent

T = TypeVar("T")

HEALTH_TIMEOUT_S = 180  # a broker formats its storage and joins the quorum first
# The variable each image's start script adds to its JVM's flags (as the official ones do).
JVM_FLAGS_ENV = {"kafka": "KAFKA_OPTS", "zookeeper": "SERVER_JVMFLAGS"}


def answers(port: int, request: str, reply: str) -> list[str]:
    """A healthcheck that sends `request` (printf escapes) to 127.0.0.1:`port` in the
    container; healthy when `reply` (a shell test reading the answer on fd 3) holds
    within 3 s. Only bash and coreutils: it runs in the official images as in ours."""
    script = f"exec 3<>/dev/tcp/127.0.0.1/{port} && printf '{request}' >&3 && {reply}"
    return ["CMD", "bash", "-c", script]


@dataclass(frozen=True)
class DockerHost:
    """A Docker engine of the spec, and the cluster's network on it."""

    provider: docker.Provider
    network: docker.Network


@dataclass(frozen=True)
class Target:
    """What every component declares from: the plan, its files, its secrets (a secured
    plan's), the hosts, the labels."""

    plan: Plan
    rendered: Rendered
    secrets: ClusterSecrets | None
    hosts: dict[str, DockerHost]
    labels: Labels

    def per_host(self, nodes: list[NodePlan], make: Callable[[int, DockerHost], T]) -> dict[str, T]:
        """One resource per distinct Docker host of `nodes` (an image must be on each)."""
        hosts = dict.fromkeys(node.host for node in nodes)
        return {host: make(i, self.hosts[host]) for i, host in enumerate(hosts)}

    def pulled(self, parent: pulumi.Resource, name: str, image: str, nodes: list[NodePlan]):
        """`image` pulled on each host of `nodes`: host -> the image id to run."""
        return {
            host: remote.image_id
            for host, remote in self.per_host(
                nodes,
                lambda i, host: docker.RemoteImage(
                    f"{name}-{i}",
                    name=image,
                    keep_locally=True,
                    opts=pulumi.ResourceOptions(parent=parent, provider=host.provider),
                ),
            ).items()
        }


def ports_of(node: NodePlan, service: str) -> list[docker.ContainerPortArgs]:
    """The node's published ports that belong to `service`; a consumer group's: its metrics."""
    if service.startswith("consumer:"):
        share = next(s for s in node.consumers if f"consumer:{s.group}" == service)
        published = int(share.metrics_target.rsplit(":", 1)[1])
        return [
            docker.ContainerPortArgs(
                internal=CONSUMER_METRICS_PORT, external=published, ip=node.publish_ip
            )
        ]
    return [
        docker.ContainerPortArgs(internal=p.container, external=p.published, ip=node.publish_ip)
        for p in node.ports
        if p.published is not None and p.service == service
    ]


def jvm_agent(node: NodePlan, service: str) -> tuple[docker.ContainerUploadArgs, str]:
    """The JMX exporter agent's jar, uploaded from this machine's cache, and the variable
    that starts it in the service's JVM on its planned metrics port."""
    jar = exporter_jar()
    if not jar.exists():
        found = Problem("jmx-exporter", f"not fetched into {jar} yet: run make kafka")
        raise InputError("the Pulumi program", [found])
    flag = metrics_agent(node, service, AGENT_IN_CONTAINER, "0.0.0.0")
    upload = docker.ContainerUploadArgs(file=AGENT_IN_CONTAINER, source=str(jar))
    return upload, f"{JVM_FLAGS_ENV[service]}={flag}"


def service_container(
    parent: pulumi.Resource,
    target: Target,
    node: NodePlan,
    service: str,
    *,
    image: pulumi.Input[str],
    command: list[str],
    envs: list[str] | None = None,
    health: list[str] | None = None,
    depends_on: list[pulumi.Resource] | None = None,
    runs_as: str | None = None,
) -> docker.Container:
    """`runs_as`: the uid the image runs its service as, which owns its secret files."""
    name = node.containers[service]
    role = service.split(":", 1)[0]
    host, labels = target.hosts[node.host], target.labels
    options = pulumi.ResourceOptions(parent=parent, provider=host.provider, depends_on=depends_on)
    volumes = []
    if service in node.data_dirs:  # a JVM's data, a file sink's output: kept on replacement
        volume = docker.Volume(
            f"{name}-data", name=f"{name}-data", labels=labels.volume(node.name, role), opts=options
        )
        path = node.data_dirs[service]
        volumes.append(docker.ContainerVolumeArgs(volume_name=volume.name, container_path=path))
    uploads = [
        docker.ContainerUploadArgs(file=f.path, content=f.content)
        for f in target.rendered[node.name]
        if f.service == service
    ] + (target.secrets.uploads(node, service, runs_as) if target.secrets else [])
    if service in METRICS_PORT:
        agent, flags = jvm_agent(node, service)
        uploads.append(agent)
        envs = [*(envs or []), flags]
    healthcheck = None
    if health is not None:
        healthcheck = docker.ContainerHealthcheckArgs(
            tests=health, interval="5s", timeout="5s", retries=3, start_period="20s"
        )
    return docker.Container(
        name,
        name=name,
        hostname=name,
        image=image,
        command=command,
        envs=envs,
        uploads=uploads,
        volumes=volumes,
        ports=ports_of(node, service),
        networks_advanced=[
            docker.ContainerNetworksAdvancedArgs(name=host.network.name, aliases=[name])
        ],
        labels=labels.container(node.name, role),
        healthcheck=healthcheck,
        wait=healthcheck is not None,
        wait_timeout=HEALTH_TIMEOUT_S,
        # The node's share for this container (the plan splits the spec's memory and cores).
        memory=int(node.limits[service].memory_mb.value),
        memory_swap=int(node.limits[service].memory_mb.value),  # no swap beyond the limit
        cpu_shares=int(node.limits[service].cpu_shares.value),
        restart="unless-stopped",
        stop_timeout=60,  # consumers finish their batch and commit; brokers shut down cleanly
        # A container has a fixed name, so its replacement can only start once it is gone
        # (Docker refuses a second container of that name); its data volume stays.
        opts=pulumi.ResourceOptions.merge(
            options, pulumi.ResourceOptions(delete_before_replace=True)
        ),
    )
