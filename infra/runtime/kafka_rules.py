"""Kafka's own rules, asked of Kafka's own jars: catalogues generated from the ConfigDef
of each release, and rendered files validated as a broker validates them at start.

Both run a single Java source file (infra/kafka/java/) on the release's cached
classpath (infra/runtime/maven.py): one JVM per call, whatever the number of files.
`python -m infra catalogs` writes the catalogues infra/kafka/catalog.py reads; a test
regenerates them and compares byte for byte, so they cannot drift from Kafka.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from infra.kafka.catalog import CATALOG_DIR
from infra.kafka.releases import RELEASES, Release
from infra.runtime.maven import kafka_libs

JAVA = Path(__file__).resolve().parents[1] / "kafka" / "java"
SECRET_REFERENCE = re.compile(r"\$\{file:[^}]*\}")


class KafkaRulesError(RuntimeError):
    """A Java program failed; the message carries what it printed."""


def _run(release: Release, program: str, args: list[str], stdin: str = "") -> str:
    command = ["java", "-cp", f"{kafka_libs(release)}/*", str(JAVA / program), *args]
    done = subprocess.run(command, input=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        raise KafkaRulesError(f"{program} on Kafka {release.version}: {done.stderr.strip()[-500:]}")
    return done.stdout


def generated_catalog(release: Release, earlier: dict[str, Any] | None) -> str:
    """The release's catalogue JSON, with `removed_since`: the keys of the line before
    (`earlier`, a catalogue) that this release no longer defines, so the checker can say
    'removed' rather than 'unknown' for them."""
    catalog = json.loads(_run(release, "GenerateCatalog.java", []))
    catalog["release_line"] = release.line
    if earlier is not None:
        gone = sorted(set(earlier["configs"]) - set(catalog["configs"]))
        earlier_gone = earlier.get("removed_since", {})
        catalog["removed_since"] = {
            **{key: line for key, line in earlier_gone.items() if key not in catalog["configs"]},
            **{key: earlier["release_line"] for key in gone},
        }
    return json.dumps(catalog, indent=1, sort_keys=True) + "\n"


def catalogs() -> dict[Path, str]:
    """Every supported release's catalogue, each knowing what the line before it removed."""
    written: dict[Path, str] = {}
    earlier = None
    for release in sorted(RELEASES.values(), key=lambda r: tuple(map(int, r.line.split(".")))):
        text = generated_catalog(release, earlier)
        written[CATALOG_DIR / f"kafka-broker-configs-{release.line}.json"] = text
        earlier = json.loads(text)
    return written


def _without_secrets(files: list[Path], scratch: Path) -> list[Path]:
    """The files as Kafka validates them here: a secret reference (`${file:PATH:KEY}`)
    names a file that exists only where the node runs, so KafkaConfig's provider would
    fail on the path, never on the config; each is given a stand-in value instead."""
    found = []
    for i, path in enumerate(files):
        text = path.read_text()
        if SECRET_REFERENCE.search(text):
            path = scratch / f"{i}-{path.name}"
            path.write_text(SECRET_REFERENCE.sub("stand-in-secret", text))
        found.append(path)
    return found


def validate(release: Release, files: list[Path]) -> list[str | None]:
    """For each server.properties, what Kafka's own validation says is wrong (None: it
    starts). KafkaConfig.fromProps, as kafka.Kafka calls it at start, in one JVM."""
    if not files:
        return []
    with tempfile.TemporaryDirectory() as scratch:
        paths = _without_secrets(files, Path(scratch))
        out = _run(release, "ValidateConfigs.java", [], stdin="".join(f"{f}\n" for f in paths))
    verdicts = [json.loads(line) for line in out.splitlines() if line.strip()]
    return [None if v["ok"] else v["error"] for v in verdicts]
