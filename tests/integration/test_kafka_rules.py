"""Kafka's own rules, asked of Kafka: the committed catalogues are what the jars say, and
the Python checker agrees with KafkaConfig's own validation, file for file.

The differential test takes server.properties files the plan renders (one per kind of
node and release), changes them as an operator's tuning would (a catalogue key set to a
value its validator accepts or refuses, a wrong type, a key removed), and asks both the
checker (infra/kafka/broker_rules.py) and Kafka 3.9, 4.1 and 4.4 themselves, in one JVM
per release. Kafka refuses -> the checker refuses. Kafka accepts -> the checker accepts,
except where it is stricter on purpose (below). Every disagreement found was fixed in
the checker and is kept as an explicit case.
"""

from __future__ import annotations

import re

import pytest
import yaml
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from consumers.properties import parse
from infra.build import build
from infra.kafka.broker_rules import check_server_properties
from infra.kafka.catalog import load
from infra.kafka.releases import RELEASES
from infra.model.kafka_nodes import PLAN_OWNED_KEYS
from infra.runtime.kafka_rules import catalogs, validate
from tests.conftest import EXAMPLE_SPECS, MINIMAL_SPEC, TEST_LOCAL_CORES

# The checker refuses these although KafkaConfig lets them pass: Kafka only logs an unknown
# or removed key, ignores the other mode's keys and keeps the last of two lines (each a
# broker running other than the operator meant); an empty process.roles (4.x) or
# zookeeper.connect (3.9) passes KafkaConfig but the storage tool or the start refuses it.
STRICTER_ON_PURPOSE = re.compile(
    r"unknown key for Kafka|removed after Kafka|a ZooKeeper-mode key|a KRaft-only key|set twice"
    r"|has no ZooKeeper mode|no ensemble to join"
)
# Not comparable from Python: Kafka loads a CLASS value (a plugin on its classpath, also
# named in some LIST keys such as the group assignors), and a PASSWORD is any text.
NOT_COMPARED_TYPES = {"CLASS", "PASSWORD"}
LOADS_A_CLASS = re.compile(r"Class .*cannot be found|is not an instance of")
# Inputs that once split the two, each kept for the rule it taught the checker:
# (release line, the changes), tried on every file of that line.
FOUND: list[tuple[str, dict[str, str | None]]] = [
    ("4.4", {"log.cleaner.min.cleanable.ratio": "0.5d"}),  # Java's Double syntax
    ("4.4", {"log.cleaner.min.cleanable.ratio": "NaN"}),  # Java's Range lets NaN by
    ("4.4", {"group.consumer.session.timeout.ms": "1000"}),  # the coordinators' bounds
    ("4.4", {"group.consumer.assignment.interval.ms": "1"}),
    ("4.4", {"group.share.partition.max.record.locks": "100000"}),
    ("4.4", {"group.streams.num.standby.replicas": "3"}),
    ("4.4", {"early.start.listeners": "NOPE"}),
    ("4.4", {"log.roll.ms": "0"}),
    ("4.4", {"log.retention.ms": "0"}),
    ("4.4", {"max.connections.per.ip": "0"}),
    ("4.4", {"cordoned.log.dirs": "/elsewhere"}),
    ("4.4", {"share.coordinator.state.topic.compression.codec": "7"}),
    ("4.4", {"connection.failed.authentication.delay.ms": "100", "connections.max.idle.ms": "7"}),
    ("4.1", {"connection.failed.authentication.delay.ms": "100", "connections.max.idle.ms": "-1"}),
    ("4.1", {"process.roles": ""}),
    ("4.1", {"node.id": "+7"}),
    ("4.1", {"inter.broker.listener.name": "0"}),
    ("4.1", {"listener.security.protocol.map": "abc"}),  # once a traceback
    ("4.1", {"max.connections.per.ip.overrides": "host1"}),
    ("4.1", {"group.share.max.record.lock.duration.ms": "1"}),
    ("4.1", {"group.coordinator.rebalance.protocols": "consumer"}),
    ("4.1", {"share.coordinator.snapshot.update.records.per.snapshot": "501"}),
    ("4.1", {"log.cleaner.threads": "0"}),
    ("3.9", {"group.coordinator.rebalance.protocols": ","}),
    ("3.9", {"group.coordinator.rebalance.protocols": "classic,consumer"}),
    (
        "3.9",
        {"group.consumer.heartbeat.interval.ms": "5000", "group.consumer.session.timeout.ms": "1"},
    ),
    ("3.9", {"offsets.commit.required.acks": "9"}),
    ("3.9", {"log.cleaner.dedupe.buffer.size": "1000"}),
    ("3.9", {"zookeeper.metadata.migration.enable": "TRUE"}),
    ("3.9", {"control.plane.listener.name": "X"}),
    ("3.9", {"zookeeper.connect": ""}),
]


def baselines() -> dict[str, list[str]]:
    """Per release line, the server.properties of every kind of node the plan makes."""
    found: dict[str, list[str]] = {line: [] for line in RELEASES}
    for spec in EXAMPLE_SPECS:
        built = build(str(spec), TEST_LOCAL_CORES)
        for files in built.rendered.values():
            for f in files:
                if f.name == "server.properties":
                    found[built.plan.cluster.kafka_version].append(f.content)
    return found


BASELINES = baselines()


def with_changes(text: str, changes: dict[str, str | None]) -> str:
    """The file with keys set (or, for None, removed), as tuning would leave it."""
    settings = {e.key: e.value for e in parse(text)}
    for key, value in changes.items():
        if value is None:
            settings.pop(key, None)
        else:
            settings[key] = value
    return "".join(f"{k}={v}\n" for k, v in settings.items())


def values_for(entry: dict) -> st.SearchStrategy[str]:
    """Texts around what the key's validator accepts, and some it cannot."""
    rule = entry["validator"] or {}
    kind = entry["type"]
    odd = st.sampled_from(["", "abc", " 7 ", "+7", "-1", "0", "1e3", "0x10", "9" * 25])
    if kind in ("INT", "LONG", "SHORT"):
        bounds = [rule.get(k) for k in ("min", "max", "or_value") if rule.get(k) is not None]
        near = [str(b + d) for b in bounds for d in (-1, 0, 1)]
        bits = {"SHORT": 15, "INT": 31, "LONG": 63}[kind]
        edges = [str(2**bits - 1), str(2**bits), str(-(2**bits)), str(-(2**bits) - 1)]
        return st.one_of(st.sampled_from(near + edges) if near else st.sampled_from(edges), odd)
    if kind == "DOUBLE":
        return st.one_of(
            st.sampled_from(["0.5", "1.5d", "2f", "1e400", "NaN", "-0.0", ".5", "5."]), odd
        )
    if kind == "BOOLEAN":
        return st.sampled_from(["true", "false", "TRUE", "yes", "1", ""])
    values = rule.get("values") or []
    if values:
        pick = st.sampled_from(values)
        if kind == "LIST":
            return st.one_of(
                st.lists(pick, max_size=3).map(",".join), st.just("nonsense"), st.just(",")
            )
        return st.one_of(pick, pick.map(str.lower), pick.map(str.upper), st.just("nonsense"))
    return st.one_of(st.text("abcxyz.-_:/ ", max_size=12), odd)


def changes_for(line: str) -> st.SearchStrategy[dict[str, str | None]]:
    keys = {
        key: entry
        for key, entry in load(line).keys.items()
        if entry["type"] not in NOT_COMPARED_TYPES and not entry["internal"]
    }
    settable = sorted(keys)
    removable = sorted(PLAN_OWNED_KEYS | {"num.io.threads", "log.retention.hours"})

    @st.composite
    def draw(d) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        for key in d(st.lists(st.sampled_from(settable), min_size=1, max_size=3, unique=True)):
            found[key] = d(values_for(keys[key]))
        if d(st.booleans()):
            found[d(st.sampled_from(removable))] = None
        return found

    return draw()


def cases_for(line: str, examples: int, seed_value: int = 20261201) -> list[str]:
    """Baseline files of the line with generated changes: one file each."""
    found: list[str] = []

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @seed(seed_value)
    @given(st.sampled_from(BASELINES[line]), changes_for(line))
    def collect(baseline, changes):
        found.append(with_changes(baseline, changes))

    collect()
    return found


def disagreements(line: str, texts: list[str], tmp_path) -> list[str]:
    paths = []
    for i, text in enumerate(texts):
        path = tmp_path / f"{line}-{i}.properties"
        path.write_text(text)
        paths.append(path)
    kafka = validate(RELEASES[line], paths)
    found = []
    for path, text, refused in zip(paths, texts, kafka, strict=True):
        ours = [p.message for p in check_server_properties(text, line)]
        if refused and LOADS_A_CLASS.search(refused):
            continue
        if refused and not ours:
            found.append(f"{path.name}: Kafka {line} refuses ({refused}), the checker accepts")
        elif not refused and ours and not all(STRICTER_ON_PURPOSE.search(m) for m in ours):
            found.append(f"{path.name}: Kafka {line} accepts, the checker refuses ({ours})")
    return found


def test_the_committed_catalogues_are_what_the_jars_say():
    for path, text in catalogs().items():
        assert path.read_text() == text, f"{path.name} is stale: run python -m infra catalogs"


@pytest.mark.parametrize("line", list(RELEASES))
def test_the_checker_and_kafka_agree_on_every_rendered_file_and_its_variants(line, tmp_path):
    texts = list(BASELINES[line]) + cases_for(line, examples=300)
    texts += [
        with_changes(b, changes)
        for found, changes in FOUND
        if found == line
        for b in BASELINES[line]
    ]
    assert disagreements(line, texts, tmp_path) == []


def test_every_rendered_file_starts_on_kafka(tmp_path):
    for line, texts in BASELINES.items():
        assert texts, f"no example spec renders Kafka {line}"
        paths = []
        for i, text in enumerate(texts):
            paths.append(tmp_path / f"{line}-{i}.properties")
            paths[-1].write_text(text)
        assert validate(RELEASES[line], paths) == [None] * len(paths)


def test_the_minimal_spec_on_each_line_renders_what_kafka_takes(tmp_path):
    # Lines no example spec uses as its own still render a file Kafka validates.
    for line in RELEASES:
        spec = {**MINIMAL_SPEC, "cluster": {"name": "logs", "kafka_version": line}}
        path = tmp_path / f"minimal-{line}.yaml"
        path.write_text(yaml.safe_dump(spec))
        built = build(str(path), TEST_LOCAL_CORES)
        (server,) = [f for f in built.rendered["kafka-1"] if f.name == "server.properties"]
        (tmp_path / f"{line}.properties").write_text(server.content)
        assert validate(RELEASES[line], [tmp_path / f"{line}.properties"]) == [None]
