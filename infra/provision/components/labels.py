"""The labels on every Docker resource: how the teardown sweeper finds what is ours.

`created-at`, `ttl` and `backend` come from stack config (set by the CI pipeline and
`make up`), never from the clock or the environment, so two runs of the program register
identical inputs; absent, they are not set, and the sweeper never takes such a resource.
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
    backend: str | None = None  # which Pulumi backend's stack this is (infra/ops/stacks.py)

    def values(self) -> dict[str, str]:
        """The stack's own labels, unprefixed: what the consumers image carries."""
        return {k.removeprefix(f"{PREFIX}."): v for k, v in self.of().items()}

    def of(self, node: str | None = None, role: str | None = None) -> dict[str, str]:
        values = {
            "stack": self.stack,
            "cluster": self.cluster,
            "node": node,
            "role": role,
            "managed-by": "pulumi",
            "backend": self.backend,
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
