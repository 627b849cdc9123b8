"""What every planned component shows Prometheus, and the alerts the plan derives from it.

Kafka and ZooKeeper JVMs start with the Prometheus JMX exporter agent and the rules
below (the agent adds the JVM's own series: heap, GC, threads); each consumer group's
supervisor serves its own `klc_consumer_*` series. `targets(plan)` is every endpoint a
Prometheus on the operator's machine scrapes, labelled with cluster, node and service;
`alerts(plan)` the rules on them, each with the reason for how long it waits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from infra.model.plan import Derived, NodePlan, Plan
from infra.model.topology import KAFKA_METRICS, ZOOKEEPER_METRICS

SCRAPE_INTERVAL_S = 15


@dataclass(frozen=True)
class ExportRule:
    """One JMX exporter rule: the MBeans it reads and the series it makes of them."""

    mbeans: str  # ObjectName pattern: the agent queries only these
    pattern: str  # the exporter's `domain<key=value, ...><>attribute` regex
    name: str
    type: str  # GAUGE or COUNTER
    help: str
    labels: dict[str, str] = field(default_factory=dict)


EXPORT_RULES = {
    "kafka": (
        ExportRule(
            "kafka.server:type=ReplicaManager,*",
            r"kafka.server<type=ReplicaManager, name=(UnderReplicatedPartitions|"
            r"UnderMinIsrPartitionCount|OfflineReplicaCount|PartitionCount|LeaderCount)><>Value",
            "kafka_server_replicamanager_$1",
            "GAUGE",
            "partitions this broker holds, leads, and those lacking an in-sync replica",
        ),
        ExportRule(
            "kafka.controller:type=KafkaController,*",
            r"kafka.controller<type=KafkaController, name=(ActiveControllerCount|"
            r"OfflinePartitionsCount|GlobalPartitionCount|ActiveBrokerCount|FencedBrokerCount)"
            r"><>Value",
            "kafka_controller_kafkacontroller_$1",
            "GAUGE",
            "1 on the active controller; the partitions without a leader it sees",
        ),
        ExportRule(
            "kafka.server:type=BrokerTopicMetrics,name=*",
            r"kafka.server<type=BrokerTopicMetrics, name=(MessagesInPerSec|BytesInPerSec|"
            r"BytesOutPerSec)><>Count",
            "kafka_server_brokertopicmetrics_$1_total",
            "COUNTER",
            "records and bytes in and out of this broker, over all topics",
        ),
        ExportRule(
            "kafka.server:type=raft-metrics",
            r"kafka.server<type=raft-metrics><>(current-leader|current-epoch|high-watermark)",
            "kafka_server_raft_$1",
            "GAUGE",
            "KRaft: the quorum's leader and epoch as this node sees them",
        ),
    ),
    "zookeeper": (
        ExportRule(
            "org.apache.ZooKeeperService:*",
            r"org.apache.ZooKeeperService<name0=ReplicatedServer_id\d+, name1=replica.\d+, "
            r"name2=(Leader|Follower)><>(OutstandingRequests|AvgRequestLatency|"
            r"NumAliveConnections)",
            "zookeeper_$2",
            "GAUGE",
            "an ensemble member's queue, latency and connections, by its role",
            {"member": "$1"},
        ),
        ExportRule(
            "org.apache.ZooKeeperService:*",
            r"org.apache.ZooKeeperService<name0=StandaloneServer_port\d+><>"
            r"(OutstandingRequests|AvgRequestLatency|NumAliveConnections)",
            "zookeeper_$1",
            "GAUGE",
            "a standalone server's queue, latency and connections",
            {"member": "Standalone"},
        ),
    ),
}
METRICS_PORT = {"kafka": KAFKA_METRICS, "zookeeper": ZOOKEEPER_METRICS}
AGENT_IN_CONTAINER = "/opt/jmx-exporter/jmx_prometheus_javaagent.jar"  # uploaded there


@dataclass(frozen=True)
class Target:
    """One scrape target: where it answers, the labels its series get, and series it must
    serve (verify asks for them)."""

    address: str
    labels: dict[str, str]
    series: tuple[str, ...]


def _expected(plan: Plan, node: NodePlan, service: str) -> tuple[str, ...]:
    """A series each kind of endpoint serves once it runs: a broker's replica manager, a
    controller's (every broker's, in ZooKeeper mode) controller state."""
    if service == "zookeeper":
        return ("zookeeper_numaliveconnections",)
    if service != "kafka":
        return ("klc_consumer_records_total", "klc_consumer_workers")
    found = []
    if "broker" in node.roles:
        found.append("kafka_server_replicamanager_underreplicatedpartitions")
    if "controller" in node.roles or plan.cluster.mode == "zookeeper":
        found.append("kafka_controller_kafkacontroller_activecontrollercount")
    return tuple(found)


def _published(node: NodePlan, port: str) -> str:
    found = next(p for p in node.ports if p.name == port)
    return f"{node.address}:{found.published or found.container}"


def targets(plan: Plan) -> dict[str, list[Target]]:
    """Job (kafka, zookeeper, consumers) -> its targets, in plan order."""
    jobs: dict[str, list[Target]] = {"kafka": [], "zookeeper": [], "consumers": []}
    cluster = plan.cluster.name
    for node in plan.nodes:
        for service, port in METRICS_PORT.items():
            if any(p.name == port for p in node.ports):
                labels = {"cluster": cluster, "node": node.name, "service": service}
                expected = _expected(plan, node, service)
                jobs[service].append(Target(_published(node, port), labels, expected))
        for share in node.consumers:
            labels = {"cluster": cluster, "node": node.name, "service": f"consumer:{share.group}"}
            expected = _expected(plan, node, labels["service"])
            jobs["consumers"].append(Target(share.metrics_target, labels, expected))
    return {job: found for job, found in jobs.items() if found}


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: Derived  # how long the condition holds before it fires, and why
    severity: str  # critical: data at risk or the pipeline stopped; warning: it degrades
    summary: str  # the alert's one line, with {{ $labels }} templates
    description: str  # what it means and what to do, for the README and the alert


def alerts(plan: Plan) -> list[Alert]:
    c = f'cluster="{plan.cluster.name}"'
    found = [
        Alert(
            "KafkaTargetDown",
            f"up{{{c}}} == 0",
            Derived(value="1m", why="four scrapes in a row: one lost scrape is not a node down"),
            "critical",
            "{{ $labels.service }} on {{ $labels.node }} does not answer its metrics scrape",
            "A planned node or consumer group is down or unreachable: its process, container or "
            "host is gone. Check its log (python -m infra verify names it).",
        ),
        Alert(
            "KafkaUnderReplicatedPartitions",
            f"sum by (cluster, node) (kafka_server_replicamanager_underreplicatedpartitions{{{c}}})"
            " > 0",
            Derived(
                value="5m",
                why="longer than a rolling restart keeps a broker's followers behind",
            ),
            "warning",
            "{{ $labels.node }} leads {{ $value }} partition(s) missing an in-sync replica",
            "A follower is down or cannot keep up; one more failure takes those partitions "
            "below min.insync.replicas and producers with acks=all stop. Find the broker that "
            "left the ISR.",
        ),
        Alert(
            "KafkaOfflinePartitions",
            f"max by (cluster) (kafka_controller_kafkacontroller_offlinepartitionscount{{{c}}})"
            " > 0",
            Derived(value="1m", why="a leader election takes seconds; a minute is an outage"),
            "critical",
            "{{ $value }} partition(s) have no leader: they take no writes and serve no reads",
            "Every replica of those partitions is down. Bring back their brokers; do not enable "
            "unclean leader election on a log pipeline, it loses records.",
        ),
        Alert(
            "KafkaNoActiveController",
            f"sum by (cluster) (kafka_controller_kafkacontroller_activecontrollercount{{{c}}})"
            " != 1",
            Derived(value="1m", why="an election takes seconds; a minute without one is stuck"),
            "critical",
            "{{ $value }} active controllers: the cluster cannot elect leaders or change metadata",
            "No controller (or, briefly, two): the quorum (KRaft) or ZooKeeper has lost its "
            "majority. Restore the missing controllers or ZooKeeper members.",
        ),
    ]
    for group in plan.groups:
        g = f'{c}, group="{group.group}"'
        batch = int(group.consumer["max.poll.records"].value)
        floor = batch * int(group.processes.value)
        by = "sum by (cluster, group)"  # every alert names its cluster (and group)
        lag = f"{by} (klc_consumer_lag{{{g}}})"
        found += [
            Alert(
                "ConsumerLagGrowing",
                f"{lag} > {floor} and delta({lag}[10m:1m]) > 0",
                Derived(
                    value="10m",
                    why=f"lag above one batch per process ({batch} x {group.processes.value}) "
                    "and still rising for 10 minutes: the group falls behind, not a burst",
                ),
                "warning",
                f"group {group.group} is {{{{ $value }}}} records behind and falling further",
                "The workers parse slower than records arrive: the topic's retention will "
                "delete records before they are read. Add consumer cores (processes follow "
                "partitions) or find the slow sink.",
            ),
            Alert(
                "ConsumerDeadLetterRate",
                f"{by} (rate(klc_consumer_dlq_records_total{{{g}}}[5m])) "
                f"> 0.01 * {by} (rate(klc_consumer_records_total{{{g}}}[5m]))",
                Derived(
                    value="5m", why="over 1% of records malformed for 5 minutes: a source changed"
                ),
                "warning",
                f"group {group.group} sends over 1% of its records to {group.dlq}",
                f"A log source sends lines the parsers do not recognise; they are kept in "
                f"{group.dlq}, not lost. Read a few to see which source changed.",
            ),
            Alert(
                "ConsumerWorkerCrashLooping",
                f"max by (cluster, group, node, worker) (klc_consumer_crash_looping{{{g}}}) == 1",
                Derived(value="0m", why="the supervisor already waited for 5 deaths in a minute"),
                "critical",
                f"worker {{{{ $labels.worker }}}} of group {group.group} on {{{{ $labels.node }}}} "
                "keeps dying",
                "A worker died five times within a minute; its partitions are not consumed "
                "while it restarts. Its reason is in the supervisor's log.",
            ),
        ]
    return found
