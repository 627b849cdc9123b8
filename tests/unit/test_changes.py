"""`python -m infra diff OLD NEW`: what a spec change does to a running cluster, each
change classified the way Kafka takes it, and the verdict on a rolling change."""

from __future__ import annotations

import copy

import pytest
import yaml

from infra.build import build
from infra.render.changes import ONLINE, REFUSED, RESTART, plan_diff, verdict
from tests.conftest import REPO

THREE = yaml.safe_load((REPO / "specs/three-node-kraft.yaml").read_text())


def diff(tmp_path, old: dict, new: dict):
    paths = []
    for name, spec in (("old", old), ("new", new)):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(spec))
        paths.append(str(path))
    before, after = build(paths[0], 4), build(paths[1], 4)
    return plan_diff(before.plan, after.plan, before.rendered, after.rendered)


def changed(spec: dict, edit) -> dict:
    spec = copy.deepcopy(spec)
    edit(spec)
    return spec


def rows(found) -> set[tuple[str, str, str]]:
    return {(c.where, c.what, c.effect) for c in found.changes}


def test_the_same_spec_changes_nothing(cli):
    code, out, _ = cli("diff", "specs/three-node-kraft.yaml", "specs/three-node-kraft.yaml")
    assert code == 0 and "no change" in out


def test_each_broker_key_is_online_or_a_restart_as_kafka_takes_it(tmp_path):
    def tune(spec):
        spec["tuning"]["broker"] |= {"log.cleaner.threads": 2, "socket.send.buffer.bytes": 1048576}

    found = diff(tmp_path, THREE, changed(THREE, tune))
    for node in ("kafka-1", "kafka-2", "kafka-3"):
        # Cluster-wide dynamic: a running broker takes it; read-only: at a restart.
        assert (node, "server.properties: log.cleaner.threads (unset) -> 2", ONLINE) in rows(found)
        assert (
            node, "server.properties: socket.send.buffer.bytes (unset) -> 1048576", RESTART
        ) in rows(found)  # fmt: skip
    assert found.restarts == ["kafka-1", "kafka-2", "kafka-3"]
    assert found.safe_online  # RF 3, min ISR 2, three voters: one at a time is safe
    assert verdict(found) == (
        "safe online: restart one node at a time, in this order: kafka-1, kafka-2, kafka-3"
    )


def test_a_node_inserted_before_the_others_is_refused_with_the_ids_to_keep(tmp_path, cli):
    new = changed(
        THREE,
        lambda s: s["nodes"].insert(
            0, {"name": "kafka-0", "cores": 8, "memory_gb": 32, "roles": ["broker"]}
        ),
    )
    found = diff(tmp_path, THREE, new)
    refused = [c for c in found.changes if c.effect == REFUSED]
    assert [(c.where, c.what) for c in refused] == [
        ("kafka-1", "node id 1 -> 2"), ("kafka-2", "node id 2 -> 3"), ("kafka-3", "node id 3 -> 4"),
    ]  # fmt: skip
    assert refused[0].why == "its data belongs to id 1: add `id: 1` to it"
    assert not found.safe_online and verdict(found).startswith("refused: 3 change(s)")
    code, _, _ = cli("diff", str(tmp_path / "old.yaml"), str(tmp_path / "new.yaml"))
    assert code == 1


def test_partitions_grow_online_and_never_shrink(tmp_path):
    def partitions(count):
        return lambda s: s["topics"][0].update(partitions=count)

    grown = diff(tmp_path, changed(THREE, partitions(24)), changed(THREE, partitions(48)))
    assert ("topic logs.raw", "partitions 24 -> 48", ONLINE) in rows(grown)
    shrunk = diff(tmp_path, changed(THREE, partitions(48)), changed(THREE, partitions(24)))
    (shrink,) = [c for c in shrunk.changes if c.what == "partitions 48 -> 24"]
    assert shrink.effect == REFUSED and "keep them with `partitions: 48`" in shrink.why
    assert not shrunk.safe_online


def test_a_replication_change_and_a_voter_change_are_refused(tmp_path):
    rf = changed(THREE, lambda s: s["topics"][1].update(replication_factor=2))
    assert ("topic logs.parsed", "replication factor 3 -> 2", REFUSED) in rows(
        diff(tmp_path, THREE, rf)
    )

    def add(name, roles):
        node = {"name": name, "cores": 8, "memory_gb": 16, "roles": roles}
        return lambda s: s["nodes"].append(node)

    four = changed(THREE, add("kafka-4", ["broker"]))
    # A broker comes and goes online: roll starts it, or stops it once drained.
    assert ("kafka-4", "a new broker", ONLINE) in rows(diff(tmp_path, THREE, four))
    without_broker = diff(tmp_path, four, THREE)
    (removed,) = [c for c in without_broker.changes if c.where == "kafka-4"]
    assert (removed.what, removed.effect) == ("removed", ONLINE)
    assert "once it holds no replica: `rebalance --drain`" in removed.why
    # The quorum's voters are fixed at format: a combined or controller node cannot come or go.
    voter = changed(THREE, add("kafka-4", ["broker", "controller"]))
    assert ("kafka-4", "a new controller", REFUSED) in rows(diff(tmp_path, THREE, voter))
    assert ("kafka-4", "removed", REFUSED) in rows(diff(tmp_path, voter, THREE))
    two_parsers = changed(THREE, add("parsers-2", ["consumer"]))
    assert ("parsers-2", "removed", ONLINE) in rows(diff(tmp_path, two_parsers, THREE))


@pytest.mark.parametrize("spec", ["single-node"])
def test_a_restart_of_a_single_node_cluster_is_not_safe_online(spec, tmp_path):
    single = yaml.safe_load((REPO / f"specs/{spec}.yaml").read_text())
    tuned = changed(
        single, lambda s: s.setdefault("tuning", {}).setdefault("broker", {}).update(
            {"socket.send.buffer.bytes": 1048576}
        )
    )  # fmt: skip
    found = diff(tmp_path, single, tuned)
    assert found.restarts == ["kafka-1"]
    assert not found.safe_online
    assert any("refuses acks=all writes" in o for o in found.outages)
    assert "1 controller(s): the quorum has no leader while one restarts" in found.outages


def test_a_new_release_restarts_every_kafka_node(tmp_path):
    older = changed(THREE, lambda s: s["cluster"].update(kafka_version="4.1"))
    found = diff(tmp_path, older, THREE)
    for node in ("kafka-1", "kafka-2", "kafka-3"):
        assert any(
            c.where == node and c.what.startswith("Kafka 4.1.2 -> 4.4") for c in found.changes
        )
    assert "parsers-1" not in {c.where for c in found.changes if c.what.startswith("Kafka")}
