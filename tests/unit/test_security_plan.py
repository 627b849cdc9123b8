"""A secured plan: protocols per listener, users and their ACLs, where secrets live, and
the keyring that generates them once."""

from __future__ import annotations

import stat

import yaml
from cryptography.hazmat.primitives.serialization import pkcs12

from infra.build import build
from infra.model.topology import Placement
from infra.secrets import Keyring, certificate_names, node_names, secret_contents
from tests.conftest import REPO, TEST_LOCAL_CORES

SECURE = str(REPO / "specs/secure-kraft.yaml")


def _settings(built, node: str) -> dict:
    found = {}
    for section in built.plan.node(node).server_properties.values():
        found |= {k: d.value for k, d in section.items()}
    return found


def test_clients_log_in_with_scram_over_tls_and_the_quorum_takes_only_certificates():
    built = build(SECURE, TEST_LOCAL_CORES)
    settings = _settings(built, "kafka-1")
    assert settings["listener.security.protocol.map"] == (
        "INTERNAL:SASL_SSL,EXTERNAL:SASL_SSL,CONTROLLER:SSL"
    )
    assert settings["listener.name.controller.ssl.client.auth"] == "required"
    assert settings["allow.everyone.if.no.acl.found"] is False
    # One principal for every node's certificate: a node added or removed changes nothing.
    assert settings["super.users"] == "User:admin;User:CN=vault Kafka node"


def test_each_group_user_gets_exactly_its_job():
    plan = build(SECURE, TEST_LOCAL_CORES).plan
    assert plan.security is not None
    users = {
        u.name: {(a.operation, a.resource, a.name) for a in u.acls} for u in plan.security.users
    }
    assert users == {
        "admin": set(),
        "siem-parsers": {
            ("read", "topic", "logs.raw"),
            ("read", "group", "siem-parsers"),
            ("write", "topic", "logs.raw.dlq"),
            ("write", "topic", "logs.parsed"),
        },
        "ingest": {("write", "topic", "logs.raw")},
        "siem-reader": {("read", "topic", "logs.parsed"), ("read", "group", "siem-reader")},
    }


def test_rendered_files_name_secrets_and_hold_none(tmp_path):
    built = build(SECURE, TEST_LOCAL_CORES, Placement.local(str(tmp_path)))
    keyring = Keyring.at(tmp_path / "secrets", "vault")
    contents = secret_contents(built.plan, keyring)
    passwords = [keyring.password(u.name) for u in built.plan.security.users]
    consumer = next(f for f in built.rendered["parsers-1"] if f.name.startswith("consumer-"))
    assert "sasl.password=${file:" in consumer.content
    for files in built.rendered.values():
        for f in files:
            assert not any(p in f.content for p in passwords), f.name
    kinds = {(node, f.kind) for node, files in contents.items() for f, _ in files}
    assert ("kafka-1", "keystore") in kinds and ("parsers-1", "passwords") in kinds
    assert ("parsers-1", "keystore") not in kinds  # a consumer needs the CA, never a node key


def test_plaintext_across_hosts_is_refused_unless_allowed(tmp_path):
    spec = yaml.safe_load((REPO / "specs/multi-host.yaml").read_text())
    spec["security"] = {"tls": False, "sasl": "none", "acls": False}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    try:
        build(str(path))
    except Exception as err:
        assert "security.tls: the cluster spans Docker hosts" in str(err)
    else:
        raise AssertionError("a multi-host spec opting out of TLS was accepted")
    spec["security"]["allow_plaintext_across_hosts"] = True
    path.write_text(yaml.safe_dump(spec))
    warnings = build(str(path)).warnings
    assert any("every listener is plaintext" in w for w in warnings)


def test_the_keyring_keeps_its_secrets_and_reissues_only_a_changed_certificate(tmp_path):
    built = build(SECURE, TEST_LOCAL_CORES, Placement.local(str(tmp_path)))
    node = built.plan.node("kafka-1")
    first = Keyring.at(tmp_path / "secrets", "vault")
    keystore, ca, password = first.keystore(node), first.ca_pem(), first.password("ingest")
    again = Keyring.at(tmp_path / "secrets", "vault")  # a later run reads what the first wrote
    assert (again.keystore(node), again.ca_pem(), again.password("ingest")) == (
        keystore,
        ca,
        password,
    )
    moved = node.model_copy(update={"address": "10.0.0.7"})
    reissued = again.keystore(moved)
    assert reissued != keystore
    sealed = again.password("keystore/kafka-1").encode()
    _key, cert, chain = pkcs12.load_key_and_certificates(reissued, sealed)
    assert cert is not None and certificate_names(cert) == node_names(moved)
    assert [c.subject for c in chain] == [first.ca()[1].subject]
    for path in (tmp_path / "secrets").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((tmp_path / "secrets").stat().st_mode) == 0o700
