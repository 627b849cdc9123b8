"""The teardown sweeper against a real Docker engine.

Containers, volumes, networks and images are made for a live stack, an expired stack
and a gone stack (labelled exactly as the Pulumi program labels them), for a stack of
another Pulumi backend that is both expired and unknown to ours, plus unlabelled ones.
`python -m infra teardown --expired` (no Pulumi CLI here, so no stack is known) must
remove exactly the expired stack's resources; with the live stacks known, the gone
stack's go too; the other backend's are never touched. A second run removes nothing;
--dry-run changes nothing.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

import docker
import pytest

from infra.ops.stacks import backend_id
from infra.ops.sweeper import sweep
from infra.provision.components.labels import Labels
from tests.conftest import REPO

OURS = backend_id(f"file://{REPO}/.pulumi")  # teardown's backend with PULUMI_BACKEND_URL unset
BUSYBOX = next(p for p in (Path("/bin/busybox"), Path("/usr/bin/busybox")) if p.exists())


def busybox_image(client: docker.DockerClient, tag: str, labels: dict[str, str]) -> str:
    """A tiny image from the static busybox, made with `docker import` (nothing pulled)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(BUSYBOX, arcname="bin/busybox")
        for tool in ("sh", "sleep"):
            link = tarfile.TarInfo(f"bin/{tool}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    changes = [f"LABEL {k}={v}" for k, v in labels.items()] + ['CMD ["/bin/sleep", "3600"]']
    client.api.import_image_from_data(buffer.getvalue(), repository=tag, tag="1", changes=changes)
    return f"{tag}:1"


@pytest.fixture
def world(docker_engine):
    client = docker.DockerClient(base_url=docker_engine)
    run = uuid.uuid4().hex[:6]
    stacks = {
        "live": Labels(
            stack=f"live-{run}",
            cluster="sweep",
            created_at=datetime.now(UTC).isoformat(),
            ttl="2h",
            backend=OURS,
        ),
        "expired": Labels(
            stack=f"old-{run}",
            cluster="sweep",
            created_at="2026-01-01T00:00:00Z",
            ttl="1h",
            backend=OURS,
        ),
        "gone": Labels(stack=f"gone-{run}", cluster="sweep", backend=OURS),
        # A dev stack of another backend on the same engine: its ttl has passed and ours
        # has never heard of it, and it is still not ours to remove.
        "other": Labels(
            stack=f"dev-{run}",
            cluster="sweep",
            created_at="2026-01-01T00:00:00Z",
            ttl="1h",
            backend=backend_id("s3://another-teams-state"),
        ),
    }
    base = busybox_image(client, f"klc-unlabelled-{run}", {})
    made: dict[str, dict[str, list[str]]] = {}
    for key, labels in stacks.items():
        image = busybox_image(client, f"klc-{key}-{run}", labels.of())
        network = client.networks.create(f"{key}-{run}-net", labels=labels.of())
        volume = client.volumes.create(f"{key}-{run}-data", labels=labels.of("n1", "kafka"))
        container = client.containers.create(
            image if key == "expired" else base,
            name=f"{key}-{run}-n1",
            labels=labels.of("n1", "kafka"),
            volumes={volume.name: {"bind": "/data", "mode": "rw"}},
        )
        network.connect(container)
        container.start()
        made[key] = {
            "container": [container.name],
            "network": [network.name],
            "volume": [volume.name],
            "image": [image],
        }
    strangers = {
        "container": [client.containers.create(base, name=f"stranger-{run}").name],
        "network": [client.networks.create(f"stranger-{run}-net").name],
        "volume": [client.volumes.create(f"stranger-{run}-data").name],
        "image": [base],
    }
    yield client, docker_engine, made, strangers, stacks
    for container in client.containers.list(all=True):
        if run in container.name:
            container.remove(force=True)
    for network in client.networks.list():
        if run in network.name:
            network.reload()  # dockerd can keep endpoints of removed containers
            for endpoint in (network.attrs.get("Containers") or {}).values():
                network.disconnect(endpoint["Name"], force=True)
            network.remove()
    for volume in client.volumes.list():
        if run in volume.name:
            volume.remove(force=True)
    for image in client.images.list():
        if any(run in tag for tag in image.tags):
            client.images.remove(image.id, force=True)


def present(client: docker.DockerClient) -> set[tuple[str, str]]:
    found = {("container", c.name) for c in client.containers.list(all=True)}
    found |= {("network", n.name) for n in client.networks.list()}
    found |= {("volume", v.name) for v in client.volumes.list()}
    found |= {("image", tag) for i in client.images.list() for tag in i.tags}
    return found


def owned(made: dict) -> set[tuple[str, str]]:
    return {(kind, name) for kind, names in made.items() for name in names}


def teardown_cli(host: str, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "infra", "teardown", "--expired", "--host", host, *flags],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},  # no Pulumi CLI, whatever this machine has
    )


def test_teardown_removes_exactly_the_expired_stack(world):
    client, host, made, strangers, _ = world
    before = present(client)
    everything = (
        owned(made["live"]) | owned(made["expired"]) | owned(made["gone"]) | owned(strangers)
    ) | owned(made["other"])
    assert everything <= before

    dry = teardown_cli(host, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert present(client) == before, "--dry-run changed something"
    assert "would remove 1 container, 1 network, 1 volume, 1 image" in dry.stdout
    assert "would remove container expired-" in dry.stdout

    first = teardown_cli(host)
    assert first.returncode == 0, first.stdout + first.stderr
    after = present(client)
    assert owned(made["expired"]).isdisjoint(after), "the expired stack's resources remain"
    assert (owned(made["live"]) | owned(made["gone"]) | owned(strangers)) <= after
    assert owned(made["other"]) <= after, "another backend's stack was swept"
    assert "removed 1 container, 1 network, 1 volume, 1 image" in first.stdout
    assert "no stack is known; sweeping only what its labels say expired" in first.stdout

    second = teardown_cli(host)
    assert second.returncode == 0
    assert "removed 0 containers, 0 networks, 0 volumes, 0 images" in second.stdout
    assert present(client) == after


def test_with_the_live_stacks_known_a_gone_stacks_resources_go_too(world):
    client, _, made, strangers, stacks = world
    live = {stacks["live"].stack}
    leftovers, removed = sweep(client, live_stacks=live, backend=OURS)
    expected = {(kind, stacks[key].stack) for key in ("expired", "gone") for kind in made[key]}
    assert {(item.kind, item.stack) for item in leftovers} == expected
    assert {(item.kind, item.stack) for item in removed} == expected
    after = present(client)
    assert (owned(made["expired"]) | owned(made["gone"])).isdisjoint(after)
    assert (owned(made["live"]) | owned(strangers) | owned(made["other"])) <= after
