"""The java command lines of Kafka and ZooKeeper, as Kafka's own start scripts build them.

One place for the flags, read by the local runtime and by the images' start scripts
(scripts/images/), so a broker runs the same way on this machine and in a container.
"""

from __future__ import annotations

from pathlib import Path

from infra.kafka.releases import Release

LOGGING = Path(__file__).parent / "logging"
# kafka-run-class.sh's KAFKA_JVM_PERFORMANCE_OPTS.
PERFORMANCE_OPTS = (
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15",
    "-Djava.awt.headless=true",
)
KAFKA_MAIN = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
CONFIG_COMMAND = "kafka.admin.ConfigCommand"  # ZooKeeper mode: SCRAM users before brokers
ZOOKEEPER_MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"


def log_config(release: Release, tool: bool = False) -> Path:
    """A node's logging (everything to stdout), or an admin tool's (warnings to stderr)."""
    name = "log4j2.xml" if release.logging == "log4j2" else "log4j.properties"
    return LOGGING / (f"tools-{name}" if tool else name)


def log_flag(release: Release, config: Path | str) -> str:
    if release.logging == "log4j2":
        return f"-Dlog4j2.configurationFile={config}"
    return f"-Dlog4j.configuration=file:{config}"


def heap_flags(service: str, mb: int) -> list[str]:
    """Kafka's heap is fixed (Xms = Xmx, so it never resizes under load); ZooKeeper's
    start script sets only its maximum (ZK_SERVER_HEAP)."""
    return [f"-Xms{mb}m", f"-Xmx{mb}m"] if service == "kafka" else [f"-Xmx{mb}m"]


def java(
    release: Release,
    libs: Path,
    main: str,
    args: list[str],
    heap: list[str],
    tool: bool = False,
    agent: str | None = None,
) -> list[str]:
    return [
        "java",
        *heap,
        *([agent] if agent else []),
        *PERFORMANCE_OPTS,
        log_flag(release, log_config(release, tool)),
        "-cp",
        f"{libs}/*",
        main,
        *args,
    ]
