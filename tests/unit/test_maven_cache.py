"""The cached classpath: used as it is while the POM is unchanged, resolved again after."""

from __future__ import annotations

import zipfile

import pytest

from infra.kafka.releases import RELEASES
from infra.runtime import maven

RELEASE = RELEASES["4.4"]


@pytest.fixture
def resolutions(monkeypatch, tmp_path):
    """Each Maven run, faked: a classpath with every class the checks ask for."""
    runs = []

    def resolve(release, into):
        runs.append(release.version)
        into.mkdir(parents=True)
        with zipfile.ZipFile(into / f"kafka-{len(runs)}.jar", "w") as jar:
            for name in maven.MAIN_CLASSES:
                jar.writestr(name, b"")
        zipfile.ZipFile(into / "log4j-slf4j-impl-2.25.5.jar", "w").close()

    monkeypatch.setattr(maven, "_resolve", resolve)
    pom = tmp_path / "kafka.xml"
    pom.write_text("<project/>")
    monkeypatch.setattr(maven, "POM", pom)
    return runs, pom


def test_the_cache_is_used_until_the_pom_changes(resolutions, tmp_path):
    runs, pom = resolutions
    cache = tmp_path / "cache"
    libs = maven.kafka_libs(RELEASE, cache)
    assert maven.kafka_libs(RELEASE, cache) == libs and runs == ["4.4.0"]
    pom.write_text("<project><!-- kafka-tools too --></project>")
    assert maven.kafka_libs(RELEASE, cache) == libs
    assert runs == ["4.4.0", "4.4.0"]  # resolved again for the new POM
    assert (libs / "kafka-2.jar").exists()
    assert not (libs / "kafka-1.jar").exists()  # the old classpath is gone, not merged


def test_a_classpath_without_a_tool_class_is_refused_and_nothing_cached(
    resolutions, tmp_path, monkeypatch
):
    lacking = maven.MAIN_CLASSES[:-1]  # no MetadataQuorumCommand
    real = maven._resolve

    def without(release, into):
        real(release, into)
        jar = next(into.glob("kafka-*.jar"))
        jar.unlink()
        with zipfile.ZipFile(jar, "w") as archive:
            for name in lacking:
                archive.writestr(name, b"")

    monkeypatch.setattr(maven, "_resolve", without)
    with pytest.raises(maven.MavenError, match=r"MetadataQuorumCommand\.class"):
        maven.kafka_libs(RELEASE, tmp_path / "cache")
    assert not (tmp_path / "cache" / "kafka-4.4.0" / maven.COMPLETE).exists()
