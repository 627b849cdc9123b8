"""Apache Kafka from Maven Central: a release's runtime classpath, resolved once, cached.

`kafka_libs(release)` returns `~/.cache/kafka-log-cluster/kafka-<version>/libs`, the
jars `java -cp 'libs/*' kafka.Kafka` needs. The first call runs Maven on the pom beside
this module (and needs the network); it resolves into a scratch directory, checks that
the main classes are there, then moves it into place, so a failed or interrupted run
leaves nothing half-made. Later calls read the cache and work offline.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from infra.kafka.releases import CACHE, JMX_EXPORTER, Release, exporter_jar

POM = Path(__file__).parent / "maven" / "kafka.xml"
# Classes a broker, its storage tool, the admin tools a roll and a rebalance run, and
# (3.9) its ZooKeeper start from.
MAIN_CLASSES = (
    "kafka/Kafka.class",
    "kafka/tools/StorageTool.class",
    "org/apache/kafka/tools/reassign/ReassignPartitionsCommand.class",
    "org/apache/kafka/tools/MetadataQuorumCommand.class",
)
ZOOKEEPER_MAIN = "org/apache/zookeeper/server/quorum/QuorumPeerMain.class"
# Written last: the POM's digest, then the jars. Its presence with this POM's digest
# means every check passed for this POM; a changed POM resolves again.
COMPLETE = ".complete"


class MavenError(RuntimeError):
    """The classpath cannot be had; the message says what to install or fix."""


def _classes(libs: Path) -> set[str]:
    found: set[str] = set()
    for jar in libs.glob("*.jar"):
        with zipfile.ZipFile(jar) as archive:
            found.update(archive.namelist())
    return found


def _check(libs: Path, release: Release) -> None:
    wanted = [*MAIN_CLASSES, *([ZOOKEEPER_MAIN] if release.zookeeper else [])]
    classes = _classes(libs)
    missing = [c for c in wanted if c not in classes]
    if missing:
        raise MavenError(f"Kafka {release.version}'s jars lack {', '.join(missing)}")
    binding = "log4j-slf4j-impl" if release.logging == "log4j2" else "slf4j-reload4j"
    if not any(jar.name.startswith(binding) for jar in libs.glob("*.jar")):
        raise MavenError(f"Kafka {release.version}'s jars lack the logging binding {binding}")


def _tools() -> None:
    for tool, package in (("java", "openjdk-17-jre-headless"), ("mvn", "maven")):
        if shutil.which(tool) is None:
            raise MavenError(f"no {tool} on PATH: install {package} (Java 17+ and Maven 3.8+)")


def _mvn(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        said = [line for line in (done.stdout + done.stderr).splitlines() if "ERROR" in line]
        why = said[0].removeprefix("[ERROR] ") if said else f"exit code {done.returncode}"
        raise MavenError(f"Maven could not resolve {what}: {why}")


def _resolve(release: Release, into: Path) -> None:
    _tools()
    command = [
        "mvn", "--batch-mode", "--quiet", "-f", str(POM), "-P", release.logging,
        f"-Dkafka.version={release.version}", f"-Dlog4j.version={release.log4j or 'unused'}",
        "dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={into}",
    ]  # fmt: skip
    _mvn(command, f"Kafka {release.version}")


def _pom_digest() -> str:
    return "pom sha256:" + hashlib.sha256(POM.read_bytes()).hexdigest()


def kafka_libs(release: Release, cache: Path = CACHE) -> Path:
    """The release's classpath directory, resolved from Maven Central the first time
    (and again when the POM changes)."""
    home = cache / f"kafka-{release.version}"
    libs = home / "libs"
    complete = home / COMPLETE
    if complete.exists() and complete.read_text().partition("\n")[0] == _pom_digest():
        return libs
    home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=home, prefix="resolving-") as scratch:
        fresh = Path(scratch) / "libs"
        _resolve(release, fresh)
        _check(fresh, release)
        shutil.rmtree(libs, ignore_errors=True)  # an earlier run's unchecked leftovers
        fresh.rename(libs)
    jars = "".join(f"{j.name}\n" for j in sorted(libs.glob("*.jar")))
    complete.write_text(f"{_pom_digest()}\n{jars}")
    return libs


def exporter_agent(cache: Path = CACHE) -> Path:
    """The JMX exporter agent's jar, fetched from Maven Central the first time."""
    group, artifact, version = JMX_EXPORTER
    jar = exporter_jar(cache)
    if jar.exists():
        return jar
    _tools()
    jar.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=jar.parent, prefix="resolving-") as scratch:
        command = [
            "mvn", "--batch-mode", "--quiet", "dependency:copy",
            f"-Dartifact={group}:{artifact}:{version}", f"-DoutputDirectory={scratch}",
        ]  # fmt: skip
        _mvn(command, f"the JMX exporter {version}")
        fetched = Path(scratch) / jar.name
        with zipfile.ZipFile(fetched) as archive:
            if "Premain-Class" not in archive.read("META-INF/MANIFEST.MF").decode():
                raise MavenError(f"{jar.name} is not a Java agent (no Premain-Class)")
        fetched.rename(jar)  # whole, or not at all
    return jar
