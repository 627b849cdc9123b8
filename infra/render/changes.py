"""What changing a spec does to a running cluster: `python -m infra diff OLD NEW`.

Both specs are planned and rendered as `plan` and `render` do them. The difference is
read per node (each file's changed keys, and whether Kafka takes each one online),
per topic and per group, and judged: can the change be applied to a running cluster
one node at a time without taking a topic or the quorum down?
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table

from consumers.properties import parse
from infra.kafka.catalog import load
from infra.model.plan import NodePlan, Plan
from infra.render.files import Rendered, RenderedFile

# What applying a change takes, from least to most.
ONLINE = "online"  # a running cluster takes it (admin API, or a new container of its own)
RESTART = "restart"  # the node's service restarts with the new files
REFUSED = "refused"  # no rolling change gets there; the reason says what would
FIXED_VOTERS = "a quorum voter: the voters are fixed at format (controller.quorum.voters)"


@dataclass(frozen=True)
class Change:
    where: str  # a node, "topic NAME", "group NAME" or "cluster"
    what: str
    effect: str  # ONLINE, RESTART or REFUSED
    why: str


@dataclass(frozen=True)
class PlanDiff:
    changes: list[Change]
    outages: list[str]  # why a rolling restart of the changed nodes is not safe online

    @property
    def restarts(self) -> list[str]:
        """The nodes with a service to restart, in the order a roll takes them: brokers
        and consumer nodes first, then controllers (a combined node with them)."""
        return list(dict.fromkeys(c.where for c in self.changes if c.effect == RESTART))

    @property
    def safe_online(self) -> bool:
        return not self.outages and all(c.effect != REFUSED for c in self.changes)


def _properties(file: RenderedFile) -> dict[str, str] | None:
    """A properties file's settings; None for a file that is not one (a myid)."""
    if not file.name.endswith((".properties", ".cfg")):
        return None
    return {e.key: e.value for e in parse(file.content)}


def _file_changes(old: RenderedFile, new: RenderedFile, plan: Plan, node: NodePlan):
    before, after = _properties(old), _properties(new)
    if before is None or after is None:
        yield Change(node.name, f"{new.name} changes", RESTART, "read when its service starts")
        return
    catalog = load(plan.cluster.kafka_version)
    for key in sorted(before.keys() | after.keys()):
        was, now = before.get(key, "(unset)"), after.get(key, "(unset)")
        if was == now:
            continue
        what = f"{new.name}: {key} {was} -> {now}"
        if new.service.startswith("consumer:"):
            group = new.service.removeprefix("consumer:")
            yield Change(node.name, what, RESTART, f"group {group}'s workers restart with it")
            continue
        if new.name != "server.properties":
            yield Change(node.name, what, RESTART, f"{new.service} reads it when it starts")
            continue
        mode = catalog.dynamic(key)
        if mode in ("per-broker", "cluster-wide"):
            yield Change(node.name, what, ONLINE, f"{mode} dynamic: incrementalAlterConfigs")
        else:
            yield Change(node.name, what, RESTART, "read-only: the broker reads it at start")


def _node_changes(old: Plan, new: Plan, old_files: Rendered, new_files: Rendered):
    before = {n.name: n for n in old.nodes}
    for node in new.nodes:
        was = before.get(node.name)
        if was is None:
            if "controller" in node.roles:
                yield Change(node.name, "a new controller", REFUSED, FIXED_VOTERS)
            elif "broker" in node.roles:
                yield Change(node.name, "a new broker", ONLINE, "roll starts it, rebalance fills")
            else:
                yield Change(node.name, "a new node", ONLINE, "roll starts its consumer shares")
            continue
        if was.node_id != node.node_id:
            yield Change(
                node.name,
                f"node id {was.node_id} -> {node.node_id}",
                REFUSED,
                f"its data belongs to id {was.node_id}: add `id: {was.node_id}` to it",
            )
        if was.heap_mb != node.heap_mb or was.limits != node.limits:
            yield Change(node.name, "heap or container limits", RESTART, "set when it starts")
        files = {f.name: f for f in old_files[node.name]}
        for file in new_files[node.name]:
            if file.name not in files:
                yield Change(node.name, f"{file.name} is new", RESTART, "read at start")
            elif files[file.name].content != file.content:
                yield from _file_changes(files[file.name], file, new, node)
    for name, node in before.items():
        if name in {n.name for n in new.nodes}:
            continue
        if "controller" in node.roles:
            yield Change(name, "removed", REFUSED, FIXED_VOTERS)
        elif "broker" in node.roles:
            yield Change(
                name,
                "removed",
                ONLINE,
                "stopped and unregistered once it holds no replica: `rebalance --drain` "
                "empties it (roll checks)",
            )
        else:
            yield Change(name, "removed", ONLINE, "nothing is stored on it")


def _topic_changes(old: Plan, new: Plan):
    before = {t.name: t for t in old.topics}
    for topic in new.topics:
        was = before.get(topic.name)
        where = f"topic {topic.name}"
        if was is None:
            yield Change(where, "a new topic", ONLINE, "created through the admin API")
            continue
        partitions, had = int(topic.partitions.value), int(was.partitions.value)
        if partitions > had:
            yield Change(where, f"partitions {had} -> {partitions}", ONLINE, "create_partitions")
        elif partitions < had:
            yield Change(
                where,
                f"partitions {had} -> {partitions}",
                REFUSED,
                f"Kafka never removes one: keep them with `partitions: {had}` on the topic",
            )
        rf, had_rf = topic.replication_factor.value, was.replication_factor.value
        if rf != had_rf:
            yield Change(
                where,
                f"replication factor {had_rf} -> {rf}",
                REFUSED,
                "a reassignment of every partition: not planned yet",
            )
        for key in sorted(topic.config.keys() | was.config.keys()):
            now, then = topic.config.get(key), was.config.get(key)
            if (now and now.value) != (then and then.value):
                shown = f"{then.value if then else '(unset)'} -> {now.value if now else '(unset)'}"
                yield Change(where, f"{key} {shown}", ONLINE, "a topic config: alter_configs")
    for name in before.keys() - {t.name for t in new.topics}:
        yield Change(f"topic {name}", "no longer planned", ONLINE, "kept with its data")


def _outages(new: Plan, restarted: list[str]) -> list[str]:
    """Why restarting `restarted` one at a time would stop writes or the quorum."""
    kafka = {n.name: n for n in new.nodes if "kafka" in n.containers}
    brokers = [n for n in restarted if n in kafka and "broker" in kafka[n].roles]
    controllers = [n for n in restarted if n in kafka and "controller" in kafka[n].roles]
    found = []
    if brokers:
        for topic in new.topics:
            rf = int(topic.replication_factor.value)
            isr = int(topic.config["min.insync.replicas"].value)
            if rf <= isr:
                found.append(
                    f"topic {topic.name} (replication factor {rf}, min ISR {isr}) refuses "
                    "acks=all writes while a broker holding it restarts"
                )
    voters = sum("controller" in n.roles for n in kafka.values())
    if controllers and voters < 3:
        found.append(f"{voters} controller(s): the quorum has no leader while one restarts")
    return found


def plan_diff(old: Plan, new: Plan, old_files: Rendered, new_files: Rendered) -> PlanDiff:
    changes: list[Change] = []
    if old.cluster.mode != new.cluster.mode:
        changes.append(
            Change("cluster", f"{old.cluster.mode} -> {new.cluster.mode}", REFUSED, "a migration")
        )
    elif old.cluster.cluster_id != new.cluster.cluster_id:
        changes.append(
            Change("cluster", "cluster id", REFUSED, "the cluster's name decides it: keep it")
        )
    if old.cluster.kafka_release != new.cluster.kafka_release:
        for node in new.nodes:
            if "kafka" in node.containers:
                changes.append(
                    Change(
                        node.name,
                        f"Kafka {old.cluster.kafka_release} -> {new.cluster.kafka_release}",
                        RESTART,
                        "a new image or classpath",
                    )
                )
    changes += _node_changes(old, new, old_files, new_files)
    changes += _topic_changes(old, new)
    # Nodes first, brokers before controllers (a roll's order), then the topics.
    order = {n.name: ("controller" in n.roles) for n in new.nodes}
    changes.sort(key=lambda c: (c.where.startswith(("topic ", "cluster")), order.get(c.where, 0)))
    restarted = list(dict.fromkeys(c.where for c in changes if c.effect == RESTART))
    return PlanDiff(changes, _outages(new, restarted))


def verdict(diff: PlanDiff) -> str:
    if not diff.changes:
        return "no change"
    refused = [c for c in diff.changes if c.effect == REFUSED]
    if refused:
        return f"refused: {len(refused)} change(s) no rolling change can make (above)"
    if diff.outages:
        return "not safe online: " + "; ".join(diff.outages)
    if diff.restarts:
        return "safe online: restart one node at a time, in this order: " + ", ".join(diff.restarts)
    return "safe online: no restart"


def diff_table(diff: PlanDiff, old: str, new: str) -> Table:
    table = Table(title=f"{old} -> {new}", caption=verdict(diff))
    for column in ("where", "change", "takes", "why"):
        table.add_column(column, overflow="fold")
    for change in diff.changes:
        table.add_row(change.where, change.what, change.effect, change.why)
    return table
