"""A secured plan's keys and passwords as Pulumi secrets.

They come from the stack's secret config `keyring` (infra/secrets.py writes it: `make up`
and `infra ci` fill it before `pulumi up`), read sealed: the program never generates a
secret, so a second `pulumi up` uploads the same bytes and replaces nothing. Every value
derived here is a secret Output: encrypted in the state, masked in the CLI's diff.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from infra.model.plan import NodePlan, Plan
from infra.secrets import Keyring, MissingSecret, client_logins, secret_contents

KEYRING = "keyring"  # the stack config key
# How an operator fills it by hand (`make up` does it).
FILL = (
    "pulumi config get keyring | python -m infra keyring SPEC | pulumi config set --secret keyring"
)


@dataclass(frozen=True)
class Material:
    files: dict[tuple[str, str], str]  # (node, path) -> content, base64
    passwords: dict[str, str]  # user -> password
    ca_pem: str
    logins: dict[str, dict[str, str]]  # user -> librdkafka settings but the CA


def _material(plan: Plan, text: str) -> Material:
    try:
        keyring = Keyring.loads(text, plan.cluster.name, sealed=True)
    except ValueError:
        raise pulumi.RunError(
            f"stack config {KEYRING} is not a keyring (the JSON `python -m infra keyring` "
            f"prints): `make up` sets it (or: {FILL})"
        ) from None
    try:
        files = {
            (node, f.path): base64.b64encode(content).decode()
            for node, contents in secret_contents(plan, keyring).items()
            for f, content in contents
        }
        logins = client_logins(plan, keyring)
        ca_pem = keyring.ca_pem().decode()
    except MissingSecret as err:
        raise pulumi.RunError(
            f"stack config {KEYRING} lacks {err.args[0]} for this spec: `make up` fills it "
            f"(or: {FILL})"
        ) from None
    passwords = {user: login.get("sasl.password", "") for user, login in logins.items()}
    return Material(files, passwords, ca_pem, logins)


class ClusterSecrets:
    def __init__(self, plan: Plan, keyring: pulumi.Output[str]):
        self.plan = plan
        self.material = pulumi.Output.secret(keyring).apply(lambda text: _material(plan, text))

    def uploads(self, node: NodePlan, service: str, owner: str | None) -> list:
        """The service's secret files: mode 0600, owned by the user its image runs as."""
        return [
            docker.ContainerUploadArgs(
                file=f.path,
                content_base64=self.material.apply(lambda m, path=f.path: m.files[node.name, path]),
                permissions="0600",
                owner=owner,
                group=owner,
            )
            for f in node.secret_files
            if f.service == service
        ]

    def password(self, user: str) -> pulumi.Output[str]:
        return self.material.apply(lambda m: m.passwords[user])

    @property
    def ca_pem(self) -> pulumi.Output[str]:
        return self.material.apply(lambda m: m.ca_pem)

    @property
    def clients(self) -> pulumi.Output[dict]:
        """User -> its client settings, the CA inline (librdkafka's ssl.ca.pem) over TLS."""
        tls = self.plan.security is not None and self.plan.security.tls
        return self.material.apply(
            lambda m: {
                u: {**s, **({"ssl.ca.pem": m.ca_pem} if tls else {})} for u, s in m.logins.items()
            }
        )
