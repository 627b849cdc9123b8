"""A secured plan's users and ACLs on a running cluster, through Kafka's admin API.

The admin user must exist before the brokers log in to each other: KRaft takes its
SCRAM credential when storage is formatted (`--add-scram`), ZooKeeper mode from
Kafka's ConfigCommand writing to ZooKeeper before any broker starts. Every other user
and every ACL is created once the cluster answers, as the admin.
"""

from __future__ import annotations

from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from infra.model.plan import Acl, Plan
from infra.model.security import ADMIN, SCRAM_ITERATIONS
from infra.runtime.answers import settle
from infra.secrets import Keyring, client_settings, trusting

TIMEOUT_S = 30


class AccessError(RuntimeError):
    """A user or an ACL the cluster refused; the message is the operator's one line."""


def admin_settings(plan: Plan, keyring: Keyring | None) -> dict[str, str]:
    """How the runtime, verify and the tests connect: as the admin user."""
    if keyring is None:
        return {"bootstrap.servers": plan.cluster.bootstrap_servers}
    keyring.ca()  # on disk before a client reads it
    assert keyring.ca_file is not None, "a running cluster's keyring is a directory"
    return trusting(client_settings(plan, keyring, ADMIN), keyring.ca_file)


def binding(principal: str, acl: Acl) -> AclBinding:
    return AclBinding(
        ResourceType[acl.resource.upper()],
        acl.name,
        ResourcePatternType[acl.pattern.upper()],
        principal,
        "*",
        AclOperation[acl.operation.upper()],
        AclPermissionType.ALLOW,
    )


def grant(plan: Plan, keyring: Keyring) -> None:
    """Every planned user's SCRAM credential (the admin's is there already) and ACL."""
    security = plan.security
    if security is None:
        return
    admin = AdminClient({**admin_settings(plan, keyring), "log_level": 0})
    if security.sasl:
        mechanism = ScramMechanism[security.sasl.replace("-", "_")]
        upserts = [
            UserScramCredentialUpsertion(
                u.name,
                ScramCredentialInfo(mechanism, SCRAM_ITERATIONS),
                keyring.password(u.name).encode(),
            )
            for u in security.users
            if u.name != ADMIN
        ]
        if upserts:
            settle(admin.alter_user_scram_credentials(upserts), "user", AccessError, TIMEOUT_S)
    if security.acls:
        bindings = [binding(f"User:{u.name}", a) for u in security.users for a in u.acls]
        if bindings:
            settle(admin.create_acls(bindings), "ACL", AccessError, TIMEOUT_S)
