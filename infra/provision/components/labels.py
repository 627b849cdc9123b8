"""The labels on every Docker resource: how the teardown sweeper finds what is ours.

`created-at` and `ttl` come from stack config (set by the CI pipeline), never from the
clock, so two runs of the program register identical inputs; absent, they are not set.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi_docker as docker

PREFIX = "kafka-log-cluster"


@dataclass(frozen=True)
class Labels:
    stack: str
    cluster: str
    created_at: str | None = None
    ttl: str | None = None

    def of(self, node: str | None = None, role: str | None = None) -> dict[str, str]:
        values = {
            "stack": self.stack,
            "cluster": self.cluster,
            "node": node,
            "role": role,
            "managed-by": "pulumi",
            "created-at": self.created_at,
            "ttl": self.ttl,
        }
        return {f"{PREFIX}.{k}": v for k, v in values.items() if v is not None}

    def container(self, node: str, role: str) -> list[docker.ContainerLabelArgs]:
        return [docker.ContainerLabelArgs(label=k, value=v) for k, v in self.of(node, role).items()]

    def volume(self, node: str, role: str) -> list[docker.VolumeLabelArgs]:
        return [docker.VolumeLabelArgs(label=k, value=v) for k, v in self.of(node, role).items()]

    def network(self) -> list[docker.NetworkLabelArgs]:
        return [docker.NetworkLabelArgs(label=k, value=v) for k, v in self.of().items()]
