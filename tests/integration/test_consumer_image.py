"""The consumers image, built from consumers/Dockerfile, runs the deployment for real.

Built on a local Debian base with wheels fetched on the host (PIP_ARGS=--no-index), as
an air-gapped build would be. The container shares the host's network so it reaches
the test broker on 127.0.0.1; `docker stop` must let the workers finish and exit 0.
"""

from __future__ import annotations

import uuid

import docker

from consumers.produce import demo_lines
from scripts.docker_env import base_image, consumers_image
from tests.integration.kafka_helpers import TEST_SESSION_TIMEOUT_MS, read_topic, wait_for
from tests.integration.test_consumer_deployment import produce


def test_the_image_runs_n_workers_in_one_group_and_stops_cleanly(
    docker_engine, bootstrap, new_topic
):
    client = docker.DockerClient(base_url=docker_engine)
    args = {"BASE_IMAGE": base_image(client, "python3"), "PIP_ARGS": "--no-index"}
    image = consumers_image(client, "kafka-log-cluster/consumers:test", args)
    topic, out = new_topic(4), new_topic(4, prefix="out")
    container = client.containers.run(
        image,
        command=[
            "--bootstrap-servers", bootstrap, "--group", f"g-{uuid.uuid4().hex[:6]}",
            "--topic", topic, "--sink", f"kafka:{out}", "--processes", "2",
            "--session-timeout-ms", str(TEST_SESSION_TIMEOUT_MS),
        ],
        network_mode="host",
        detach=True,
        labels={"kafka-log-cluster.test": "consumer-image"},
    )  # fmt: skip
    try:
        workers = wait_for(
            lambda: [
                p
                for p in container.top(ps_args="-eo pid,ppid,args")["Processes"]
                if "consumers worker" in p[-1]
            ],
            60,
            "two workers in the container",
        )
        assert len(workers) == 2
        (parent,) = {ppid for _, ppid, _ in workers}  # one supervisor for both
        top = container.top(ps_args="-eo pid,ppid,args")["Processes"]
        processes = {pid: args for pid, _, args in top}
        assert "-m consumers" in processes[parent] and "worker" not in processes[parent]
        produce(bootstrap, topic, demo_lines(2000))
        parsed = wait_for(
            lambda: len(r := read_topic(bootstrap, out, quiet_s=1)) >= 2000 and r,
            90,
            "2000 parsed records",
        )
        assert {b'"format":"rfc5424"' in value for value, _ in parsed} == {True}
        container.stop(timeout=60)
        assert container.wait(timeout=60)["StatusCode"] == 0, container.logs().decode()[-2000:]
        assert b"stopped\n" in container.logs()
    finally:
        container.remove(force=True)
