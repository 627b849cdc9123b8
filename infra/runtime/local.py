"""The local runtime: the planned cluster and its consumer groups on this machine, no Docker.

`python -m infra up --local SPEC` plans SPEC for the local placement, writes every file
where its service reads it (under build/local/<node>/), starts the Kafka nodes (and the
ZooKeeper ensemble) as real Apache Kafka JVMs, creates the planned topics with their
planned replication, starts each consumer node's share of each group from its rendered
file, feeds demo syslog, shows the live table and writes the inventory for
`python -m infra verify`. SIGHUP applies the change `python -m infra roll --local`
asked for (infra/runtime/roll.py). Ctrl-C or SIGTERM stops the consumers (each finishes
its batch and commits), then brokers, controllers and ZooKeeper, and leaves no process
behind.
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

from confluent_kafka import KafkaException
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from consumers.produce import demo_lines, produce
from consumers.settings import prefixed, read_file
from infra.build import Built, build
from infra.model.metrics import targets
from infra.model.security import INGEST
from infra.model.topology import Placement
from infra.problems import InputError
from infra.render.files import install, monitoring, write
from infra.render.inventory import build_inventory
from infra.runtime.cluster import ClusterError, LocalCluster
from infra.runtime.maven import MavenError
from infra.runtime.roll import finish, progress, requested, roll, summary
from infra.runtime.topics import create_topics

REPO = Path(__file__).resolve().parents[2]
EXIT_FAILED = 1
MEMBER_GRACE_S = 60  # a supervisor's workers finish their batch and commit


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

    def last_line(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "no log"
        return lines[-1][:80] if lines else "an empty log"


def members(built: Built) -> list[Member]:
    return [
        Member(
            node=node.name,
            group=share.group,
            config=Path(node.config_dir) / f"consumer-{share.group}.properties",
            status=Path(share.status_file),
            log=Path(node.config_dir) / f"consumers-{share.group}.log",
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
        if m.process is not None and m.process.poll() is not None:
            # A supervisor that died would otherwise show its last figures forever.
            workers = f"[bold red]exited {m.process.returncode}[/]: {escape(m.last_line())}"
        else:
            workers = f"{f.get('workers_alive', 0)}/{f.get('processes', '?')}"
        table.add_row(
            m.node,
            m.group,
            workers,
            str(f.get("partitions_owned", 0)),
            f"{f.get('records_per_s', 0):,}",
            f"{f.get('lag', 0):,}",
            str(f.get("dlq", 0)),
            str(f.get("restarts", 0)),
        )
    table.caption = ", ".join(f"fed {n:,} demo lines to {t}" for t, n in fed.items())
    return table


class LocalRuntime:
    def __init__(self, built: Built, placement: Placement, demo: int, console: Console):
        if built.plan.cluster.placement != "local":
            raise ValueError("the local runtime runs a plan made for the local placement")
        self.built, self.placement, self.demo, self.console = built, placement, demo, console
        self.out = Path(built.plan.nodes[0].config_dir).parent
        self.members = members(built)
        self.cluster = LocalCluster(built.plan, log=console.print)
        self.stopping = threading.Event()
        self.rolling = threading.Event()
        self.fed: dict[str, int] = {}

    def stop(self, *_args) -> None:
        self.stopping.set()

    def apply_roll(self) -> None:
        """The change `roll --local` asked for (infra/runtime/roll.py), then the consumer
        shares it starts, stops or restarts (by node and group, a changed file restarts
        one); the result for the command that asked."""
        spec = requested(self.out)
        if spec is None:
            return

        def say(line: str) -> None:
            progress(self.out, line)
            self.console.print(line)

        try:
            new = build(spec, placement=self.placement)
            steps = roll(self.cluster, self.built, new, say)
            old_files = {f.path: f.content for fs in self.built.rendered.values() for f in fs}
            # Each changed Kafka node's files are in place: roll wrote them (started,
            # restarted or set online).
            install({n: [f for f in fs if f.service.startswith("consumer:")]
                     for n, fs in new.rendered.items()})  # fmt: skip
            running = {(m.node, m.group): m for m in self.members}
            planned = {(m.node, m.group): m for m in members(new)}
            for key in running.keys() - planned.keys():
                self.stop_member(running[key])
                say(f"  stopped group {key[1]} on {key[0]}: no longer planned there")
            for key, member in planned.items():
                if key not in running:
                    self.start_member(member)
                    say(f"  started group {key[1]} on {key[0]}")
                elif old_files.get(str(member.config)) != member.config.read_text():
                    member.process = running[key].process
                    self.stop_member(member)
                    self.start_member(member)
                    say(f"  restarted group {key[1]} on {key[0]} with its new file")
                else:
                    member.process = running[key].process
            self.members = list(planned.values())
            self.built = new
            self.write_inventory()
            finish(self.out, True, f"{summary(steps)} to {spec}")
        except InputError as err:
            finish(self.out, False, "; ".join(err.lines()))
        except (ClusterError, MavenError) as err:  # RollRefused among them
            finish(self.out, False, str(err))
        except KafkaException as err:  # the cluster stopped answering mid-roll
            finish(self.out, False, f"the cluster does not answer: {err.args[0].str()}")

    def start_member(self, member: Member) -> None:
        member.process = subprocess.Popen(
            [
                sys.executable, "-m", "consumers", "--config", str(member.config),
                "--status-file", str(member.status),
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,  # records of a stdout sink stay out of the live view
            stderr=member.log.open("w"),
        )  # fmt: skip

    def feed(self, bootstrap: str) -> None:
        """Demo lines into each group's topic, as a log shipper would (the ingest user)."""
        login = self.cluster.logins().get(INGEST, {})  # produce() says where to connect
        for group in self.built.plan.groups:
            config = next(m.config for m in self.members if m.group == group.group)
            producer = {**prefixed(read_file(str(config)), "producer"), **login}
            self.fed[group.topic] = 0
            produce(bootstrap, group.topic, demo_lines(self.demo), self.demo, producer)
            self.fed[group.topic] = self.demo

    def write_inventory(self) -> Path:
        inventory = build_inventory(self.built.plan, self.built.rendered)
        inventory["runtime"] = {
            "kind": "local",
            "pid": os.getpid(),  # SIGHUP: a roll (`python -m infra roll --local`)
            "out_dir": str(self.out),
            "bootstrap_servers": self.cluster.bootstrap,
            # Paths only: each file (mode 0600) holds its user's password.
            "clients": {user: str(path) for user, path in self.cluster.clients.items()},
            "kafka": self.cluster.inventory(),
            "consumers": [
                {
                    "node": m.node,
                    "group": m.group,
                    "pid": m.process.pid if m.process else None,
                    "status_file": str(m.status),
                    "log": str(m.log),
                }
                for m in self.members
            ],
        }
        path = self.out / "inventory.json"
        path.write_text(json.dumps(inventory, indent=2) + "\n")
        return path

    def monitoring(self) -> str:
        """The Prometheus config and alerts for what runs, written; one line on where."""
        write({}, self.out / "monitoring", monitoring(self.built.plan))
        jobs = targets(self.built.plan)
        endpoints = ", ".join(f"{len(t)} {job}" for job, t in jobs.items())
        return (
            f"metrics: {endpoints} endpoint(s), http://<address>/metrics (in inventory.json); "
            f"watch them: prometheus --config.file={self.out}/monitoring/prometheus.yml"
        )

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        signal.signal(signal.SIGHUP, lambda *_: self.rolling.set())
        install(self.built.rendered)
        (self.out / "plan.json").write_text(self.built.plan.to_json())
        if requested(self.out) is not None:  # asked of a runtime that stopped before it ended
            finish(self.out, False, "the runtime stopped before the roll ended; ask again")
        release = self.cluster.release.version
        try:
            self.console.print(f"starting Kafka {release} ({self.built.plan.cluster.mode})")
            bootstrap = self.cluster.start()
            self.console.print(f"cluster ready at {bootstrap}")
            kept = create_topics(self.cluster.admin_config(), self.built)
            if kept:
                self.console.print(f"topics already there, left as they are: {', '.join(kept)}")
            for member in self.members:
                self.start_member(member)
            inventory = self.write_inventory()
            self.console.print(f"inventory: {inventory}; logs: {self.out}/<node>/*.log")
            self.console.print(self.monitoring(), soft_wrap=True)  # a path to copy, unbroken
            if self.cluster.clients:
                users = ", ".join(self.cluster.clients)
                self.console.print(
                    f"clients: {self.out}/clients/<user>.properties (mode 0600) for {users}"
                )
            if self.demo:
                threading.Thread(target=self.feed, args=(bootstrap,), daemon=True).start()
            with Live(console=self.console, refresh_per_second=2) as live:
                while not self.stopping.wait(0.5):
                    if self.rolling.is_set():
                        self.rolling.clear()
                        self.apply_roll()
                    live.update(live_table(self.members, self.fed))
        except (ClusterError, MavenError) as err:
            print(f"up --local: {err}", file=sys.stderr)
            self.teardown()
            return EXIT_FAILED
        return self.teardown()

    def stop_member(self, member: Member, signalled: bool = False) -> bool:
        """SIGTERM (unless sent already), 60 s to finish its batch and commit, then
        SIGKILL; True if it exited cleanly."""
        if member.process is None:
            return True
        if not signalled and member.process.poll() is None:
            member.process.send_signal(signal.SIGTERM)
        try:
            return member.process.wait(timeout=MEMBER_GRACE_S) == 0
        except subprocess.TimeoutExpired:
            member.process.kill()
            member.process.wait()
            return False

    def teardown(self) -> int:
        clean = True
        for member in self.members:  # all at once, then each waited for
            if member.process and member.process.poll() is None:
                member.process.send_signal(signal.SIGTERM)
        for member in self.members:
            clean &= self.stop_member(member, signalled=True)
        clean &= self.cluster.stop()
        self.console.print("stopped: " + ("everything exited cleanly" if clean else "not cleanly"))
        return 0 if clean else EXIT_FAILED
