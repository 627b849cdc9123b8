"""Kafka's own admin tools, from the release's jars, run as the cluster's admin.

confluent-kafka has no DescribeQuorum, no partition reassignment and no way to
unregister a broker; the release's kafka-tools has all three, as the operator knows
them: kafka-metadata-quorum.sh, kafka-reassign-partitions.sh and kafka-cluster.sh.
Each call is one short JVM that connects through the client listeners with a Java
client file (mode 0600) written from the admin's librdkafka settings.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from infra.kafka.releases import Release
from infra.runtime import jvm
from infra.runtime.cluster import ClusterError
from infra.runtime.maven import kafka_libs
from infra.secrets import java_client, write_private_properties

QUORUM = "org.apache.kafka.tools.MetadataQuorumCommand"
REASSIGN = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"
CLUSTER = "org.apache.kafka.tools.ClusterTool"
TOOL_HEAP = ["-Xmx256m"]  # kafka-run-class.sh's default for the tools
TIMEOUT_S = 120


class ToolError(ClusterError):
    """A Kafka tool failed; the message is its last line."""


class KafkaTools:
    def __init__(self, release: Release, admin: dict[str, str], scratch: Path):
        """`admin`: librdkafka settings of the admin user; the Java client file is
        written to `scratch`."""
        self.release, self.libs = release, kafka_libs(release)
        self.bootstrap = admin["bootstrap.servers"]
        scratch.mkdir(parents=True, exist_ok=True)
        config = scratch / "admin.java.properties"
        self.config = write_private_properties(config, java_client(admin))

    def connect(self, cluster_tool: bool = False) -> list[str]:
        """Where and how a tool connects. kafka-cluster.sh names its client file `--config`
        before 4.2 and deprecates that since (KIP-1147), saying so on stdout."""
        old = cluster_tool and tuple(map(int, self.release.version.split(".")[:2])) < (4, 2)
        flag = "--config" if old else "--command-config"
        return ["--bootstrap-server", self.bootstrap, flag, str(self.config)]

    def run(self, main: str, args: list[str]) -> str:
        """The tool's output; ToolError with its last line when it fails."""
        command = jvm.java(self.release, self.libs, main, args, TOOL_HEAP, tool=True)
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise ToolError(f"{main.rsplit('.', 1)[-1]} gave no answer in {TIMEOUT_S} s") from None
        if done.returncode != 0:
            lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
            raise ToolError(f"{main.rsplit('.', 1)[-1]}: {(lines or ['no output'])[-1][:300]}")
        return done.stdout

    def quorum_leader(self) -> int:
        """The node id of the active controller (KRaft)."""
        status = self.run(QUORUM, [*self.connect(), "describe", "--status"])
        found = re.search(r"^LeaderId:\s+(\d+)", status, re.MULTILINE)
        if found is None:
            raise ToolError(f"MetadataQuorumCommand named no leader: {status.strip()[:200]}")
        return int(found.group(1))

    def reassign(self, reassignment: Path, throttle_bytes: int) -> str:
        """Start (or join, `--additional`) moving the partitions in `reassignment`, each
        broker's replication throttled to `throttle_bytes` per second."""
        args = ["--execute", "--additional", "--reassignment-json-file", str(reassignment)]
        return self.run(REASSIGN, [*self.connect(), *args, "--throttle", str(throttle_bytes)])

    def finish_reassignment(self, reassignment: Path) -> str:
        """`--verify`: once every move is done, it also clears the throttles."""
        return self.run(
            REASSIGN, [*self.connect(), "--verify", "--reassignment-json-file", str(reassignment)]
        )

    def unregister(self, node_id: int) -> None:
        """A removed broker out of the cluster's metadata, where KRaft keeps it (fenced)
        until it is unregistered."""
        self.run(CLUSTER, ["unregister", *self.connect(cluster_tool=True), "--id", str(node_id)])
