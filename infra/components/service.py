"""One node service as a Docker container: the shape Kafka, ZooKeeper and consumer
containers share (rendered files uploaded, data volume, planned ports, labels)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from infra.components.labels import Labels
from infra.plan import DATA_DIRS, NodePlan
from infra.render import RenderedFile

HEALTH_TIMEOUT_S = 180  # a broker formats its storage and joins the quorum first


@dataclass(frozen=True)
class DockerHost:
    """A Docker engine of the spec, and the cluster's network on it."""

    provider: docker.Provider
    network: docker.Network


def ports_of(node: NodePlan, role: str) -> list[docker.ContainerPortArgs]:
    """The node's published ports that belong to `role`: ZooKeeper's are named so, Kafka
    owns the others, and consumers publish none."""
    if role not in ("kafka", "zookeeper"):
        return []
    zookeeper = role == "zookeeper"
    return [
        docker.ContainerPortArgs(internal=p.container, external=p.published, ip=node.publish_ip)
        for p in node.ports
        if p.published is not None and p.name.startswith("zookeeper-") == zookeeper
    ]


def service_container(
    parent: pulumi.Resource,
    host: DockerHost,
    node: NodePlan,
    service: str,
    *,
    image: pulumi.Input[str],
    files: list[RenderedFile],
    labels: Labels,
    command: list[str],
    envs: list[str] | None = None,
    health_port: int | None = None,
    depends_on: list[pulumi.Resource] | None = None,
) -> docker.Container:
    name = node.containers[service]
    role = service.split(":", 1)[0]
    options = pulumi.ResourceOptions(parent=parent, provider=host.provider, depends_on=depends_on)
    volumes = []
    if role in DATA_DIRS:
        volume = docker.Volume(
            f"{name}-data", name=f"{name}-data", labels=labels.volume(node.name, role), opts=options
        )
        volumes.append(
            docker.ContainerVolumeArgs(volume_name=volume.name, container_path=DATA_DIRS[role])
        )
    health = None
    if health_port is not None:
        health = docker.ContainerHealthcheckArgs(
            tests=["CMD", "bash", "-c", f"</dev/tcp/127.0.0.1/{health_port}"],
            interval="5s",
            timeout="3s",
            retries=3,
            start_period="20s",
        )
    return docker.Container(
        name,
        name=name,
        hostname=name,
        image=image,
        command=command,
        envs=envs,
        uploads=[
            docker.ContainerUploadArgs(file=f.container_path, content=f.content)
            for f in files
            if f.service == service
        ],
        volumes=volumes,
        ports=ports_of(node, role),
        networks_advanced=[
            docker.ContainerNetworksAdvancedArgs(name=host.network.name, aliases=[name])
        ],
        labels=labels.container(node.name, role),
        healthcheck=health,
        wait=health is not None,
        wait_timeout=HEALTH_TIMEOUT_S,
        restart="unless-stopped",
        stop_timeout=60,  # consumers finish their batch and commit; brokers shut down cleanly
        opts=options,
    )
