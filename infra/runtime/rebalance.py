"""Partitions moved so that each broker carries its core-weighted share, through Kafka's
own reassignment (kafka-reassign-partitions.sh), throttled and resumable.

`balanced(assignment, weights)` is the target. Per topic, each broker gets replicas in
proportion to its cores (the plan's rule: a partition per broker core), by largest
remainder and at most one per partition. Replicas already where they belong stay, so
as few as possible move, and a moved partition's preferred leader (its first replica)
goes to the broker leading least for its weight. A drained broker weighs 0.

`rebalance` writes the moves to `<out>/rebalance/reassignment.json`, starts them with
a replication throttle, and follows them with a progress bar until every moved
partition has its target replicas all in sync; then `--verify` clears the throttles
and the file goes. Ctrl-C stops the following only: Kafka goes on moving. A second
`rebalance` finds the file, joins the moves in flight (`--additional`), and follows
them again, whatever it was asked, and says so.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from infra.kafka.releases import RELEASES, Release
from infra.runtime.cluster import ClusterError
from infra.runtime.running import running
from infra.runtime.tools import KafkaTools

Assignment = dict[tuple[str, int], list[int]]  # (topic, partition) -> replicas, leader first
TIMEOUT_S = 30
DEFAULT_THROTTLE_MB = 50  # per broker, per second: what a log cluster's disks spare


class RebalanceRefused(ClusterError):
    """A rebalance that cannot be done; nothing was moved for it."""


def quotas(
    slots: int, partitions: int, weights: dict[int, int], held: Counter, load: Counter
) -> dict[int, int]:
    """`slots` replicas over the brokers in proportion to their weights, by largest
    remainder, none above `partitions` (one replica per partition each). A tie goes to
    the broker holding more of them already (`held`: nothing moves for it), then to the
    one given least by the topics before (`load`), so ties even out across topics."""
    quota = dict.fromkeys(weights, 0)
    open_ = sorted(b for b, w in weights.items() if w > 0)
    left = slots
    while left and open_:
        total = sum(weights[b] for b in open_)
        exact = {b: left * weights[b] / total for b in open_}
        full = [b for b in open_ if exact[b] >= partitions]
        if full:  # capped: the rest share what these cannot take
            for b in full:
                quota[b], left = partitions, left - partitions
            open_ = [b for b in open_ if b not in full]
            continue
        for b in open_:
            quota[b] = int(exact[b])
        by_remainder = sorted(
            open_, key=lambda b: (-(exact[b] - int(exact[b])), -held[b], load[b], b)
        )
        for b in by_remainder[: left - sum(quota[b] for b in open_)]:
            quota[b] += 1
        left = 0
    if left:
        raise RebalanceRefused(
            f"{slots // partitions} replicas per partition need as many brokers with cores; "
            f"{len([w for w in weights.values() if w > 0])} would be left"
        )
    return quota


Move = tuple[int, int, int]  # (partition, from broker, to broker)


def _chain(target: dict[int, list[int]], count: Counter, quota: dict[int, int]) -> list[Move]:
    """The shortest chain of moves from a broker above its quota to one below it: each
    moves a replica of a partition to a broker that partition lacks, and every broker
    between gives one and takes one. A direct move is a chain of one; a longer chain is
    what is left when every partition of the broker above holds the one below already."""
    over = sorted((b for b in count if count[b] > quota.get(b, 0)),
                  key=lambda b: (quota.get(b, 0) - count[b], b))  # fmt: skip
    under = {b for b in quota if count[b] < quota[b]}
    came: dict[int, tuple[int, int] | None] = dict.fromkeys(over)  # broker -> (from, partition)
    queue = deque(over)
    while queue and under:
        giver = queue.popleft()
        for partition, replicas in target.items():
            if giver not in replicas:
                continue
            for taker in sorted(quota):
                if taker in came or taker in replicas or quota[taker] == 0:
                    continue
                came[taker] = (giver, partition)
                if taker in under:
                    chain, at = [], taker
                    while (step := came[at]) is not None:
                        chain.append((step[1], step[0], at))
                        at = step[0]
                    return chain[::-1]
                queue.append(taker)
    return []


def _topic(
    current: dict[int, list[int]], weights: dict[int, int], load: Counter
) -> dict[int, list[int]]:
    """One topic's target: chains of moves (`_chain`) until every broker holds its quota.
    Each chain takes one replica off a broker above its quota and gives one to a broker
    below, so what is in place stays and the loop ends."""
    held = Counter(b for r in current.values() for b in r)
    quota = quotas(sum(held.values()), len(current), weights, held, load)
    load.update(quota)
    target = {p: list(r) for p, r in sorted(current.items())}
    count = Counter(held)
    while chain := _chain(target, count, quota):
        for partition, giver, taker in chain:
            replicas = target[partition]
            replicas[replicas.index(giver)] = taker
        count[chain[0][1]] -= 1
        count[chain[-1][2]] += 1
    return target


def _spread_leaders(target: Assignment, moved: set, weights: dict[int, int]) -> Assignment:
    leads = Counter(replicas[0] for key, replicas in target.items() if key not in moved)
    spread = dict(target)
    for key in sorted(moved):
        replicas = target[key]
        leader = min(replicas, key=lambda b: (leads[b] / max(weights.get(b, 0), 1e-9), b))
        leads[leader] += 1
        spread[key] = [leader, *[b for b in replicas if b != leader]]
    return spread


def balanced(current: Assignment, weights: dict[int, int]) -> Assignment:
    """The target assignment: every topic spread over the brokers by `weights`."""
    by_topic: dict[str, dict[int, list[int]]] = defaultdict(dict)
    for (topic, partition), replicas in current.items():
        by_topic[topic][partition] = replicas
    target: Assignment = {}
    load: Counter[int] = Counter()
    for topic, partitions in sorted(by_topic.items()):
        for partition, replicas in _topic(partitions, weights, load).items():
            target[topic, partition] = replicas
    moved = {k for k in target if set(target[k]) != set(current[k])}
    return _spread_leaders(target, moved, weights)


def assignment(admin: AdminClient) -> Assignment:
    """Every partition's replicas as the cluster has them, internal topics too."""
    topics = admin.list_topics(timeout=TIMEOUT_S).topics
    return {
        (name, p.id): list(p.replicas)
        for name, topic in topics.items()
        for p in topic.partitions.values()
    }


def _done(admin: AdminClient, moves: Assignment) -> int:
    """How many moves are complete: the target replicas, exactly, all in sync."""
    topics = admin.list_topics(timeout=TIMEOUT_S).topics
    complete = 0
    for (topic, partition), replicas in moves.items():
        found = topics.get(topic)
        p = found.partitions.get(partition) if found else None
        complete += bool(p and set(p.replicas) == set(replicas) and set(p.isrs) >= set(replicas))
    return complete


@dataclass(frozen=True)
class Progress:
    done: int
    total: int


def _file(out: Path) -> Path:
    return out / "rebalance" / "reassignment.json"


def _write(path: Path, moves: Assignment) -> None:
    partitions = [
        {"topic": t, "partition": p, "replicas": r, "log_dirs": ["any"] * len(r)}
        for (t, p), r in sorted(moves.items())
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": 1, "partitions": partitions}, indent=1) + "\n")


def _read(path: Path) -> Assignment:
    found = json.loads(path.read_text())["partitions"]
    return {(p["topic"], p["partition"]): p["replicas"] for p in found}


def rebalance(
    admin_config: dict[str, str],
    tools: KafkaTools,
    weights: dict[int, int],
    out: Path,
    say: Callable[[str], None],
    on_progress: Callable[[Progress], None],
    throttle_bytes: int = DEFAULT_THROTTLE_MB * 1_000_000,
    timeout_s: float = 3600,
) -> int:
    """Move replicas until each broker holds its share by `weights` (node id -> cores;
    0 drains a broker); how many partitions moved."""
    admin = AdminClient({**admin_config, "log_level": 0})
    path = _file(out)
    try:
        if path.exists():
            moves = _read(path)
            say(
                f"resuming the rebalance in {path}: {len(moves)} partition(s) to move; "
                "anything else asked waits for it (run rebalance again after)"
            )
            tools.reassign(path, throttle_bytes)  # joins the moves in flight, a new throttle
        else:
            moves = _moves(admin, weights)
            if not moves:
                say("balanced already: nothing to move")
                return 0
            _write(path, moves)
            say(f"moving {len(moves)} partition(s), throttled to {throttle_bytes:,} B/s a broker")
            try:
                tools.reassign(path, throttle_bytes)
            except ClusterError:
                path.unlink()  # Kafka took none of it: nothing to resume
                raise
        deadline = time.monotonic() + timeout_s
        while (done := _done(admin, moves)) < len(moves):
            on_progress(Progress(done, len(moves)))
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"{len(moves) - done} partition(s) still moving after {timeout_s:g} s; "
                    "Kafka goes on: run rebalance again to follow them"
                )
            time.sleep(1)
        on_progress(Progress(len(moves), len(moves)))
        # --verify clears the throttles only once it sees every move done; a broker's
        # metadata can lag the one asked above by a moment.
        while "still in progress" in tools.finish_reassignment(path):
            if time.monotonic() > deadline:
                raise ClusterError(f"Kafka still reports moves in progress; see {path}")
            time.sleep(1)
    except KafkaException as err:
        raise ClusterError(f"the cluster does not answer: {err.args[0].str()}") from None
    path.unlink()
    say(f"moved {len(moves)} partition(s); throttles cleared")
    return len(moves)


def _moves(admin: AdminClient, weights: dict[int, int]) -> Assignment:
    """The partitions whose replicas the target changes, with their target replicas."""
    current = assignment(admin)
    live = {b.id for b in admin.list_topics(timeout=TIMEOUT_S).brokers.values()}
    absent = sorted(b for b, w in weights.items() if w > 0 and b not in live)
    if absent:
        raise RebalanceRefused(
            f"broker(s) {', '.join(map(str, absent))} are planned but not running: "
            "roll the spec in first"
        )
    target = balanced(current, weights)
    return {k: r for k, r in target.items() if r != current[k]}


@dataclass(frozen=True)
class Running:
    """What a running `up --local` serves, from its inventory."""

    out: Path
    admin: dict[str, str]  # librdkafka settings of the admin user
    release: Release
    brokers: dict[str, tuple[int, int]]  # name -> (node id, cores)

    @classmethod
    def local(cls, out: Path) -> Running:
        try:
            inventory, admin = running(out)
        except ClusterError as err:
            raise RebalanceRefused(str(err)) from None
        path = out / "inventory.json"
        try:
            version = inventory["cluster"]["kafka_release"]
            brokers = {
                n["name"]: (int(n["node_id"]), int(n["cores"]))
                for n in inventory["nodes"]
                if "broker" in n["roles"]
            }
        except (ValueError, KeyError, TypeError):
            raise RebalanceRefused(f"{path}: not an inventory of up --local") from None
        release = next((r for r in RELEASES.values() if r.version == version), None)
        if release is None:
            raise RebalanceRefused(f"{path}: Kafka {version} is not a release this project runs")
        return cls(out, admin, release, brokers)

    def weights(self, drain: str | None = None) -> dict[int, int]:
        """Node id -> its weight, the cores; 0 for the broker to drain."""
        if drain is not None and drain not in self.brokers:
            raise RebalanceRefused(
                f"--drain {drain}: not a broker of this cluster ({', '.join(self.brokers)})"
            )
        return {i: 0 if name == drain else cores for name, (i, cores) in self.brokers.items()}

    def shares(self) -> dict[str, int]:
        """Broker name -> the replicas it holds, every topic."""
        admin = AdminClient({**self.admin, "log_level": 0})
        try:
            held = Counter(b for replicas in assignment(admin).values() for b in replicas)
        except KafkaException as err:
            raise ClusterError(f"the cluster does not answer: {err.args[0].str()}") from None
        return {name: held[node_id] for name, (node_id, _cores) in self.brokers.items()}
