"""A broker for the integration tests: KAFKA_BOOTSTRAP_SERVERS if set, else a real
single-node Kafka on this machine (tests/integration/specs/test-broker.yaml)."""

from __future__ import annotations

import os
import uuid

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from scripts.docker_env import engine
from tests.conftest import REPO
from tests.integration.kafka_helpers import local_cluster

TEST_BROKER = REPO / "tests/integration/specs/test-broker.yaml"


@pytest.fixture(scope="session")
def bootstrap(tmp_path_factory):
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if given:
        yield given
        return
    with local_cluster(TEST_BROKER, tmp_path_factory.mktemp("test-broker")) as (cluster, _):
        yield cluster.bootstrap


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
    dockerd started here and stopped after (scripts/docker_env.py)."""
    with engine() as url:
        yield url
