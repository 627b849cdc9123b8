"""Reading topics back and running a consumer deployment, for the integration tests.

Tansu's high watermarks can trail its log, so records are counted by reading them
until the topic has been quiet for a while, never from offsets.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from tests.conftest import REPO

# Tansu settles a group after half the session timeout: 6 s (Kafka's minimum) keeps it ~3 s.
TEST_SESSION_TIMEOUT_MS = 6000


def read_topic(bootstrap: str, topic: str, quiet_s: float = 3.0, timeout_s: float = 120.0):
    """Every record of `topic` (value, headers), read until nothing came for `quiet_s`."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "log_level": 0,
        }
    )
    metadata = consumer.list_topics(topic, timeout=10)
    consumer.assign([TopicPartition(topic, p, 0) for p in metadata.topics[topic].partitions])
    records, last, start = [], time.monotonic(), time.monotonic()
    while time.monotonic() - last < quiet_s and time.monotonic() - start < timeout_s:
        batch = consumer.consume(10_000, timeout=0.5)
        for message in batch:
            if message.error() is None:
                records.append((message.value(), message.headers()))
        if batch:
            last = time.monotonic()
    consumer.close()
    return records


def wait_for(predicate, timeout_s: float, what, interval: float = 0.2):
    """predicate()'s first truthy value; `what` (text, or a callable for the state at the
    deadline) names what timed out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout_s:g} s waiting for {what() if callable(what) else what}"
    )


class Deployment:
    """`python -m consumers ...` as a child process, with its status file."""

    def __init__(self, tmp_path: Path, *args: str):
        self.status_file = tmp_path / f"status-{uuid.uuid4().hex[:6]}.json"
        self.stderr_path = tmp_path / "supervisor.err"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "consumers",
                *args,
                "--session-timeout-ms",
                str(TEST_SESSION_TIMEOUT_MS),
                "--status-file",
                str(self.status_file),
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=self.stderr_path.open("w"),
        )

    def status(self) -> dict | None:
        try:
            return json.loads(self.status_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def owned(self) -> list[str]:
        status = self.status() or {"workers": []}
        return [p for w in status["workers"] for p in w["partitions"]]

    def children(self) -> list[int]:
        out = subprocess.run(
            ["ps", "--ppid", str(self.process.pid), "-o", "pid="], capture_output=True, text=True
        ).stdout
        return [int(pid) for pid in out.split()]

    def stop(self, timeout: float = 60) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            for child in self.children():
                os.kill(child, signal.SIGKILL)
            self.process.kill()
            self.process.wait()

    @property
    def log(self) -> str:
        return self.stderr_path.read_text()
