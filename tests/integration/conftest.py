"""A broker for the integration tests: KAFKA_BOOTSTRAP_SERVERS if set, else a local Tansu."""

from __future__ import annotations

import os
import uuid

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from infra.local_broker import LocalBroker


@pytest.fixture(scope="session")
def bootstrap():
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if given:
        yield given
        return
    with LocalBroker() as started:
        yield started


@pytest.fixture
def new_topic(bootstrap):
    """new_topic(partitions) -> the name of a fresh topic (unique per call)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})

    def create(partitions: int, prefix: str = "t") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        for future in admin.create_topics([NewTopic(name, partitions, 1)]).values():
            future.result(timeout=10)
        return name

    return create


@pytest.fixture(scope="session")
def docker_engine():
    """A Docker engine of the tests' own: DOCKER_HOST's if it answers, else a private
    dockerd (own socket, data and exec roots) started here and stopped after."""
    import shutil
    import subprocess
    import tempfile
    import time
    from pathlib import Path

    import docker

    given = os.environ.get("DOCKER_HOST")
    if given:
        docker.DockerClient(base_url=given).ping()
        yield given
        return
    if shutil.which("dockerd") is None:
        pytest.fail("no dockerd: `make test` installs docker.io (scripts/test-deps.sh)")
    root = Path(tempfile.mkdtemp(prefix="klc-docker-", dir="/tmp"))  # short: a socket path
    socket = f"unix://{root}/docker.sock"
    log = (root / "dockerd.log").open("w")
    engine = subprocess.Popen(
        [
            "dockerd",
            f"--host={socket}",
            f"--data-root={root}/data",
            f"--exec-root={root}/exec",
            f"--pidfile={root}/docker.pid",
            "--iptables=false",
            "--bridge=none",
        ],
        stdout=log,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                docker.DockerClient(base_url=socket).ping()
                break
            except docker.errors.DockerException:
                if engine.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"dockerd did not start; see {root}/dockerd.log")
                time.sleep(0.3)
        yield socket
    finally:
        engine.terminate()
        try:
            engine.wait(timeout=30)
        except subprocess.TimeoutExpired:
            engine.kill()
            engine.wait()
        # dockerd leaves its network namespace mounted under the exec root.
        mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
        for mount in sorted((m for m in mounts if m.startswith(str(root))), reverse=True):
            subprocess.run(["umount", mount], check=False)
        shutil.rmtree(root, ignore_errors=True)
