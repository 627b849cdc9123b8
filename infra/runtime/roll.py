"""A changed spec applied to a running local cluster, one Kafka node at a time.

New brokers start first and the topics grow to the new plan's partitions. The nodes
`diff` says must restart are then taken brokers first, then controllers (and combined
nodes), the active controller last, as Strimzi's KafkaRoller does (DescribeQuorum,
through Kafka's MetadataQuorumCommand: confluent-kafka has no call for it). Removed
brokers go last: refused while they hold a replica (`rebalance --drain` empties one),
then stopped and unregistered. Before anything stops, and again before each node
stops, the roll refuses a step that would leave a partition the node holds below its
`min.insync.replicas`, or the quorum without a majority; it starts only on a cluster
with no under-replicated partition. After each start it waits, with a deadline, until
the node is registered, the cluster has a controller and no partition is
under-replicated, and says so in one line per node.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    ResourceType,
)

from consumers.properties import parse
from infra.build import Built
from infra.render.changes import REFUSED, plan_diff
from infra.render.files import install
from infra.runtime.answers import settle
from infra.runtime.cluster import START_TIMEOUT_S, STOP_GRACE_S, ClusterError, LocalCluster
from infra.runtime.tools import KafkaTools
from infra.runtime.topics import grow_topics
from infra.secrets import install_secrets

TIMEOUT_S = 30


class RollRefused(ClusterError):
    """A roll that would lose writes or data; nothing was stopped for it."""


ADDED, ROLLED, REMOVED = "added", "rolled", "removed"


@dataclass(frozen=True)
class Step:
    node: str
    seconds: float  # a roll: from its stop to no under-replicated partition again
    what: str  # ADDED, ROLLED or REMOVED


def _min_isr(admin: AdminClient, topics: list[str]) -> dict[str, int]:
    """Each topic's min.insync.replicas. A topic just created may be unknown yet to the
    broker asked (metadata reaches brokers one by one): asked again, for a while."""
    found: dict[str, int] = {}
    deadline = time.monotonic() + TIMEOUT_S
    while len(found) < len(topics):
        resources = [ConfigResource(ResourceType.TOPIC, t) for t in topics if t not in found]
        for resource, future in admin.describe_configs(resources).items():
            try:
                config = future.result(timeout=TIMEOUT_S)
            except KafkaException as err:
                if time.monotonic() > deadline:
                    raise RollRefused(
                        f"cannot read {resource.name}'s min.insync.replicas: {err.args[0].str()}"
                    ) from None
                continue
            found[resource.name] = int(config["min.insync.replicas"].value)
        if len(found) < len(topics):
            time.sleep(0.5)
    return found


def _risk(admin: AdminClient, node_id: int) -> list[str]:
    """The partitions stopping `node_id` would leave below their min ISR."""
    metadata = admin.list_topics(timeout=TIMEOUT_S)
    held = {
        name: [p for p in topic.partitions.values() if node_id in p.replicas]
        for name, topic in metadata.topics.items()
    }
    held = {name: partitions for name, partitions in held.items() if partitions}
    floor = _min_isr(admin, list(held))
    return [
        f"{name}-{p.id} keeps {left} in-sync replica(s), below its min ISR {floor[name]}"
        for name, partitions in held.items()
        for p in partitions
        if (left := len([r for r in p.isrs if r != node_id])) < floor[name]
    ]


def _under_replicated(admin: AdminClient) -> int | None:
    """Partitions whose ISR lacks a replica; None while the cluster has no controller."""
    try:
        metadata = admin.list_topics(timeout=5)
    except KafkaException:
        return None
    if metadata.controller_id < 0:
        return None
    partitions = [p for t in metadata.topics.values() for p in t.partitions.values()]
    return sum(len(p.isrs) < len(p.replicas) for p in partitions)


def _held(admin: AdminClient, node_id: int) -> int:
    """How many replicas `node_id` holds."""
    topics = admin.list_topics(timeout=TIMEOUT_S).topics.values()
    return sum(node_id in p.replicas for t in topics for p in t.partitions.values())


def _server_properties(built: Built, name: str) -> dict[str, str]:
    file = next(f for f in built.rendered[name] if f.name == "server.properties")
    return {e.key: e.value for e in parse(file.content)}


def _online_changes(
    old: Built, new: Built, kafka: set[str], restarts: list[str]
) -> dict[str, dict[str, str | None]]:
    """Node -> the server.properties keys that change on a Kafka node no restart takes
    (`diff` found each dynamic), with the new value (None: back to the default)."""
    found = {}
    for name in sorted(kafka - set(restarts)):
        if name not in new.rendered:
            continue  # removed
        before, after = _server_properties(old, name), _server_properties(new, name)
        changed = {
            k: after.get(k) for k in before.keys() | after.keys() if before.get(k) != after.get(k)
        }
        if changed:
            found[name] = changed
    return found


def _set_online(admin: AdminClient, node_id: int, changed: dict[str, str | None]) -> None:
    """Set the keys on the node, then wait until it reports them: KRaft takes the change
    at the controller, and the broker applies it when the record reaches it."""
    entries = [
        ConfigEntry(k, v or "", incremental_operation=(
            AlterConfigOpType.SET if v is not None else AlterConfigOpType.DELETE))
        for k, v in sorted(changed.items())
    ]  # fmt: skip
    resource = ConfigResource(ResourceType.BROKER, str(node_id), incremental_configs=entries)
    keys = ", ".join(sorted(changed))
    (future,) = admin.incremental_alter_configs([resource]).values()
    settle({f"node {node_id}": future}, f"{keys} refused by", ClusterError, TIMEOUT_S)
    deadline = time.monotonic() + TIMEOUT_S
    while stale := _stale(admin, node_id, changed):
        if time.monotonic() > deadline:
            raise ClusterError(
                f"node {node_id} took {keys}, but still reports the old {', '.join(stale)} "
                f"after {TIMEOUT_S} s; the roll stops here"
            )
        time.sleep(0.2)


def _stale(admin: AdminClient, node_id: int, changed: dict[str, str | None]) -> list[str]:
    """The changed keys whose value the node does not report yet (a key set back to its
    default: one it still holds as a dynamic per-broker value)."""
    resource = ConfigResource(ResourceType.BROKER, str(node_id))
    (future,) = admin.describe_configs([resource]).values()
    settle({f"node {node_id}": future}, "the configs of", ClusterError, TIMEOUT_S)
    live = future.result()
    stale = []
    for key, value in sorted(changed.items()):
        entry = live.get(key)
        if entry is None or entry.is_sensitive:
            continue  # a value the node does not show cannot be waited for
        held = entry.source == ConfigSource.DYNAMIC_BROKER_CONFIG  # set on this node
        if held if value is None else entry.value != value:
            stale.append(key)
    return stale


def _next(
    remaining: list[str], cluster: LocalCluster, leader: Callable[[], int]
) -> tuple[str, bool]:
    """The next node, and whether it is the active controller: brokers first, then the
    controllers with the active one last (KafkaRoller's order), asked again before each
    step, since leadership can move while a node restarts."""
    roles = {name: cluster.service(name).node.roles for name in remaining}
    brokers = [name for name in remaining if "controller" not in roles[name]]
    if brokers:
        return brokers[0], False
    active = leader()
    followers = [n for n in remaining if cluster.service(n).node.node_id != active]
    return (followers[0], False) if followers else (remaining[0], True)


def roll(
    cluster: LocalCluster,
    old: Built,
    new: Built,
    say: Callable[[str], None],
    timeout_s: float = START_TIMEOUT_S,
) -> list[Step]:
    """Apply `new` to `cluster`, which runs `old` (both planned for its local placement):
    new brokers started, topics grown, changed nodes restarted one at a time, removed
    brokers (once empty) stopped and unregistered."""
    old_plan = cluster.plan
    diff = plan_diff(old.plan, new.plan, old.rendered, new.rendered)
    refused = [c for c in diff.changes if c.effect == REFUSED]
    if refused:
        raise RollRefused(f"{refused[0].where}: {refused[0].what}: {refused[0].why}")
    if old_plan.cluster.kafka_release != new.plan.cluster.kafka_release:
        raise RollRefused("a new Kafka release: roll it with the release's jars (not built yet)")
    kafka = {s.node.name for s in cluster.of("kafka")}
    planned = {n.name: n for n in new.plan.nodes}
    added = [n for n in new.plan.nodes if "kafka" in n.containers and n.name not in kafka]
    removed = [name for name in sorted(kafka) if name not in planned]
    restarts = [name for name in diff.restarts if name in kafka]
    admin = AdminClient({**cluster.admin_config(), "log_level": 0})
    behind = _under_replicated(admin)
    if behind != 0:
        raise RollRefused(
            f"the cluster has {behind if behind is not None else 'no controller: all'} "
            "under-replicated partition(s); a roll starts on a healthy cluster"
        )
    voters = [n for n in old_plan.nodes if "controller" in n.roles]
    if any("controller" in cluster.service(n).node.roles for n in restarts) and len(voters) < 3:
        raise RollRefused(
            f"{len(voters)} controller(s): the quorum has no leader while one restarts"
        )
    for name in removed:
        if held := _held(admin, int(cluster.service(name).node.node_id or 0)):
            raise RollRefused(
                f"{name} holds {held} replica(s): empty it first with python -m infra "
                f"rebalance --local --drain {name}; nothing was stopped"
            )
    for name in restarts:  # before anything stops
        risks = _risk(admin, int(cluster.service(name).node.node_id or 0))
        if risks:
            more = f" (and {len(risks) - 1} more)" if len(risks) > 1 else ""
            raise RollRefused(f"stopping {name}: {risks[0]}{more}; nothing was stopped")
    if cluster.keyring is not None:  # a new node's key among them
        install_secrets(new.plan, cluster.keyring)
    tools = KafkaTools(cluster.release, cluster.admin_config(), cluster.out / "clients")
    steps = []
    for node in added:
        started = time.monotonic()
        install({node.name: new.rendered[node.name]})
        cluster.add(node, timeout_s)
        steps.append(Step(node.name, time.monotonic() - started, ADDED))
        say(
            f"  started {node.name} (node id {node.node_id}) in {steps[-1].seconds:.1f} s: "
            "python -m infra rebalance gives it its share of partitions"
        )
    for name in removed:  # before the topics grow: no new partition lands on one
        started = time.monotonic()
        node = cluster.service(name).node
        if held := _held(admin, int(node.node_id or 0)):  # moved onto it since the check
            raise RollRefused(f"{name} holds {held} replica(s) again; it keeps running")
        clean = cluster.remove(name)
        stopped = "stopped" if clean else "stopped (not cleanly)"
        if old_plan.cluster.mode == "kraft":
            try:
                tools.unregister(int(node.node_id or 0))
            except ClusterError as err:
                raise ClusterError(
                    f"{name} is {stopped}, but not unregistered ({err}): run kafka-cluster.sh "
                    f"unregister --id {node.node_id} against the cluster"
                ) from None
            stopped += " and unregistered"
        steps.append(Step(name, time.monotonic() - started, REMOVED))
        say(
            f"  removed {name} (node id {node.node_id}): {stopped}; its data stays in "
            f"{node.data_dirs['kafka']}"
        )
    for line in grow_topics(cluster.admin_config(), new):
        say(line)
    for name, changed in _online_changes(old, new, kafka, restarts).items():
        _set_online(admin, int(planned[name].node_id or 0), changed)
        install({name: new.rendered[name]})
        cluster.service(name).node = planned[name]
        say(f"  set {', '.join(sorted(changed))} on {name} online (incrementalAlterConfigs)")
    remaining = sorted(restarts, key=lambda n: "controller" in cluster.service(n).node.roles)
    while remaining:
        name, active = _next(remaining, cluster, tools.quorum_leader)
        remaining.remove(name)
        service = cluster.service(name)
        risks = _risk(admin, int(service.node.node_id or 0))
        if risks:  # a replica fell behind since the roll began
            raise RollRefused(f"stopping {name}: {risks[0]}")
        started = time.monotonic()
        assert service.process is not None
        service.process.send_signal(signal.SIGTERM)
        service.process.wait(timeout=STOP_GRACE_S)
        install({name: new.rendered[name]})
        service.node = planned[name]
        cluster.restart(service, timeout_s)
        deadline = time.monotonic() + timeout_s
        while (left := _under_replicated(admin)) != 0:
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"{name} restarted, but {left} partition(s) are still under-replicated "
                    f"after {timeout_s:g} s; the roll stops here (see {service.log})"
                )
            time.sleep(0.5)
        steps.append(Step(name, time.monotonic() - started, ROLLED))
        led = " (the active controller, last)" if active else ""
        say(f"  rolled {name}{led} in {steps[-1].seconds:.1f} s: 0 under-replicated partitions")
    cluster.plan = new.plan
    return steps


def summary(steps: list[Step]) -> str:
    """'rolled 3 Kafka node(s)', and the nodes added or removed."""
    rolled = sum(s.what == ROLLED for s in steps)
    found = [f"rolled {rolled} Kafka node(s)"]
    for what in (ADDED, REMOVED):
        if names := [s.node for s in steps if s.what == what]:
            found.append(f"{what} {', '.join(names)}")
    return "; ".join(found)


# -- a roll asked of a running `up --local`, which owns the JVMs: files under <out>/roll/
# (request.json, progress.log, result.json) and SIGHUP, as a daemon reloads.


def _dir(out: Path) -> Path:
    return out / "roll"


def request(out: Path, spec: str, pid: int) -> None:
    """Ask the runtime `pid` serving `out` to roll to `spec`."""
    where = _dir(out)
    if (where / "request.json").exists():
        raise RollRefused(f"a roll is in progress (see {where}/progress.log)")
    where.mkdir(exist_ok=True)
    for stale in ("progress.log", "result.json"):
        (where / stale).unlink(missing_ok=True)
    (where / "request.json").write_text(json.dumps({"spec": spec}))
    os.kill(pid, signal.SIGHUP)


def requested(out: Path) -> str | None:
    path = _dir(out) / "request.json"
    return json.loads(path.read_text())["spec"] if path.exists() else None


def progress(out: Path, line: str) -> None:
    with (_dir(out) / "progress.log").open("a") as log:
        log.write(line + "\n")


def finish(out: Path, ok: bool, message: str) -> None:
    (_dir(out) / "result.json").write_text(json.dumps({"ok": ok, "message": message}))
    (_dir(out) / "request.json").unlink(missing_ok=True)


def follow(out: Path, say: Callable[[str], None], timeout_s: float) -> tuple[bool, str]:
    """Each progress line as the runtime writes it, then its result."""
    deadline, shown = time.monotonic() + timeout_s, 0
    log, result = _dir(out) / "progress.log", _dir(out) / "result.json"
    while True:
        lines = log.read_text().splitlines() if log.exists() else []
        for line in lines[shown:]:
            say(line)
        shown = len(lines)
        if result.exists() and not (_dir(out) / "request.json").exists():
            found = json.loads(result.read_text())
            return found["ok"], found["message"]
        if time.monotonic() > deadline:
            return False, f"no result after {timeout_s:g} s; the roll may go on: see {log}"
        time.sleep(0.3)
