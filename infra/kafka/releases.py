"""The Kafka releases the project runs, per release line a spec may name.

A spec says `kafka_version: "4.1"`; the plan pins the exact release here and says so.
What a release needs at run time beyond its own POM (the logging binding no POM names)
lives here too, so the Maven resolution, the images and the plan agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

# Where the Maven artifacts are cached: each release's classpath, the JMX exporter agent.
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kafka-log-cluster"
# The Prometheus JMX exporter, the Java agent every Kafka and ZooKeeper JVM starts with.
JMX_EXPORTER = ("io.prometheus.jmx", "jmx_prometheus_javaagent", "1.0.1")


def exporter_jar(cache: Path = CACHE) -> Path:
    """Where the JMX exporter agent's jar is cached (`make kafka` fetches it)."""
    _, artifact, version = JMX_EXPORTER
    return cache / "jmx-exporter" / f"{artifact}-{version}.jar"


@dataclass(frozen=True)
class Release:
    line: str  # what a spec names: "4.1"
    version: str  # the exact release the plan pins: "4.1.2"
    # Kafka logs through slf4j 1.7 and no POM names a binding: 4.x ships log4j2 behind
    # log4j-slf4j-impl (at the log4j-core version Kafka's own POM resolves), 3.9 reload4j.
    logging: Literal["log4j2", "reload4j"]
    log4j: str = ""  # log4j-slf4j-impl's version, for log4j2
    zookeeper: str = ""  # the ZooKeeper its ZooKeeper mode pairs with (ships the client)


RELEASES: dict[str, Release] = {
    "4.4": Release("4.4", "4.4.0", "log4j2", log4j="2.25.5"),
    "4.1": Release("4.1", "4.1.2", "log4j2", log4j="2.25.3"),
    "3.9": Release("3.9", "3.9.2", "reload4j", zookeeper="3.8.4"),
}
DEFAULT_LINE = "4.4"  # a spec without kafka_version: the newest line that passes our tests
