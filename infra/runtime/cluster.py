"""The planned Kafka cluster as JVMs on this machine: real Apache Kafka from Maven jars.

`LocalCluster(plan).start()` runs every planned Kafka node (and, in ZooKeeper mode, the
ensemble first) from the files `render` wrote for the local placement, formats KRaft
storage once, and returns when the cluster answers: every ZooKeeper member serves and
one leads, every planned broker is registered. A node that exits or does not answer
in time is one line naming it, its log and the log's last error; whatever was started
is stopped again. `stop()` stops brokers, then controllers, then ZooKeeper, each group
at once (a combined node stopped alone waits for a quorum that is leaving), and kills
what outlives its grace period.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from consumers.lifetime import die_with_parent
from consumers.properties import parse
from consumers.settings import client_file
from infra.kafka.releases import RELEASES, Release
from infra.model.plan import NodePlan, Plan
from infra.model.security import ADMIN, scram_credential
from infra.model.topology import LOOPBACK
from infra.render.files import metrics_agent
from infra.runtime import jvm
from infra.runtime.access import AccessError, admin_settings, grant
from infra.runtime.maven import exporter_agent, kafka_libs
from infra.secrets import Keyring, client_logins, install_secrets, write_client_files

START_TIMEOUT_S = 120.0
STOP_GRACE_S = 30.0
QUORUM_GONE_S = 5.0  # a voter left without a quorum, given a moment to finish anyway
# A clean stop of a JVM that traps SIGTERM still exits 128 + 15.
CLEAN_EXITS = (0, 128 + signal.SIGTERM)


class ClusterError(RuntimeError):
    """The cluster cannot start; the message is the one line for the operator."""


@dataclass
class Service:
    """One JVM of the plan: a node's Kafka or ZooKeeper."""

    node: NodePlan
    kind: str  # "kafka" or "zookeeper"
    log: Path
    process: subprocess.Popen | None = None

    @property
    def name(self) -> str:
        return self.node.name if self.kind == "kafka" else f"{self.node.name}/zookeeper"

    @property
    def config(self) -> str:
        file = "server.properties" if self.kind == "kafka" else "zookeeper.properties"
        return f"{self.node.config_dir}/{file}"

    @property
    def client_port(self) -> str:
        """The listener its clients use: a broker's EXTERNAL, a controller's own, ZooKeeper's."""
        if self.kind == "zookeeper":
            return "zookeeper-client"
        return "EXTERNAL" if "broker" in self.node.roles else "CONTROLLER"

    def port(self, name: str) -> int:
        return next(p.container for p in self.node.ports if p.name == name)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port(self.client_port)}"

    def last_error(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "no log written"
        errors = [line for line in lines if " ERROR " in line or "Exception" in line]
        return (errors or lines or ["an empty log"])[-1].strip()[:300]

    def failed(self, what: str) -> ClusterError:
        return ClusterError(f"{self.name} {what}; {self.log} says: {self.last_error()}")


def zookeeper_mode(port: int) -> str | None:
    """leader, follower or standalone, from ZooKeeper's `srvr` command; None if silent."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"srvr")
            answer = b""
            while chunk := conn.recv(4096):
                answer += chunk
    except OSError:
        return None
    modes = [
        line.split(":", 1)[1].strip()
        for line in answer.decode().splitlines()
        if line.startswith("Mode:")
    ]
    return modes[0] if modes else None


def ephemeral_ports() -> range:
    """The ports the kernel hands to outgoing connections (net.ipv4.ip_local_port_range).
    A listener planned there can lose its free port to any client between check and bind."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999  # Linux's default
    return range(low, high + 1)


def port_taken(port: int) -> bool:
    with socket.socket() as probe:
        # As Kafka and ZooKeeper bind: a port left in TIME_WAIT by a stopped node is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


class LocalCluster:
    def __init__(self, plan: Plan, log: Callable[[str], None] = print):
        if plan.cluster.placement != "local":
            raise ValueError("LocalCluster runs a plan made for the local placement")
        self.plan, self.say = plan, log
        self.release: Release = RELEASES[plan.cluster.kafka_version]
        self.services = [
            Service(node, kind, Path(node.config_dir) / f"{kind}.log")
            for kind in ("zookeeper", "kafka")
            for node in plan.nodes
            if kind in node.containers
        ]
        self.libs: Path | None = None
        self.out = Path(plan.nodes[0].config_dir).parent
        # A secured plan's CA, keys and passwords, kept across runs under <out>/secrets/.
        secured = plan.security is not None
        self.keyring = Keyring.at(self.out / "secrets", plan.cluster.name) if secured else None
        # User -> its client file under <out>/clients/ (mode 0600), written once started.
        self.clients: dict[str, Path] = {}

    # -- what runs

    def of(self, kind: str) -> list[Service]:
        return [s for s in self.services if s.kind == kind]

    @property
    def bootstrap(self) -> str:
        return self.plan.cluster.bootstrap_servers

    def admin_config(self) -> dict[str, str]:
        """librdkafka's settings to reach the cluster as its admin (plaintext: just where)."""
        return admin_settings(self.plan, self.keyring)

    def logins(self) -> dict[str, dict[str, str]]:
        """User -> the settings of its client file, to connect as that user."""
        return {user: client_file(str(path)) for user, path in self.clients.items()}

    def brokers(self) -> list[Service]:
        return [s for s in self.of("kafka") if "broker" in s.node.roles]

    # -- start

    def start(self, timeout_s: float = START_TIMEOUT_S) -> str:
        self._check_identity()
        self._check_ports()
        self.libs = kafka_libs(self.release)
        if self.keyring is not None:
            install_secrets(self.plan, self.keyring)
        try:
            if self.of("zookeeper"):
                self._start_all(self.of("zookeeper"))
                self._wait(
                    "the ZooKeeper ensemble to elect a leader", self._ensemble_ready, timeout_s
                )
                self._zookeeper_admin()
            if self.plan.cluster.mode == "kraft":
                self._format_storage(self.of("kafka"))
            self._start_all(self.of("kafka"))
            self._wait("every planned broker to register", self._brokers_ready, timeout_s)
            if self.keyring is not None:
                grant(self.plan, self.keyring)
                logins = client_logins(self.plan, self.keyring)
                clients = self.out / "clients"
                self.clients = write_client_files(logins, self.keyring.ca_pem(), clients)
        except AccessError as err:
            self.stop()
            raise ClusterError(str(err)) from None
        except BaseException:
            self.stop()
            raise
        return self.bootstrap

    def _check_identity(self) -> None:
        """Refuse, before anything starts, a plan whose ids differ from what the nodes'
        data already holds (a node inserted, removed or moved in the spec): Kafka would
        refuse to start on it, and the fix is an `id:` line per node."""
        key = "node.id" if self.plan.cluster.mode == "kraft" else "broker.id"
        changed = []
        for service in self.of("kafka"):
            meta = Path(service.node.data_dirs["kafka"]) / "meta.properties"
            if not meta.exists():
                continue
            stored = {e.key: e.value.strip() for e in parse(meta.read_text())}.get(key)
            if stored is not None and stored != str(service.node.node_id):
                changed.append((service.node.name, stored, service.node.node_id))
        if changed:
            moves = ", ".join(
                f"{name} holds {stored} (planned {now})" for name, stored, now in changed
            )
            fixes = "; ".join(f"{name}: id: {stored}" for name, stored, _ in changed)
            raise ClusterError(
                f"the spec renumbers nodes whose data keeps its {key}: {moves}; "
                f"a node was inserted, removed or moved in the list: add {fixes} to the spec"
            )

    def _check_ports(self) -> None:
        ephemeral = ephemeral_ports()
        for node in self.plan.nodes:
            for port in node.ports:
                if port_taken(port.container):
                    raise ClusterError(
                        f"port {port.container} ({node.name} {port.name}) on 127.0.0.1 is taken: "
                        "stop what holds it, or plan another block with --port-base"
                    )
        planned = [p.container for node in self.plan.nodes for p in node.ports]
        if any(port in ephemeral for port in planned):
            self.say(
                f"warning: ports {min(planned)}-{max(planned)} overlap the kernel's ephemeral "
                f"range {ephemeral.start}-{ephemeral.stop - 1} (net.ipv4.ip_local_port_range): "
                "a client connection can take one before its node binds it; plan a block below "
                f"{ephemeral.start} with --port-base"
            )

    def _command(self, service: Service) -> list[str]:
        assert self.libs is not None
        heap = jvm.heap_flags(service.kind, int(service.node.heap_mb[service.kind].value))
        main = jvm.KAFKA_MAIN if service.kind == "kafka" else jvm.ZOOKEEPER_MAIN
        agent = metrics_agent(service.node, service.kind, str(exporter_agent()), LOOPBACK)
        return jvm.java(self.release, self.libs, main, [service.config], heap, agent=agent)

    def _format_storage(self, services: list[Service]) -> None:
        """KRaft storage, once per data dir (--ignore-formatted), all nodes at once."""
        assert self.libs is not None
        running = []
        for service in services:
            args = [
                "format",
                "-t",
                self.plan.cluster.cluster_id,
                "-c",
                service.config,
                "--ignore-formatted",
            ]
            if (scram := self._admin_scram(ADMIN)) is not None:
                # The brokers' own login, there before any of them starts (KIP-900).
                args += ["--add-scram", scram]
            command = jvm.java(self.release, self.libs, jvm.STORAGE_TOOL, args, ["-Xmx256m"])
            with service.log.open("a") as log:
                running.append(
                    (service, subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
                )
        for service, process in running:
            if process.wait() != 0:
                raise service.failed("could not format its storage")

    def _admin_scram(self, user: str | None = None) -> str | None:
        security, keyring = self.plan.security, self.keyring
        if security is None or security.sasl is None or keyring is None:
            return None
        return scram_credential(security, keyring.password(ADMIN), user)

    def _zookeeper_admin(self) -> None:
        """ZooKeeper mode: the admin's SCRAM credential, written to ZooKeeper before any
        broker needs it to log in to another."""
        if (scram := self._admin_scram()) is None:
            return
        assert self.libs is not None
        connect = ",".join(f"127.0.0.1:{s.port('zookeeper-client')}" for s in self.of("zookeeper"))
        args = ["--zookeeper", connect, "--alter", "--add-config", scram]
        args += ["--entity-type", "users", "--entity-name", ADMIN]
        command = jvm.java(self.release, self.libs, jvm.CONFIG_COMMAND, args, ["-Xmx256m"])
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ClusterError(f"ZooKeeper refused the admin user: {last[0][:300]}")

    def _start_all(self, services: list[Service]) -> None:
        for service in services:
            with service.log.open("a") as log:
                service.process = subprocess.Popen(
                    self._command(service),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # Ctrl-C reaches the runtime, which stops in order
                    preexec_fn=die_with_parent,  # no JVM outlives a killed runtime
                )
            self.say(f"  started {service.name} (pid {service.process.pid}), log {service.log}")

    def _wait(self, what: str, ready: Callable[[], bool], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            for service in self.services:
                if service.process is not None and service.process.poll() is not None:
                    raise service.failed(
                        f"exited with code {service.process.returncode} while starting"
                    )
            if ready():
                return
            if time.monotonic() > deadline:
                logs = ", ".join(str(s.log) for s in self.services)
                raise ClusterError(
                    f"timed out after {timeout_s:g} s waiting for {what}; see {logs}"
                )
            time.sleep(0.5)

    def _ensemble_ready(self) -> bool:
        modes = [zookeeper_mode(s.port("zookeeper-client")) for s in self.of("zookeeper")]
        return None not in modes and (modes == ["standalone"] or modes.count("leader") == 1)

    def _brokers_ready(self) -> bool:
        """Each broker, asked alone, knows every broker and a controller. Asking one
        broker is not enough: one just started may not yet (in ZooKeeper mode, until the
        controller's UpdateMetadata reaches it), and a request bound for the controller
        that a client bootstrapped from it can wait out its timeout (CI once saw the
        users' AlterUserScramCredentials do so in ZooKeeper mode)."""
        brokers = self.brokers()
        for broker in brokers:
            admin = AdminClient(
                {**self.admin_config(), "bootstrap.servers": broker.address, "log_level": 0}
            )
            try:
                metadata = admin.list_topics(timeout=2)
            except KafkaException:
                return False
            if len(metadata.brokers) != len(brokers) or metadata.controller_id < 0:
                return False
        return True

    def service(self, node: str, kind: str = "kafka") -> Service:
        return next(s for s in self.services if (s.node.name, s.kind) == (node, kind))

    def restart(self, service: Service, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start a node that stopped (or was killed) and wait until every broker is back."""
        if service.process is not None and service.process.poll() is None:
            raise ClusterError(f"{service.name} is still running (pid {service.process.pid})")
        self._start_all([service])
        self._wait(f"{service.name} to rejoin", self._brokers_ready, timeout_s)

    def add(self, node: NodePlan, timeout_s: float = START_TIMEOUT_S) -> Service:
        """A new broker (its files installed) started into the running cluster."""
        service = Service(node, "kafka", Path(node.config_dir) / "kafka.log")
        self.services.append(service)
        try:
            if self.plan.cluster.mode == "kraft":
                self._format_storage([service])
            self._start_all([service])
            self._wait(f"{service.name} to register", self._brokers_ready, timeout_s)
        except BaseException:  # the cluster as it was: a later roll adds it again
            self.remove(service.name)
            raise
        return service

    def remove(self, name: str, grace_s: float = STOP_GRACE_S) -> bool:
        """A broker stopped and out of the cluster's services; True if it stopped cleanly.
        Its data directory stays where it was."""
        service = self.service(name)
        clean = self._stop_all([service], grace_s) if service.process else True
        self.services.remove(service)
        return clean

    # -- stop

    def stop(self, grace_s: float = STOP_GRACE_S) -> bool:
        """Brokers, then controllers and combined nodes, then ZooKeeper; True if every JVM
        stopped within its grace period."""
        kafka = self.of("kafka")
        phases = [
            [s for s in kafka if s.node.roles and "controller" not in s.node.roles],
            [s for s in kafka if "controller" in s.node.roles],
            self.of("zookeeper"),
        ]
        voters = len(phases[1])
        clean = True
        for phase, quorum in zip(phases, (0, voters, 0), strict=True):
            running = [s for s in phase if s.process and s.process.poll() is None]
            clean &= self._stop_all(running, grace_s, quorum)
        return clean

    def _stop_all(self, services: list[Service], grace_s: float, voters: int = 0) -> bool:
        """SIGTERM to all, then each waited for; one that outlives the grace is killed.
        `voters`: the quorum's size when these are its members. Once a majority of them
        has exited, a member still running waits for a controller that no longer exists
        (KRaft's controlled shutdown waits up to 5 minutes for one): it is killed after
        QUORUM_GONE_S, and that is no fault, since the whole quorum is stopping."""
        for service in services:
            assert service.process is not None
            service.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        clean, running, majority_gone = True, list(services), None
        while running:
            for service in list(running):
                assert service.process is not None
                if (code := service.process.poll()) is not None:
                    running.remove(service)
                    clean &= code in CLEAN_EXITS
            now = time.monotonic()
            if voters and majority_gone is None and len(services) - len(running) > voters // 2:
                majority_gone = now
            orphaned = majority_gone is not None and now - majority_gone > QUORUM_GONE_S
            if running and (orphaned or now > deadline):
                for service in running:
                    assert service.process is not None
                    service.process.kill()
                    service.process.wait()
                    if orphaned:
                        self.say(f"  {service.name} waited for a quorum that had stopped: killed")
                    else:
                        self.say(f"  {service.name} did not stop within {grace_s:g} s: killed")
                        clean = False
                return clean
            time.sleep(0.1)
        return clean

    # -- what verification reads

    def inventory(self) -> list[dict]:
        """runtime.kafka of the inventory: one entry per JVM."""
        entries = []
        for service in self.services:
            node = service.node
            kafka = service.kind == "kafka"
            entries.append(
                {
                    "node": node.name,
                    "service": service.kind,
                    "node_id": node.node_id if kafka else node.zookeeper_id,
                    "roles": node.roles if kafka else ["zookeeper"],
                    "pid": service.process.pid if service.process else None,
                    "bootstrap": service.address,
                    "data_dir": node.data_dirs[service.kind],
                    "log": str(service.log),
                    "version": self.release.version if kafka else self.release.zookeeper,
                }
            )
        return entries
