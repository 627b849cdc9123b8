"""`python -m infra top --local`: a live terminal view of a running cluster.

Brokers, partitions and ISR from the admin API; each consumer group's workers, records/s,
lag and DLQ from its supervisor's metrics endpoint (the inventory lists them). Each frame
asks again; an endpoint or a cluster that does not answer is shown so, never fatal.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Group
from rich.table import Table

from infra.runtime.running import running


def _scrape(address: str) -> dict[str, float] | None:
    """Series name -> the sum of its samples, or None when the endpoint does not answer."""
    try:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=2) as answer:
            text = answer.read().decode()
    except OSError:
        return None
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name] = found.get(sample.name, 0.0) + sample.value
    return found


@dataclass
class Top:
    inventory: dict
    admin: AdminClient
    clock: Callable[[], float] = time.monotonic
    before: dict[str, tuple[float, float]] = field(default_factory=dict)  # records, when

    @classmethod
    def local(cls, out: Path) -> Top:
        inventory, settings = running(out)
        return cls(inventory, AdminClient({**settings, "log_level": 0}))

    def brokers(self) -> Table:
        table = Table(title=f"cluster {self.inventory['cluster']['name']}: brokers")
        for column in ("broker", "node id", "leads", "replicas", "under-replicated", "offline"):
            table.add_column(column, justify="left" if column == "broker" else "right")
        try:
            metadata = self.admin.list_topics(timeout=5)
        except KafkaException as err:
            table.add_row("-", "-", "-", "-", "-", f"no answer: {err.args[0].str()}")
            return table
        partitions = [p for t in metadata.topics.values() for p in t.partitions.values()]
        for node in self.inventory["nodes"]:
            if "broker" not in node["roles"]:
                continue
            node_id = int(node["node_id"])
            led = [p for p in partitions if p.leader == node_id]
            table.add_row(
                node["name"],
                str(node_id),
                str(len(led)),
                str(sum(node_id in p.replicas for p in partitions)),
                str(sum(len(p.isrs) < len(p.replicas) for p in led)),
                "" if node_id in metadata.brokers else "not registered",
            )
        offline = sum(p.leader < 0 for p in partitions)
        table.caption = f"{len(partitions)} partitions, {offline} without a leader"
        return table

    def groups(self) -> Table:
        table = Table(title="consumer groups")
        for column in ("group", "node", "workers", "records/s", "lag", "to DLQ", "restarts"):
            table.add_column(column, justify="left" if column in ("group", "node") else "right")
        now = self.clock()
        for target in self.inventory.get("metrics", []):
            if target["job"] != "consumers":
                continue
            group = target["service"].removeprefix("consumer:")
            found = _scrape(target["address"])
            if found is None:
                table.add_row(group, target["node"], f"no answer at {target['address']}")
                continue
            records = found.get("klc_consumer_records_total", 0.0)
            key = f"{target['node']}/{group}"
            last, when = self.before.get(key, (records, now))
            rate = (records - last) / (now - when) if now > when else 0.0
            self.before[key] = (records, now)
            table.add_row(
                group,
                target["node"],
                f"{found.get('klc_consumer_workers', 0):.0f}/"
                f"{found.get('klc_consumer_workers_planned', 0):.0f}",
                f"{rate:,.0f}",
                f"{found.get('klc_consumer_lag', 0):,.0f}",
                f"{found.get('klc_consumer_dlq_records_total', 0):,.0f}",
                f"{found.get('klc_consumer_worker_restarts_total', 0):.0f}",
            )
        return table

    def frame(self) -> Group:
        return Group(self.brokers(), self.groups())
