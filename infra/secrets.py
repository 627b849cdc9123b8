"""The secrets a secured plan names: a cluster CA, one key and certificate per Kafka
node, one password per user. Generated once with `cryptography` and kept in a keyring,
so a re-run finds the same ones; a node's certificate is issued again only when the
names it must carry change. A keyring lives in a directory (mode 0700, every file 0600:
the local runtime) or in a Pulumi stack's config as one secret value (`dumps`/`loads`),
which the program reads sealed: it never generates, so `pulumi up` is repeatable.

`secret_contents` gives the content of every file the plan's services read besides the
rendered ones (keystores, the CA, password files); `write_client_files` writes a
librdkafka client file per user. Nothing here is written to a rendered file or an inventory.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import os
import secrets
from collections.abc import Iterator, MutableMapping
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from consumers.properties import parse
from infra.model.plan import NodePlan, Plan, SecretFile
from infra.model.security import (
    ADMIN,
    KEYSTORE,
    PASSWORDS,
    SCRAM_LOGIN,
    TRUSTSTORE,
    node_common_name,
)

CA_DAYS = 3650
NODE_DAYS = 825  # what browsers accept at most; rotate before, with a rolling change
PASSWORD_BYTES = 24


def _write_private(path: Path, data: bytes) -> None:
    """A file only its owner reads, written whole (never world-readable, not even briefly)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


def _properties(values: dict[str, str]) -> bytes:
    return "".join(f"{k}={v}\n" for k, v in values.items()).encode()


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class MissingSecret(LookupError):
    """A sealed keyring lacks a secret the plan needs (a new user, node or name)."""


class Directory(MutableMapping[str, bytes]):
    """Keyring items as files of `path`, each written whole with mode 0600."""

    def __init__(self, path: Path):
        self.path = path

    def __getitem__(self, name: str) -> bytes:
        try:
            return (self.path / name).read_bytes()
        except FileNotFoundError:
            raise KeyError(name) from None

    def __setitem__(self, name: str, data: bytes) -> None:
        _write_private(self.path / name, data)

    def __delitem__(self, name: str) -> None:
        (self.path / name).unlink()

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(p.name for p in self.path.iterdir()) if self.path.is_dir() else [])

    def __len__(self) -> int:
        return len(list(iter(self)))


class Sealed(dict[str, bytes]):
    """Keyring items that may be read but never added: the Pulumi program's."""

    def __setitem__(self, name: str, data: bytes) -> None:
        raise MissingSecret(name)


class Keyring:
    """The cluster's secrets: items ca.key, ca.pem, passwords.properties and one
    <node>.p12 per Kafka node, in `store`. `ca_file` is where the CA is on disk for
    clients, when the store is a directory."""

    def __init__(self, store: MutableMapping[str, bytes], cluster: str):
        self.store, self.cluster = store, cluster
        self.ca_file = store.path / "ca.pem" if isinstance(store, Directory) else None
        self._passwords: dict[str, str] | None = None

    @classmethod
    def at(cls, directory: Path, cluster: str) -> Keyring:
        return cls(Directory(directory), cluster)

    def dumps(self) -> str:
        """Every item as one JSON line, the value of a stack's secret config `keyring`."""
        items = {name: base64.b64encode(self.store[name]).decode() for name in self.store}
        return json.dumps(items, sort_keys=True)

    @classmethod
    def loads(cls, text: str, cluster: str, *, sealed: bool = False) -> Keyring:
        """Raises ValueError when `text` is not what `dumps` writes."""
        found = json.loads(text or "{}")
        if not isinstance(found, dict):
            raise ValueError("a keyring is a JSON object")
        items = {str(k): base64.b64decode(v, validate=True) for k, v in found.items()}
        return cls(Sealed(items) if sealed else items, cluster)

    def _put(self, item: str, data: bytes, what: str) -> None:
        try:
            self.store[item] = data
        except MissingSecret:
            raise MissingSecret(what) from None

    # -- passwords

    def password(self, name: str) -> str:
        """A user's (or a keystore's) password: generated on first use, then kept."""
        if self._passwords is None:
            text = self.store.get("passwords.properties", b"").decode()
            self._passwords = {e.key: e.value for e in parse(text)}
        if name not in self._passwords:
            generated = {**self._passwords, name: secrets.token_urlsafe(PASSWORD_BYTES)}
            self._put("passwords.properties", _properties(generated), f"a password for {name}")
            self._passwords = generated
        return self._passwords[name]

    def forget_password(self, name: str) -> None:
        """`name` gets a new password on its next use: a rotation."""
        self.password(name)  # loads them
        assert self._passwords is not None
        kept = {k: v for k, v in self._passwords.items() if k != name}
        self._put("passwords.properties", _properties(kept), f"the passwords without {name}")
        self._passwords = kept

    # -- the CA

    def ca(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        if "ca.key" in self.store and "ca.pem" in self.store:
            key = serialization.load_pem_private_key(self.store["ca.key"], None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            return key, x509.load_pem_x509_certificate(self.store["ca.pem"])
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{self.cluster} cluster CA")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - datetime.timedelta(minutes=5))
            .not_valid_after(_now() + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self._put("ca.key", pem, "the cluster CA")
        self.store["ca.pem"] = cert.public_bytes(serialization.Encoding.PEM)
        return key, cert

    def ca_pem(self) -> bytes:
        return self.ca()[1].public_bytes(serialization.Encoding.PEM)

    # -- node keystores

    def keystore(self, node: NodePlan) -> bytes:
        """The node's key, certificate and the CA as PKCS12, sealed with AES-256."""
        item = f"{node.name}.p12"
        password = self.password(f"keystore/{node.name}").encode()
        wanted = node_names(node)
        if item in self.store:
            _key, cert, _chain = pkcs12.load_key_and_certificates(self.store[item], password)
            if (
                cert is not None
                and certificate_names(cert) == wanted
                and cert.subject == self._node_subject()
            ):
                return self.store[item]
        data = self._issue(node, wanted, password)
        self._put(item, data, f"a certificate of {node.name} for {', '.join(sorted(wanted))}")
        return data

    def _node_subject(self) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node_common_name(self.cluster))])

    def _issue(self, node: NodePlan, names: set[str], password: bytes) -> bytes:
        ca_key, ca = self.ca()
        key = ec.generate_private_key(ec.SECP256R1())
        subject = self._node_subject()
        alternative: list[x509.GeneralName] = []
        for name in sorted(names):
            try:
                alternative.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alternative.append(x509.DNSName(name))
        usage = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - datetime.timedelta(minutes=5))
            .not_valid_after(_now() + datetime.timedelta(days=NODE_DAYS))
            .add_extension(x509.SubjectAlternativeName(alternative), critical=False)
            .add_extension(x509.ExtendedKeyUsage(usage), critical=False)  # a broker is both
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        sealing = (
            serialization.PrivateFormat.PKCS12.encryption_builder()
            .kdf_rounds(50_000)
            .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
            .hmac_hash(hashes.SHA256())
            .build(password)
        )
        alias = node.name.encode()
        return pkcs12.serialize_key_and_certificates(alias, key, cert, [ca], sealing)


def node_names(node: NodePlan) -> set[str]:
    """What a node's certificate names: how every client and node reaches it."""
    return {node.containers["kafka"], node.address, "127.0.0.1", "localhost"}


def certificate_names(cert: x509.Certificate) -> set[str]:
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(v) for v in sans.get_values_for_type(x509.DNSName)} | {
        str(v) for v in sans.get_values_for_type(x509.IPAddress)
    }


def _content(plan: Plan, node: NodePlan, file: SecretFile, keyring: Keyring) -> bytes:
    if file.kind == KEYSTORE:
        return keyring.keystore(node)
    if file.kind == TRUSTSTORE:
        return keyring.ca_pem()
    assert file.kind == PASSWORDS
    if file.service == "kafka":
        return _properties(
            {
                "keystore.password": keyring.password(f"keystore/{node.name}"),
                "admin.password": keyring.password(ADMIN),
            }
        )
    group = file.service.removeprefix("consumer:")
    return _properties({"password": keyring.password(group)})


def secret_contents(plan: Plan, keyring: Keyring) -> dict[str, list[tuple[SecretFile, bytes]]]:
    """Node -> each secret file it reads, with its content."""
    return {
        node.name: [(f, _content(plan, node, f, keyring)) for f in node.secret_files]
        for node in plan.nodes
    }


def install_secrets(plan: Plan, keyring: Keyring) -> list[Path]:
    """Write every secret file where its service reads it (the local placement), 0600."""
    written = []
    for files in secret_contents(plan, keyring).values():
        for file, content in files:
            path = Path(file.path)
            if not path.exists() or path.read_bytes() != content:
                _write_private(path, content)
            written.append(path)
    return written


def client_settings(plan: Plan, keyring: Keyring, user: str) -> dict[str, str]:
    """librdkafka's settings for `user` on the cluster's client listeners, but where to
    find the CA: a client file names a path (`write_client_files`), a stack output the
    PEM beside them."""
    security = plan.security
    settings = {"bootstrap.servers": plan.cluster.bootstrap_servers}
    if security is None:
        return settings
    settings["security.protocol"] = security.client_protocol
    if security.sasl:
        settings |= {
            "sasl.mechanism": security.sasl,
            "sasl.username": user,
            "sasl.password": keyring.password(user),
        }
    return settings


def client_logins(plan: Plan, keyring: Keyring) -> dict[str, dict[str, str]]:
    """User -> its client settings, for every planned user (none without security)."""
    users = plan.security.users if plan.security else []
    return {u.name: client_settings(plan, keyring, u.name) for u in users}


def trusting(settings: dict[str, str], ca_file: Path) -> dict[str, str]:
    """`settings`, trusting the CA in `ca_file` when they speak TLS."""
    if not settings.get("security.protocol", "").endswith("SSL"):
        return settings
    return {**settings, "ssl.ca.location": str(ca_file)}


def java_client(settings: dict[str, str]) -> dict[str, str]:
    """librdkafka client `settings` (with the CA as `ssl.ca.location`) as a Java client's
    properties, for Kafka's own tools (`--command-config`)."""
    java = {"bootstrap.servers": settings["bootstrap.servers"]}
    if "security.protocol" in settings:
        java["security.protocol"] = settings["security.protocol"]
    if "sasl.mechanism" in settings:
        login = f'username="{settings["sasl.username"]}" password="{settings["sasl.password"]}"'
        java |= {
            "sasl.mechanism": settings["sasl.mechanism"],
            "sasl.jaas.config": f"{SCRAM_LOGIN} {login};",
        }
    if "ssl.ca.location" in settings:
        java["ssl.truststore.type"] = "PEM"
        java["ssl.truststore.location"] = settings["ssl.ca.location"]
    return java


def write_private_properties(path: Path, values: dict[str, str]) -> Path:
    """`values` as a properties file only its owner reads."""
    _write_private(path, _properties(values))
    return path


def write_client_files(
    logins: dict[str, dict[str, str]], ca_pem: bytes, directory: Path
) -> dict[str, Path]:
    """A client file per user, `<directory>/<user>.properties` (mode 0600), trusting
    the CA written beside them: user -> its file."""
    if not logins:
        return {}
    ca_file = directory / "ca.pem"
    _write_private(ca_file, ca_pem)
    found = {}
    for user, settings in logins.items():
        found[user] = directory / f"{user}.properties"
        _write_private(found[user], _properties(trusting(settings, ca_file)))
    return found


def fill(plan: Plan, keyring: Keyring) -> Keyring:
    """Every secret the plan needs generated into `keyring` (those there are kept)."""
    secret_contents(plan, keyring)
    client_logins(plan, keyring)
    return keyring
