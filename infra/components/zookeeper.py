"""ZooKeeperEnsemble (Kafka 3.9 ZooKeeper mode): a container and a volume per member."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker

from infra.components.labels import Labels
from infra.components.service import DockerHost, service_container
from infra.plan import CONFIG_DIR, CONTAINER_PORTS, Plan
from infra.render import Rendered

# The ZooKeeper release whose client Kafka 3.9 ships with.
ZOOKEEPER_IMAGE = "zookeeper:3.8.4"


class ZooKeeperEnsemble(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        plan: Plan,
        rendered: Rendered,
        hosts: dict[str, DockerHost],
        labels: Labels,
        image: str,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("kafka-log-cluster:index:ZooKeeperEnsemble", name, None, opts)
        members = [n for n in plan.nodes if "zookeeper" in n.containers]
        images = {
            host: docker.RemoteImage(
                f"{name}-zookeeper-image-{i}",
                name=image,
                keep_locally=True,
                opts=pulumi.ResourceOptions(parent=self, provider=hosts[host].provider),
            )
            for i, host in enumerate(dict.fromkeys(n.host for n in members))
        }
        self.containers = [
            service_container(
                self,
                hosts[node.host],
                node,
                "zookeeper",
                image=images[node.host].image_id,
                files=rendered[node.name],
                labels=labels,
                command=["zkServer.sh", "start-foreground", f"{CONFIG_DIR}/zookeeper.properties"],
                envs=[f"ZK_SERVER_HEAP={node.heap_mb['zookeeper'].value}"],
                health_port=CONTAINER_PORTS["zookeeper-client"],
            )
            for node in members
        ]
        self.register_outputs({"containers": [c.name for c in self.containers]})
