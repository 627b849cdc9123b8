"""The secrets a secured plan names: a cluster CA, one key and certificate per Kafka
node, one password per user. Generated once with `cryptography` and kept in a keyring
directory (mode 0700, every file 0600), so a re-run finds the same ones; a node's
certificate is issued again only when the names it must carry change.

`secret_contents` gives the content of every file the plan's services read besides the
rendered ones (keystores, the CA, password files); `client_files` gives a librdkafka
client file per user. Nothing here is written to a rendered file or an inventory.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from consumers.properties import parse
from infra.model.plan import NodePlan, Plan, SecretFile
from infra.model.security import ADMIN, KEYSTORE, PASSWORDS, TRUSTSTORE

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


class Keyring:
    """The cluster's secrets in `directory`: ca.key, ca.pem, passwords.properties and
    one <node>.p12 per Kafka node."""

    def __init__(self, directory: Path, cluster: str):
        self.directory, self.cluster = directory, cluster
        self._passwords: dict[str, str] | None = None

    # -- passwords

    def _password_file(self) -> Path:
        return self.directory / "passwords.properties"

    def password(self, name: str) -> str:
        """A user's (or a keystore's) password: generated on first use, then kept."""
        if self._passwords is None:
            path = self._password_file()
            text = path.read_text() if path.exists() else ""
            self._passwords = {e.key: e.value for e in parse(text)}
        if name not in self._passwords:
            self._passwords[name] = secrets.token_urlsafe(PASSWORD_BYTES)
            _write_private(self._password_file(), _properties(self._passwords))
        return self._passwords[name]

    # -- the CA

    def ca(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key_path, cert_path = self.directory / "ca.key", self.directory / "ca.pem"
        if key_path.exists() and cert_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            return key, x509.load_pem_x509_certificate(cert_path.read_bytes())
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
        _write_private(key_path, pem)
        _write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        return key, cert

    def ca_pem(self) -> bytes:
        return self.ca()[1].public_bytes(serialization.Encoding.PEM)

    # -- node keystores

    def keystore(self, node: NodePlan) -> bytes:
        """The node's key, certificate and the CA as PKCS12, sealed with AES-256."""
        path = self.directory / f"{node.name}.p12"
        password = self.password(f"keystore/{node.name}").encode()
        wanted = node_names(node)
        if path.exists():
            _key, cert, _chain = pkcs12.load_key_and_certificates(path.read_bytes(), password)
            if cert is not None and certificate_names(cert) == wanted:
                return path.read_bytes()
        data = self._issue(node, wanted, password)
        _write_private(path, data)
        return data

    def _issue(self, node: NodePlan, names: set[str], password: bytes) -> bytes:
        ca_key, ca = self.ca()
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node.containers["kafka"])])
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
    """librdkafka's settings for `user` on the cluster's client listeners."""
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
    if security.tls:
        keyring.ca()
        settings["ssl.ca.location"] = str(keyring.directory / "ca.pem")
    return settings


def client_files(plan: Plan, keyring: Keyring) -> dict[str, bytes]:
    """User -> its client file (`clients/<user>.properties`): a secret, mode 0600."""
    if plan.security is None:
        return {}
    return {
        u.name: _properties(client_settings(plan, keyring, u.name)) for u in plan.security.users
    }


def write_client_files(plan: Plan, keyring: Keyring, directory: Path) -> dict[str, Path]:
    found = {}
    for user, content in client_files(plan, keyring).items():
        path = directory / f"{user}.properties"
        _write_private(path, content)
        found[user] = path
    return found
