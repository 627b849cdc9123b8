"""The plan as a table for the operator: every number, its value and why."""

from __future__ import annotations

from rich.table import Table

from consumers.properties import to_property
from infra.model.plan import Derived, Plan


def plan_table(plan: Plan) -> Table:
    cluster = plan.cluster
    table = Table(
        title=f"Plan for cluster {cluster.name}: Kafka {cluster.kafka_release}, {cluster.mode}"
    )
    table.add_column("where", no_wrap=True)
    table.add_column("setting", overflow="fold")
    table.add_column("value", overflow="fold", max_width=40)
    table.add_column("why", ratio=1)

    def block(where: str, rows: list[tuple[str, Derived]]) -> None:
        for i, (setting, d) in enumerate(rows):
            table.add_row(where if i == 0 else "", setting, to_property(d.value), d.why)
        table.add_section()

    for node in plan.nodes:
        rows = [(f"{service} heap MiB", heap) for service, heap in node.heap_mb.items()]
        for service, limit in node.limits.items():
            name = service.replace("consumer:", "group ")
            rows += [
                (f"{name} memory MiB", limit.memory_mb),
                (f"{name} CPU shares", limit.cpu_shares),
            ]
        for settings in (*node.server_properties.values(), node.zookeeper_properties):
            rows += list(settings.items())
        group_processes = {g.group: g.processes.value for g in plan.groups}
        rows += [
            (
                f"{s.group} processes",
                Derived(value=s.processes, why=f"this node's share of {group_processes[s.group]}"),
            )
            for s in node.consumers
        ]
        block(f"{node.name}\n{','.join(node.roles)}", rows)
    for topic in plan.topics:
        rows = [("partitions", topic.partitions), ("replication.factor", topic.replication_factor)]
        block(f"topic {topic.name}", rows + list(topic.config.items()))
    for group in plan.groups:
        rows = [("processes", group.processes)]
        rows += [(f"consumer {k}", d) for k, d in group.consumer.items()]
        rows += [(f"producer {k}", d) for k, d in group.producer.items()]
        block(f"group {group.group}", rows)
    if plan.security is not None:
        for user in plan.security.users:
            acls = [
                (f"{a.operation} {a.resource} ({a.pattern})", Derived(value=a.name, why=a.why))
                for a in user.acls
            ]
            rows = acls or [("super user", Derived(value=True, why=user.why))]
            block(f"user {user.name}", rows)
    return table
