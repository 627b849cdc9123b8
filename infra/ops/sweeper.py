"""The teardown sweeper: what a test environment left behind, found by label and removed.

Only resources labelled `kafka-log-cluster.stack` by a stack of this backend
(`kafka-log-cluster.backend`, a digest of its URL) are ever looked at: a shared Docker
host carries other backends' stacks, whose absence from ours says nothing. One of ours
is removed when its stack is gone (not among the live stacks, when those are known) or
expired (`created-at` + `ttl` labels in the past). Containers go first, then networks,
volumes and images, so nothing is in use when its turn comes. Idempotent; with
dry_run, it lists and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import docker
from docker.errors import APIError, NotFound

from infra.model.spec import duration_ms
from infra.provision.components.labels import PREFIX

STACK = f"{PREFIX}.stack"
CREATED_AT = f"{PREFIX}.created-at"
TTL = f"{PREFIX}.ttl"
BACKEND = f"{PREFIX}.backend"
KINDS = ("container", "network", "volume", "image")


class SweepError(RuntimeError):
    """A leftover that Docker refused to remove (in use by something not ours)."""


@dataclass(frozen=True)
class Leftover:
    kind: str
    name: str
    stack: str
    why: str


def expiry(created_at: str | None, ttl: str | None) -> datetime | None:
    """When a stack expires (from its created-at and ttl, as labels or stack config);
    None without both."""
    ttl_ms = duration_ms(ttl)
    if ttl_ms is None or not created_at:
        return None
    try:
        start = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    return start + timedelta(milliseconds=ttl_ms)


def _labels(kind: str, resource) -> dict[str, str]:
    if kind in ("container", "image"):
        return resource.labels or {}
    return resource.attrs.get("Labels") or {}


def _name(kind: str, resource) -> str:
    if kind == "image":
        return (resource.tags or [resource.short_id])[0]
    return resource.name


def _listing(client: docker.DockerClient, kind: str) -> list:
    only_ours = {"label": STACK}
    return {
        "container": lambda: client.containers.list(all=True, filters=only_ours),
        "network": lambda: client.networks.list(filters=only_ours),
        "volume": lambda: client.volumes.list(filters=only_ours),
        "image": lambda: client.images.list(filters=only_ours),
    }[kind]()


def _release_stale_endpoints(network) -> None:
    """Drop endpoints of containers that no longer exist (dockerd can keep them after a
    forced removal); an endpoint of a container that still exists is left alone."""
    network.reload()
    existing = {c.id for c in network.client.containers.list(all=True)}
    for container_id, endpoint in (network.attrs.get("Containers") or {}).items():
        if container_id not in existing:
            # A stale endpoint is only found by its container's name, not by its id.
            network.disconnect(endpoint["Name"], force=True)


def _remove(kind: str, resource) -> None:
    if kind == "container":
        resource.remove(force=True)
    elif kind == "image":
        resource.client.images.remove(resource.id)  # refused while a container uses it
    else:
        if kind == "network":
            _release_stale_endpoints(resource)
        resource.remove()


def stacks_on(client: docker.DockerClient) -> set[str]:
    """Every stack that has a labelled resource on this engine."""
    return {_labels(kind, resource)[STACK] for kind in KINDS for resource in _listing(client, kind)}


def find(
    client: docker.DockerClient, live_stacks: set[str] | None, now: datetime, backend: str
) -> list[Leftover]:
    found = []
    for kind in KINDS:
        for resource in _listing(client, kind):
            labels = _labels(kind, resource)
            stack = labels[STACK]
            if not stack or labels.get(BACKEND) != backend:
                continue  # another backend's, or built outside any stack
            ends = expiry(labels.get(CREATED_AT), labels.get(TTL))
            if live_stacks is not None and stack not in live_stacks:
                why = "its stack is gone"
            elif ends is not None and ends <= now:
                why = f"its stack expired at {ends.isoformat().replace('+00:00', 'Z')}"
            else:
                continue
            found.append(Leftover(kind, _name(kind, resource), stack, why))
    return found


def sweep(
    client: docker.DockerClient,
    live_stacks: set[str] | None,
    backend: str,
    now: datetime | None = None,
    dry_run: bool = False,
) -> tuple[list[Leftover], list[Leftover]]:
    """(what was found, what was removed); with dry_run nothing is removed.

    Raises SweepError naming the first resource Docker refused to remove."""
    now = now or datetime.now(UTC)
    leftovers = find(client, live_stacks, now, backend)
    if dry_run:
        return leftovers, []
    doomed = {(item.kind, item.name): item for item in leftovers}
    removed = []
    for kind in KINDS:
        for resource in _listing(client, kind):
            item = doomed.get((kind, _name(kind, resource)))
            if item is None:
                continue
            try:
                _remove(kind, resource)
            except APIError as err:
                if isinstance(err, NotFound) and _gone(client, kind, resource):
                    continue  # removed meanwhile: that is the goal
                raise SweepError(f"cannot remove {kind} {item.name}: {err.explanation}") from None
            removed.append(item)
    return leftovers, removed


def _gone(client: docker.DockerClient, kind: str, resource) -> bool:
    return (kind, _name(kind, resource)) not in {
        (kind, _name(kind, r)) for r in _listing(client, kind)
    }
