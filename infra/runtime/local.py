"""The embedded local runtime: a planned cluster's workload on this machine, no Docker.

`python -m infra up --local SPEC` plans and renders SPEC into build/local/, starts a
Kafka-compatible broker (Tansu; or uses KAFKA_BOOTSTRAP_SERVERS), creates the planned
topics, starts each consumer node's share of each planned group from its rendered
settings file, feeds demo syslog, shows live throughput and writes the inventory
for `python -m infra verify`. Ctrl-C or SIGTERM stops everything it started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic
from rich.console import Console
from rich.live import Live
from rich.table import Table

from consumers.produce import demo_lines, produce
from consumers.properties import to_property
from consumers.settings import prefixed, read_file
from infra.build import Built
from infra.render.files import write
from infra.render.inventory import build_inventory
from infra.runtime.broker import LocalBroker

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Member:
    """One consumer node's share of one group, run as a supervisor process."""

    node: str
    group: str
    config: Path
    status: Path
    log: Path
    process: subprocess.Popen | None = None

    def figures(self) -> dict:
        try:
            return json.loads(self.status.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}


def create_topics(bootstrap: str, built: Built, console: Console) -> dict[str, dict]:
    """The planned topics, replication capped by the brokers this cluster really has.

    Returns what each topic was created with where that differs from the plan, so the
    inventory (what verification expects) says what really runs."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    metadata = admin.list_topics(timeout=10)
    brokers = len(metadata.brokers)
    wanted, capped = [], {}
    for topic in built.plan.topics:
        if topic.name in metadata.topics:
            continue
        rf = min(int(topic.replication_factor.value), brokers)
        isr = min(int(topic.config["min.insync.replicas"].value), rf)
        config = {k: to_property(d.value) for k, d in topic.config.items()}
        config["min.insync.replicas"] = str(isr)
        if rf < int(topic.replication_factor.value):
            capped[topic.name] = {"replication_factor": rf, "min.insync.replicas": isr}
            console.print(
                f"topic {topic.name}: replication factor {rf} instead of "
                f"{topic.replication_factor.value}: this cluster has {brokers} broker(s)"
            )
        wanted.append(NewTopic(topic.name, int(topic.partitions.value), rf, config=config))
    for future in admin.create_topics(wanted).values():
        future.result(timeout=30)
    return capped


def members(built: Built, out: Path) -> list[Member]:
    return [
        Member(
            node=node.name,
            group=share.group,
            config=out / node.name / f"consumer-{share.group}.properties",
            status=out / node.name / f"status-{share.group}.json",
            log=out / node.name / f"consumers-{share.group}.log",
        )
        for node in built.plan.nodes
        for share in node.consumers
    ]


def live_table(group_members: list[Member], fed: dict[str, int]) -> Table:
    table = Table(title="kafka-log-cluster local runtime (Ctrl-C stops everything)")
    for column in ("node", "group", "workers", "partitions", "records/s", "lag", "DLQ", "restarts"):
        table.add_column(column, justify="left" if column in ("node", "group") else "right")
    for m in group_members:
        f = m.figures()
        table.add_row(
            m.node,
            m.group,
            f"{f.get('workers_alive', 0)}/{f.get('processes', '?')}",
            str(f.get("partitions_owned", 0)),
            f"{f.get('records_per_s', 0):,}",
            f"{f.get('lag', 0):,}",
            str(f.get("dlq", 0)),
            str(f.get("restarts", 0)),
        )
    table.caption = ", ".join(f"fed {n:,} demo lines to {t}" for t, n in fed.items())
    return table


class LocalRuntime:
    def __init__(self, built: Built, out: Path, demo: int, console: Console):
        self.built, self.out, self.demo, self.console = built, out, demo, console
        self.members = members(built, out)
        self.broker: LocalBroker | None = None
        self.stopping = threading.Event()
        self.fed: dict[str, int] = {}

    def stop(self, *_args) -> None:
        self.stopping.set()

    def start_member(self, member: Member, bootstrap: str) -> None:
        member.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "consumers",
                "--config",
                str(member.config),
                "--bootstrap-servers",
                bootstrap,
                "--status-file",
                str(member.status),
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,  # records of a stdout sink stay out of the live view
            stderr=member.log.open("w"),
        )

    def feed(self, bootstrap: str) -> None:
        for group in self.built.plan.groups:
            config = next(m.config for m in self.members if m.group == group.group)
            producer = prefixed(read_file(str(config)), "producer")
            self.fed[group.topic] = 0
            produce(bootstrap, group.topic, demo_lines(self.demo), self.demo, producer)
            self.fed[group.topic] = self.demo

    def write_inventory(self, bootstrap: str, capped: dict[str, dict]) -> Path:
        inventory = build_inventory(self.built.plan, self.built.rendered)
        for topic in inventory["topics"]:
            if topic["name"] in capped:
                topic["replication_factor"] = capped[topic["name"]]["replication_factor"]
                topic["config"]["min.insync.replicas"] = capped[topic["name"]][
                    "min.insync.replicas"
                ]
        inventory["runtime"] = {
            "kind": "local",
            "out_dir": str(self.out.resolve()),
            "bootstrap_servers": bootstrap,
            "consumers": [
                {
                    "node": m.node,
                    "group": m.group,
                    "pid": m.process.pid if m.process else None,
                    "status_file": str(m.status),
                }
                for m in self.members
            ],
        }
        path = self.out / "inventory.json"
        path.write_text(json.dumps(inventory, indent=2) + "\n")
        return path

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        write(self.built.rendered, self.out, {"plan.json": self.built.plan.to_json()})
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        try:
            if not bootstrap:
                self.broker = LocalBroker(cluster_id=self.built.plan.cluster.cluster_id)
                bootstrap = self.broker.start()
                self.console.print(f"Tansu broker on {bootstrap} (memory only)")
            capped = create_topics(bootstrap, self.built, self.console)
            for member in self.members:
                self.start_member(member, bootstrap)
            inventory = self.write_inventory(bootstrap, capped)
            self.console.print(f"inventory: {inventory}; logs: {self.out}/<node>/consumers-*.log")
            if self.demo:
                threading.Thread(target=self.feed, args=(bootstrap,), daemon=True).start()
            with Live(console=self.console, refresh_per_second=2) as live:
                while not self.stopping.wait(0.5):
                    live.update(live_table(self.members, self.fed))
        finally:
            code = self.teardown()
        return code

    def teardown(self) -> int:
        clean = True
        for member in self.members:
            if member.process and member.process.poll() is None:
                member.process.send_signal(signal.SIGTERM)
        for member in self.members:
            if member.process:
                try:
                    clean &= member.process.wait(timeout=60) == 0
                except subprocess.TimeoutExpired:
                    member.process.kill()
                    member.process.wait()
                    clean = False
        if self.broker:
            self.broker.stop()
        self.console.print(
            "stopped: consumers " + ("exited cleanly" if clean else "did not exit cleanly")
        )
        return 0 if clean else 1
