"""The spec's cross-field rules: roles and modes, hosts, topics named by groups, tuning
keys Kafka and librdkafka accept. Rules about derived numbers (replication against
brokers, processes against cores) live in infra/model/rules.py, next to the plan.
"""

from __future__ import annotations

from typing import Any

from consumers import client_config
from consumers.properties import to_property
from infra.kafka import catalog
from infra.model.groups import client_defaults
from infra.model.security import ADMIN, INGEST
from infra.model.spec import Role, Spec
from infra.model.topology import assigned_ids, kafka_ids
from infra.problems import Problem


def _duplicates(items: list[Any], attr: str, where: str) -> list[Problem]:
    first: dict[Any, int] = {}
    problems = []
    for i, item in enumerate(items):
        value = getattr(item, attr)
        if value in first:
            problems.append(
                Problem(
                    f"{where}[{i}].{attr}",
                    f"duplicate {attr} {value!r} (also {where}[{first[value]}])",
                )
            )
        first.setdefault(value, i)
    return problems


def _role_rules(spec: Spec) -> list[Problem]:
    problems: list[Problem] = []
    cluster = spec.cluster
    if cluster.mode == "zookeeper" and cluster.kafka_version != "3.9":
        problems.append(
            Problem(
                "cluster.mode",
                f'zookeeper mode needs kafka_version "3.9"; Kafka {cluster.kafka_version} '
                "has no ZooKeeper mode (use mode: kraft)",
            )
        )
    if not spec.with_role("broker"):
        problems.append(Problem("nodes", "no node has the broker role; add broker to a node"))
    if cluster.mode == "kraft" and not spec.with_role("controller"):
        problems.append(
            Problem("nodes", "KRaft mode needs at least one node with the controller role")
        )
    if cluster.mode == "zookeeper" and not spec.with_role("zookeeper"):
        problems.append(
            Problem("nodes", "zookeeper mode needs at least one node with the zookeeper role")
        )
    wrong_role, advice = (
        ("zookeeper", "KRaft nodes use the controller role")
        if cluster.mode == "kraft"
        else ("controller", "in ZooKeeper mode a broker is elected controller; remove it")
    )
    for i, node in enumerate(spec.nodes):
        if wrong_role in node.roles:
            problems.append(
                Problem(
                    f"nodes[{i}].roles",
                    f"the {wrong_role} role does not exist in {cluster.mode} mode ({advice})",
                )
            )
        if len(set(node.roles)) != len(node.roles):
            problems.append(Problem(f"nodes[{i}].roles", f"lists a role twice: {node.roles}"))
        if node.cores == "auto" and node.host != "local":
            problems.append(
                Problem(
                    f"nodes[{i}].cores",
                    f'"auto" reads this machine\'s cores, so it needs host: local, '
                    f"got host {node.host!r}",
                )
            )
    hosts = {n.host for n in spec.nodes}
    if len(hosts) > 1 and "local" in hosts:
        for i, node in enumerate(spec.nodes):
            if node.host == "local":
                problems.append(
                    Problem(
                        f"nodes[{i}].host",
                        "a cluster spanning Docker hosts needs every node on a named host "
                        "(ssh:// or tcp://): the other hosts cannot reach 'local'",
                    )
                )
    return problems


def _id_rules(spec: Spec) -> list[Problem]:
    """Two nodes may not share an id, given or positional: say which, and the fix."""
    problems = []
    index = {n.name: i for i, n in enumerate(spec.nodes)}
    for kind, ids in (
        ("node.id" if spec.cluster.mode == "kraft" else "broker.id", kafka_ids(spec)),
        ("ZooKeeper myid", assigned_ids(spec.with_role("zookeeper"))),
    ):
        owner: dict[int, str] = {}
        for name, value in ids.items():
            if value in owner:
                other = owner[value]
                problems.append(
                    Problem(
                        f"nodes[{index[name]}].id",
                        f"{kind} {value} is also {other}'s (given or by its position); "
                        f"give each of {other} and {name} an id: of its own",
                    )
                )
            owner.setdefault(value, name)
    for i, node in enumerate(spec.nodes):
        if node.id is not None and not ({"broker", "controller", "zookeeper"} & set(node.roles)):
            problems.append(Problem(f"nodes[{i}].id", "only Kafka and ZooKeeper nodes take an id"))
    return problems


def _topic_rules(spec: Spec) -> list[Problem]:
    problems = _duplicates(spec.topics, "name", "topics")
    names = [t.name for t in spec.topics]
    if spec.consumers and not spec.with_role("consumer"):
        problems.append(Problem("consumers", "no node has the consumer role to run the groups on"))
    for i, consumer in enumerate(spec.consumers):
        if consumer.topic not in names:
            known = ", ".join(names) or "none"
            problems.append(
                Problem(
                    f"consumers[{i}].topic",
                    f"{consumer.topic!r} is not a topic of this spec (topics: {known})",
                )
            )
        if consumer.sink_topic == consumer.topic:
            problems.append(
                Problem(
                    f"consumers[{i}].sink",
                    f"writes back to its own input topic {consumer.topic!r}, "
                    "which would loop forever",
                )
            )
    problems += _duplicates(spec.consumers, "group", "consumers")
    return problems


def _security_rules(spec: Spec) -> list[Problem]:
    security = spec.security
    problems = _duplicates(security.users, "name", "security.users")
    spans_hosts = len({n.host for n in spec.nodes}) > 1
    if spans_hosts and not security.tls and not security.allow_plaintext_across_hosts:
        problems.append(
            Problem(
                "security.tls",
                "the cluster spans Docker hosts, so its traffic crosses the network in the "
                "clear; keep tls: true, or set allow_plaintext_across_hosts: true",
            )
        )
    if security.acls and not security.mechanism:
        problems.append(
            Problem(
                "security.acls",
                "ACLs need users to grant to: set sasl to scram-sha-512, or acls: false",
            )
        )
    if security.acls and not security.tls and spec.cluster.mode == "kraft":
        problems.append(
            Problem(
                "security.acls",
                "the KRaft quorum knows brokers by their certificates; without TLS they reach "
                "it anonymous and the ACLs would shut them out: keep tls: true, or acls: false",
            )
        )
    topics = {t.name for t in spec.topics}
    taken = {ADMIN, INGEST} | {c.group for c in spec.consumers}
    for i, user in enumerate(security.users):
        where = f"security.users[{i}]"
        if not security.mechanism:
            problems.append(Problem(f"{where}.name", "users log in with SASL: set sasl first"))
        if user.name in taken:
            problems.append(
                Problem(
                    f"{where}.name",
                    f"{user.name!r} is planned already (admin, ingest and each group are "
                    "users); choose another name",
                )
            )
        if not user.read and not user.write:
            problems.append(Problem(where, "grants nothing: give it read: or write: topics"))
        for kind in ("read", "write"):
            for j, topic in enumerate(getattr(user, kind)):
                if topic not in topics:
                    problems.append(
                        Problem(
                            f"{where}.{kind}[{j}]",
                            f"{topic!r} is not a topic of this spec; a DLQ or sink is "
                            "written by its group alone",
                        )
                    )
    return problems


def _security_warnings(spec: Spec) -> list[Problem]:
    security = spec.security
    warnings = []
    if security.opted_out:
        warnings.append(
            Problem(
                "security",
                "every listener is plaintext and open to anyone who reaches a port",
            )
        )
    elif not security.tls:
        warnings.append(Problem("security.tls", "records and SCRAM exchanges travel in the clear"))
    if spec.cluster.mode == "zookeeper" and not security.opted_out:
        warnings.append(
            Problem(
                "security",
                "ZooKeeper's own ports stay plaintext: keep them on the cluster's network",
            )
        )
    return warnings


def _blamed(key: str, reason: str, tuning: dict[str, Any]) -> str:
    """The override to name for a client problem: the key itself, or, for a rule across
    keys that first names a planned setting, the override the rule also names."""
    if key in tuning:
        return key
    return next((k for k in tuning if f"`{k}`" in reason), next(iter(tuning)))


def _tuning_rules(spec: Spec) -> list[Problem]:
    kafka = catalog.load(spec.cluster.kafka_version)
    problems = []
    for key, value in spec.tuning.broker.items():
        reason = kafka.check(key, to_property(value), spec.cluster.mode)
        if reason:
            problems.append(Problem(f"tuning.broker.{key}", reason))
    for kind in ("producer", "consumer"):
        tuning = getattr(spec.tuning, kind)
        if not tuning:
            continue
        # As the workers will run them: the plan's client settings, the overrides on top.
        defaults = client_defaults(kind, spec.cluster.kafka_version)
        settings = {k: d.value for k, d in defaults.items()} | tuning
        found = client_config.problems(kind, settings)
        blamed = {_blamed(key, reason, tuning): reason for key, reason in found.items()}
        problems += [Problem(f"tuning.{kind}.{k}", blamed[k]) for k in tuning if k in blamed]
    return problems


def spec_warnings(spec: Spec) -> list[Problem]:
    warnings = []
    role: Role = "controller" if spec.cluster.mode == "kraft" else "zookeeper"
    quorum = len(spec.with_role(role))
    if quorum == 1:
        warnings.append(
            Problem("nodes", f"a single {role} is a single point of failure; use 3 for production")
        )
    elif quorum and quorum % 2 == 0:
        warnings.append(
            Problem(
                "nodes",
                f"{quorum} {role}s tolerate no more failures than {quorum - 1}; use an odd count",
            )
        )
    if spec.with_role("consumer") and not spec.consumers:
        warnings.append(Problem("consumers", "consumer nodes are given but no consumer group"))
    return warnings + _security_warnings(spec)


def check_spec(spec: Spec) -> list[Problem]:
    """Every cross-field problem of a structurally valid spec (empty when it is sound)."""
    problems = _duplicates(spec.nodes, "name", "nodes")
    problems += _role_rules(spec) + _id_rules(spec) + _topic_rules(spec) + _tuning_rules(spec)
    problems += _security_rules(spec)
    return problems
