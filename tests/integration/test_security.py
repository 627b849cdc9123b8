"""A secured plan on real Kafka: what is locked is locked, and the pipeline still runs.

specs/secure-kraft.yaml runs on the local runtime's JVMs: TLS on every listener, SCRAM
users, ACLs that deny by default. Each lock is tried from outside with the key that
should not open it (no TLS, a wrong password, a user without the ACL), and each user
does exactly its job.
"""

from __future__ import annotations

import socket
import ssl
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient

from consumers.produce import demo_lines, produce
from infra.provision.components import kafka as kafka_component
from infra.runtime.topics import create_topics
from infra.secrets import Keyring
from tests.conftest import REPO
from tests.infra.locks import read_error, refusal, served_subject, write_error
from tests.integration.kafka_helpers import Deployment, local_cluster, read_topic, wait_for

SECURE = REPO / "specs/secure-kraft.yaml"


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    out = tmp_path_factory.mktemp("secured")
    with local_cluster(SECURE, out / "local") as (cluster, built):
        create_topics(cluster.admin_config(), built)
        yield cluster, built, cluster.logins()


def test_every_client_port_refuses_plaintext_and_a_wrong_password(secured):
    cluster, _built, clients = secured
    for broker in cluster.brokers():
        address = f"127.0.0.1:{broker.port('EXTERNAL')}"
        assert refusal({"bootstrap.servers": address}) is not None, address
        wrong = {**clients["siem-reader"], "bootstrap.servers": address}
        wrong["sasl.password"] = "not-" + wrong["sasl.password"]
        refused = refusal(wrong)
        assert refused is not None and refused.code() == KafkaError._AUTHENTICATION, address
        assert refusal({**clients["siem-reader"], "bootstrap.servers": address}) is None


def test_each_user_does_exactly_its_job(secured):
    _cluster, _built, clients = secured
    denied = KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert write_error(clients["ingest"], "logs.raw") is None
    assert read_error(clients["ingest"], "logs.raw") == denied  # a shipper reads nothing
    assert write_error(clients["siem-parsers"], "logs.raw") == denied  # its input: read only
    assert read_error(clients["siem-parsers"], "logs.raw") is None
    assert read_error(clients["siem-reader"], "logs.raw") == denied
    assert write_error(clients["siem-reader"], "logs.parsed") == denied


def test_workers_parse_over_sasl_ssl_as_their_own_user(secured, tmp_path):
    cluster, built, clients = secured
    node = next(n for n in built.plan.nodes if n.consumers)
    config = f"{node.config_dir}/consumer-siem-parsers.properties"
    sent, refused = produce(
        cluster.bootstrap, "logs.raw", demo_lines(2000), 2000, clients["ingest"]
    )
    assert (sent, refused) == (2000, [])
    deployment = Deployment(tmp_path, "--config", config, "--processes", "2")
    try:
        # The SIEM's reader sees the parsed records (and, as the ACLs say, nothing else).
        parsed = wait_for(
            lambda: (
                len(read_topic(cluster.bootstrap, "logs.parsed", login=clients["siem-reader"]))
                >= 2000
            ),
            120,
            lambda: f"2000 parsed records; supervisor: {deployment.log[-500:]}",
        )
    finally:
        code = deployment.stop()
    assert parsed and code == 0, deployment.log


def test_a_consumer_with_a_wrong_password_stops_with_one_line(secured, tmp_path):
    _cluster, built, _clients = secured
    node = next(n for n in built.plan.nodes if n.consumers)
    passwords = next(f.path for f in node.secret_files if f.kind == "passwords")
    wrong = tmp_path / "wrong.passwords"
    wrong.write_text("password=not-the-password\n")
    original = Path(f"{node.config_dir}/consumer-siem-parsers.properties").read_text()
    config = tmp_path / "consumer.properties"
    config.write_text(original.replace(passwords, str(wrong)))
    deployment = Deployment(tmp_path, "--config", str(config), "--connect-timeout", "10")
    code = deployment.process.wait(timeout=60)
    lines = deployment.log.strip().splitlines()
    assert code == 2 and len(lines) == 1, deployment.log
    assert "refused the login of user 'siem-parsers'" in lines[0]


def test_the_served_certificate_chains_to_the_cluster_ca_and_names_the_host(secured):
    cluster, _built, clients = secured
    ca = clients["admin"]["ssl.ca.location"]
    for broker in cluster.brokers():
        address = f"127.0.0.1:{broker.port('EXTERNAL')}"
        assert served_subject(address, ca) == "CN=vault Kafka node"  # its host: a SAN
    other_ca = Keyring.at(cluster.out / "another-ca", "another").ca_pem()
    (cluster.out / "another-ca.pem").write_bytes(other_ca)
    with pytest.raises(ssl.SSLCertVerificationError):
        served_subject(
            f"127.0.0.1:{cluster.brokers()[0].port('EXTERNAL')}",
            str(cluster.out / "another-ca.pem"),
        )


def test_no_secret_is_in_a_rendered_file_and_every_secret_is_private(secured):
    cluster, built, clients = secured
    passwords = {c["sasl.password"] for c in clients.values()}
    rendered = [f.content for files in built.rendered.values() for f in files]
    rendered.append(built.plan.to_json())
    for text in rendered:
        assert not any(p in text for p in passwords)
    private = [Path(f.path) for n in built.plan.nodes for f in n.secret_files]
    private += [p for p in (cluster.out / "secrets").iterdir()]
    private += list(cluster.clients.values())
    for path in private:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_zookeeper_mode_brokers_log_in_to_each_other_with_scram(tmp_path):
    """Kafka 3.9 in ZooKeeper mode: the admin's credential is written to ZooKeeper before
    the brokers start, so replication (RF 3) works over SASL_SSL; ACLs live in ZooKeeper."""
    spec = yaml.safe_load((REPO / "specs/zookeeper-3.9.yaml").read_text())
    spec["security"] = {"users": [{"name": "auditor", "read": ["app.logs"]}]}
    with local_cluster(spec, tmp_path / "local") as (cluster, built):
        create_topics(cluster.admin_config(), built)
        clients = cluster.logins()
        assert write_error(clients["ingest"], "app.logs") is None
        assert read_error(clients["auditor"], "app.logs") is None
        assert write_error(clients["auditor"], "app.logs") == KafkaError.TOPIC_AUTHORIZATION_FAILED
        address = f"127.0.0.1:{cluster.brokers()[0].port('EXTERNAL')}"
        assert refusal({"bootstrap.servers": address}) is not None
        admin = AdminClient({**cluster.admin_config(), "log_level": 0})
        topic = admin.list_topics("app.logs", timeout=10).topics["app.logs"]
        assert all(len(p.isrs) == 3 for p in topic.partitions.values())


def test_a_password_deleted_from_the_keyring_is_rotated_on_the_next_start(tmp_path):
    """The README's rotation: stop, delete the user's line, start: a new password works,
    the old one is refused."""
    out = tmp_path / "local"
    with local_cluster(SECURE, out) as (cluster, _built):
        old = cluster.logins()["siem-reader"]
    keyring = out / "secrets" / "passwords.properties"
    lines = keyring.read_text().splitlines(keepends=True)
    keyring.write_text("".join(line for line in lines if not line.startswith("siem-reader=")))
    with local_cluster(SECURE, out) as (cluster, _built):
        new = cluster.logins()["siem-reader"]
        assert new["sasl.password"] != old["sasl.password"]
        assert refusal(new) is None
        stale = {**new, "sasl.password": old["sasl.password"]}
        refused = refusal(stale)
        assert refused is not None and refused.code() == KafkaError._AUTHENTICATION


def test_the_tls_healthcheck_passes_on_tls_listeners_and_fails_on_a_silent_port(secured):
    """The program's healthcheck for a secured broker and controller, run here against
    the secured cluster's INTERNAL (SASL_SSL) and CONTROLLER (mutual TLS) listeners."""
    cluster, built, _clients = secured
    node = built.plan.node("kafka-1")
    script = kafka_component.health(built.plan, node)[-1]
    assert kafka_component.TLS_HELLO in script and "/dev/tcp/127.0.0.1/9092 " in script
    service = cluster.service("kafka-1")

    def probe(port: int) -> int:
        at = script.replace("/127.0.0.1/9092 ", f"/127.0.0.1/{port} ")
        return subprocess.run(["bash", "-c", at], timeout=30).returncode

    assert probe(service.port("INTERNAL")) == 0
    assert probe(service.port("CONTROLLER")) == 0
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        assert probe(silent.getsockname()[1]) != 0
