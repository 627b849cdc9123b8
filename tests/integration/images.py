"""Images for the Docker tests, built here: no registry can be reached from these machines.

The Python base is a Debian root filesystem made once with debootstrap and cached
(~/.cache/kafka-log-cluster/), then `docker import`ed. The consumers image is built
from consumers/Dockerfile on that base, from wheels fetched on the host.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import docker
import pytest

from tests.conftest import REPO

MIRROR = "http://deb.debian.org/debian"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kafka-log-cluster"
BASE_PACKAGES = "python3,python3-venv,procps"  # procps: ps, for the deployment checks


def python_base_tar() -> Path:
    tar = CACHE / "bookworm-python3.tar"
    if tar.exists():
        return tar
    if shutil.which("debootstrap") is None:
        pytest.fail("no debootstrap: `make test` installs it (scripts/test-deps.sh)")
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="klc-rootfs-") as root:
        subprocess.run(
            ["debootstrap", "--variant=minbase", "--no-merged-usr", f"--include={BASE_PACKAGES}",
             "bookworm", root, MIRROR],
            check=True, capture_output=True,
        )  # fmt: skip
        partial = tar.with_suffix(".partial")
        subprocess.run(["tar", "-C", root, "-cf", str(partial), "."], check=True)
        partial.replace(tar)
    return tar


def python_base(client: docker.DockerClient) -> str:
    tag = "klc-base:bookworm-python3"
    if not client.images.list(name=tag):
        client.api.import_image(
            src=str(python_base_tar()), repository="klc-base", tag="bookworm-python3"
        )
    return tag


def fetch_wheels() -> None:
    """The consumers' wheels, downloaded on the host into consumers/wheelhouse/."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
         "-r", "consumers/requirements.txt", "-d", "consumers/wheelhouse"],
        cwd=REPO, check=True,
    )  # fmt: skip


def consumers_image(client: docker.DockerClient) -> str:
    base = python_base(client)
    fetch_wheels()
    tag = "klc-consumers:test"
    client.images.build(
        path=str(REPO),
        dockerfile="consumers/Dockerfile",
        buildargs={"BASE_IMAGE": base, "PIP_ARGS": "--no-index"},
        tag=tag,
        rm=True,
    )
    return tag
