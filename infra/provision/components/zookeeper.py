"""ZooKeeperEnsemble (Kafka 3.9 ZooKeeper mode): a container and a volume per member."""

from __future__ import annotations

import pulumi

from infra.model.topology import CONTAINER_PORTS
from infra.provision.components.service import Target, answers, service_container

# The ZooKeeper release whose client Kafka 3.9 ships with.
ZOOKEEPER_IMAGE = "zookeeper:3.8.4"


def health() -> list[str]:
    """Serving as leader, follower or standalone: a member that is up but has no quorum
    answers `srvr` with "not currently serving requests" instead of its mode."""
    port = CONTAINER_PORTS["zookeeper-client"]
    return answers(port, "srvr", "timeout 3 cat <&3 | grep -q '^Mode: '")


class ZooKeeperEnsemble(pulumi.ComponentResource):
    def __init__(
        self, name: str, target: Target, image: str, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("kafka-log-cluster:index:ZooKeeperEnsemble", name, None, opts)
        members = [n for n in target.plan.nodes if "zookeeper" in n.containers]
        images = target.pulled(self, f"{name}-zookeeper-image", image, members)
        self.containers = [
            service_container(
                self,
                target,
                node,
                "zookeeper",
                image=images[node.host],
                command=[
                    "zkServer.sh",
                    "start-foreground",
                    f"{node.config_dir}/zookeeper.properties",
                ],
                envs=[f"ZK_SERVER_HEAP={node.heap_mb['zookeeper'].value}"],
                health=health(),
            )
            for node in members
        ]
        self.register_outputs({"containers": [c.name for c in self.containers]})
