"""Verify's security checks: each lock the plan puts on the cluster, tried from outside.

A plaintext client on every client port, a wrong password, a user reading what no ACL
grants it: each must be refused. The ACLs the brokers hold must be the planned ones,
each group's user must reach its topic and group, and every broker must serve a
certificate the cluster CA signed for the address clients dial. A plan without
`security:` has none of these locks: its checks are reported as not run.
"""

from __future__ import annotations

import json
import ssl

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

from tests.infra.locks import read_error, refusal, served_subject

PLAINTEXT_PLAN = "the plan has no security: its listeners are plaintext by design"


def _security(inventory: dict, not_run, name: str, needs: str = "") -> dict:
    security = inventory.get("security")
    if security is None:
        not_run("cluster", name, PLAINTEXT_PLAN)
    if needs and not security[needs]:
        not_run("cluster", name, f"the plan sets {needs} off")
    return security


def _addresses(cluster) -> list[str]:
    return cluster.bootstrap.split(",")


def test_client_ports_refuse_plaintext(inventory, cluster, check, not_run):
    name = "every client port refuses a plaintext client"
    _security(inventory, not_run, name, needs="tls")
    outcome = {
        a: "refused" if refusal({"bootstrap.servers": a}) else "served" for a in _addresses(cluster)
    }
    check("cluster", name, dict.fromkeys(outcome, "refused"), outcome)


def test_a_wrong_password_is_refused(inventory, cluster, check, not_run):
    name = "every client port refuses a wrong password"
    _security(inventory, not_run, name, needs="sasl")
    outcome = {}
    for address in _addresses(cluster):
        wrong = {**cluster.login("admin"), "bootstrap.servers": address}
        wrong["sasl.password"] = "not-" + wrong["sasl.password"]
        refused = refusal(wrong)
        outcome[address] = (
            "authentication failed"
            if refused is not None and refused.code() == KafkaError._AUTHENTICATION
            else str(refused or "served")
        )
    check("cluster", name, dict.fromkeys(outcome, "authentication failed"), outcome)


def _held_acls(cluster) -> set[tuple[str, ...]]:
    every = AclBindingFilter(
        ResourceType.ANY,
        None,
        ResourcePatternType.ANY,
        None,
        None,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    held = cluster.admin.describe_acls(every).result(timeout=30)
    return {
        (
            b.principal,
            b.restype.name.lower(),
            b.resource_pattern_type.name.lower(),
            b.name,
            b.operation.name.lower(),
            b.permission_type.name.lower(),
        )
        for b in held
    }


def test_the_brokers_hold_exactly_the_planned_acls(inventory, answering, check, not_run):
    name = "ACLs held by the cluster"
    security = _security(inventory, not_run, name, needs="acls")
    cluster = answering(name)
    planned = {
        (f"User:{u['name']}", a["resource"], a["pattern"], a["name"], a["operation"], "allow")
        for u in security["users"]
        for a in u["acls"]
    }
    try:
        held = _held_acls(cluster)
    except KafkaException as err:
        held = {("describe_acls failed", err.args[0].str())}
    check("cluster", name, sorted(planned), sorted(held))


def test_a_user_is_refused_a_topic_no_acl_grants(inventory, cluster, check, not_run):
    """The ingest user writes its topics; reading one is granted by no ACL."""
    name = "ingest user reading a topic it only writes"
    security = _security(inventory, not_run, name, needs="acls")
    ingest = next((u for u in security["users"] if u["name"] == "ingest"), None)
    if ingest is None or "ingest" not in cluster.logins:
        not_run("cluster", name, "the plan has no ingest user (every topic is a group's output)")
    topic = ingest["acls"][0]["name"]
    code = read_error(cluster.login("ingest"), topic)
    denied = "topic authorization failed"
    actual = denied if code == KafkaError.TOPIC_AUTHORIZATION_FAILED else f"error {code}"
    check("cluster", name, denied, actual)


def test_each_group_user_reaches_its_topic_and_group(inventory, cluster, check, not_run):
    name = "each group's user describes its topic and group"
    security = _security(inventory, not_run, name, needs="sasl")
    groups = {g["group"]: g for g in inventory["groups"]}
    outcome = {}
    for user in (u["name"] for u in security["users"] if u["name"] in groups):
        admin = AdminClient({**cluster.login(user), "log_level": 0})
        topic = groups[user]["topic"]
        try:
            found = admin.list_topics(topic, timeout=10).topics[topic].error
            described = admin.describe_consumer_groups([user])[user].result(timeout=10)
            outcome[user] = "allowed" if found is None and described is not None else str(found)
        except KafkaException as err:
            outcome[user] = err.args[0].str()
    check("cluster", name, dict.fromkeys(outcome, "allowed"), outcome)


def test_brokers_serve_a_certificate_of_the_cluster_ca(inventory, cluster, check, not_run):
    name = "each client port's certificate chains to the cluster CA and names its host"
    _security(inventory, not_run, name, needs="tls")
    ca = cluster.login("admin")["ssl.ca.location"]
    outcome = {}
    for address in _addresses(cluster):
        try:
            served_subject(address, ca)
            outcome[address] = "verified"
        except (ssl.SSLError, OSError) as err:
            outcome[address] = str(err)
    check("cluster", name, dict.fromkeys(outcome, "verified"), outcome)


def test_no_password_is_in_the_inventory(inventory, cluster, check, not_run):
    name = "no password in the inventory"
    _security(inventory, not_run, name, needs="sasl")
    text = json.dumps(inventory)
    leaked = sorted(u for u, login in cluster.logins.items() if login["sasl.password"] in text)
    check("cluster", name, [], leaked)
