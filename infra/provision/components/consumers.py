"""ConsumerDeployment: the consumers image, and a supervisor container per group share."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pulumi
import pulumi_docker as docker

from infra.provision.components.service import Target, service_container

DEFAULT_BASE_IMAGE = "python:3.11-slim"
REPO = Path(__file__).resolve().parents[3]
# What .dockerignore lets into the build: a change to any of it is a new image tag,
# so `pulumi up` replaces the consumer containers instead of keeping the old build.
CONTEXT = ("consumers",)


def context_digest() -> str:
    digest = hashlib.sha256()
    for entry in CONTEXT:
        path = REPO / entry
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for f in files:
            relative = f.relative_to(REPO)
            if f.is_file() and "__pycache__" not in f.parts and "wheelhouse" not in f.parts:
                digest.update(str(relative).encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()[:16]


class ConsumerDeployment(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        target: Target,
        base_image: str,
        pip_args: str,
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("kafka-log-cluster:index:ConsumerDeployment", name, None, opts)
        members = [n for n in target.plan.nodes if n.consumers]
        # Built on each Docker host that runs consumers; paths are relative to Pulumi.yaml.
        # A tag of the stack's own, labelled like its containers (build args: docker.Image
        # takes no labels), so the sweeper removes it with the stack and no other's.
        labels = {
            f"LABEL_{k.upper().replace('-', '_')}": v for k, v in target.labels.values().items()
        }
        images = target.per_host(
            members,
            lambda i, host: docker.Image(
                f"{name}-image-{i}",
                image_name=f"kafka-log-cluster/consumers:{target.labels.stack}-{context_digest()}",
                build=docker.DockerBuildArgs(
                    context=".",
                    dockerfile="consumers/Dockerfile",
                    args={"BASE_IMAGE": base_image, "PIP_ARGS": pip_args, **labels},
                    builder_version=docker.BuilderVersion.BUILDER_V1,
                ),
                skip_push=True,
                opts=pulumi.ResourceOptions(parent=self, provider=host.provider),
            ),
        )
        self.containers = [
            service_container(
                self,
                target,
                node,
                f"consumer:{share.group}",
                image=images[node.host].image_name,
                command=[
                    "--config",
                    f"{node.config_dir}/consumer-{share.group}.properties",
                    "--status-file",
                    share.status_file,
                ],
                depends_on=depends_on,
            )
            for node in members
            for share in node.consumers
        ]
        self.register_outputs({"containers": [c.name for c in self.containers]})
