"""The inventory: what verification expects to find running, and nothing else.

The plan says why; the inventory says what: per node its host, containers, ports,
the files it must hold (with sha256 of the rendered content) and the processes it
must run; per cluster its topics and consumer groups. It is the JSON that
`python -m infra plan SPEC --inventory` prints and that a stack exports.
"""

from __future__ import annotations

from typing import Any

import orjson

from infra.model.metrics import targets
from infra.model.plan import NodePlan, Plan
from infra.render.files import Rendered

# How each service's main process shows on a host (its JVM main class or module).
PROCESS_MATCH = {
    "kafka": "kafka.Kafka",
    "zookeeper": "org.apache.zookeeper.server.quorum.QuorumPeerMain",
    "consumer": "consumers",
}


def _processes(node: NodePlan) -> list[dict[str, Any]]:
    shares = {s.group: s for s in node.consumers}
    processes = []
    for service, container in node.containers.items():
        kind, _, group = service.partition(":")
        entry: dict[str, Any] = {
            "service": kind,
            "container": container,
            "match": PROCESS_MATCH[kind],
        }
        if group:
            entry |= {
                "group": group,
                "workers": shares[group].processes,
                "status_file": shares[group].status_file,
            }
        processes.append(entry)
    return processes


def build_inventory(plan: Plan, rendered: Rendered) -> dict[str, Any]:
    nodes = []
    for node in plan.nodes:
        settings = {k: d.value for s in node.server_properties.values() for k, d in s.items()}
        nodes.append(
            {
                "name": node.name,
                "host": node.host,
                "address": node.address,
                "roles": node.roles,
                "cores": node.cores,
                "node_id": node.node_id,
                "containers": node.containers,
                "ports": [p.model_dump() for p in node.ports],
                "heap_mb": {service: d.value for service, d in node.heap_mb.items()},
                "limits": {
                    service: {
                        "memory_mb": limit.memory_mb.value,
                        "cpu_shares": limit.cpu_shares.value,
                    }
                    for service, limit in node.limits.items()
                },
                "data_dirs": node.data_dirs,
                "num_partitions": settings.get(
                    "num.partitions"
                ),  # planned, brokers and controllers
                "zookeeper_id": node.zookeeper_id,
                "files": [
                    {
                        "name": f.name,
                        "container": node.containers[f.service],
                        "path": f.path,
                        "sha256": f.sha256,
                    }
                    for f in rendered[node.name]
                ],
                "processes": _processes(node),
            }
        )
    return {
        "cluster": {
            "name": plan.cluster.name,
            "placement": plan.cluster.placement,
            "kafka_release": plan.cluster.kafka_release,
            "mode": plan.cluster.mode,
            "cluster_id": plan.cluster.cluster_id,
            "bootstrap_servers": plan.cluster.bootstrap_servers,
        },
        "nodes": nodes,
        # Every metrics endpoint, as the rendered prometheus.yml scrapes it.
        "metrics": [
            {"job": job, "address": t.address, **t.labels, "series": list(t.series)}
            for job, found in targets(plan).items()
            for t in found
        ],
        "topics": [
            {
                "name": t.name,
                "partitions": t.partitions.value,
                "replication_factor": t.replication_factor.value,
                "config": {k: d.value for k, d in t.config.items()},
            }
            for t in plan.topics
        ],
        "groups": [
            {
                "group": g.group,
                "topic": g.topic,
                "sink": g.sink,
                "dlq": g.dlq,
                "partitions": g.partitions,
                "processes": g.processes.value,
                "members": [
                    {"node": n.name, "processes": s.processes}
                    for n in plan.nodes
                    for s in n.consumers
                    if s.group == g.group
                ],
            }
            for g in plan.groups
        ],
        # Who may do what (no secret: passwords and keys live in their own 0600 files).
        "security": plan.security.model_dump() if plan.security else None,
    }


def inventory_json(plan: Plan, rendered: Rendered) -> str:
    return orjson.dumps(build_inventory(plan, rendered), option=orjson.OPT_INDENT_2).decode() + "\n"
