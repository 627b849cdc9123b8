"""Kafka's broker configuration rules, as data read from its ConfigDef.

The JSON files under `infra/kafka/catalogs/` are generated from each release's own jars
(`python -m infra catalogs`, infra/kafka/java/GenerateCatalog.java). This module answers
one question for a key and its text value, the way a broker parses `server.properties`:
would Kafka accept it?
Kafka itself only logs unknown keys, so a typo would start a silently misconfigured
broker; here an unknown key is an error.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from consumers.properties import to_property

KafkaVersion = Literal["3.9", "4.1", "4.4"]
Mode = Literal["kraft", "zookeeper"]

CATALOG_DIR = Path(__file__).parent / "catalogs"

_INT_RANGES = {"SHORT": 16, "INT": 32, "LONG": 64}
# Java's Double.parseDouble: decimal or hexadecimal, an optional d/f suffix, NaN, Infinity.
_JAVA_DOUBLE = re.compile(
    r"[+-]?(NaN|Infinity|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[dDfF]?"
    r"|0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?\d+[dDfF]?)"
)
_JAVA_CLASS = re.compile(r"^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$")
_HOST_PORT = r"(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}"
_VOTER = re.compile(rf"^\d+@{_HOST_PORT}$")
_BOOTSTRAP = re.compile(rf"^{_HOST_PORT}$")
_METADATA_VERSION = re.compile(r"^\d+\.\d+(-IV\d+)?$")
# Per-listener variants of catalogue keys (ListenerName.configPrefix()), optionally
# per SASL mechanism too: listener.name.<listener>[.<mechanism>].<key>.
_LISTENER_PREFIX = re.compile(r"^listener\.name\.[a-z0-9_-]+\.(.+)$")


def _entries(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


# The catalogue names its custom validators by the Java class or field that implements
# them; each gets its rule here. tests/unit/test_catalog.py fails if one is missing.
CUSTOM_RULES: dict[str, tuple[Callable[[str], bool], str]] = {
    "ControllerQuorumVotersValidator()": (
        lambda v: all(_VOTER.match(e) for e in _entries(v)),
        "must be a list of id@host:port entries",
    ),
    "ControllerQuorumBootstrapServersValidator()": (
        lambda v: all(_BOOTSTRAP.match(e) for e in _entries(v)),
        "must be a list of host:port entries",
    ),
    "MetadataVersionValidator()": (
        lambda v: bool(_METADATA_VERSION.match(v.strip())),
        "must be a metadata version such as 3.9 or 3.9-IV0",
    ),
    "REMOTE_LOG_MANAGER_THREAD_POOL_SIZE_VALIDATOR": (
        lambda v: int(v) == -1 or int(v) > 0,
        "must be -1 or greater than 0",
    ),
}


# KRaft keys a Kafka 3.9 ZooKeeper-mode broker also reads while it migrates to KRaft
# (zookeeper.metadata.migration.enable=true; KafkaConfig.validateValues of 3.9).
MIGRATION_READS = frozenset(
    {"controller.listener.names", "controller.quorum.voters", "controller.quorum.bootstrap.servers"}
)


# Keys no ConfigDef of the broker holds: the authorizer reads them itself, with these
# rules (StandardAuthorizer and AclAuthorizer alike: SUPER_USERS_CONFIG, a list of
# principals split on ';', and ALLOW_EVERYONE_IF_NO_ACL_IS_FOUND_CONFIG, a boolean).
AUTHORIZER_KEYS: dict[str, tuple[Callable[[str], bool], str]] = {
    "super.users": (
        lambda v: all(":" in p for p in v.split(";") if p.strip()),
        "must be principals like User:admin, separated by ';'",
    ),
    "allow.everyone.if.no.acl.found": (
        lambda v: v.strip().lower() in ("true", "false"),
        "must be true or false",
    ),
}


@dataclass(frozen=True)
class Catalog:
    version: KafkaVersion
    release: str  # the Kafka release the facts were read from, e.g. "4.1.1"
    keys: dict[str, dict[str, Any]]
    removed: dict[str, str]  # key -> the last release line that defined it

    def default(self, key: str) -> Any:
        return self.keys[key]["default"]

    def default_text(self, key: str) -> str:
        """The default as a properties file would spell it ("" for none or an unknown key);
        asked for many keys of every file checked, so computed once per catalogue."""
        return self._defaults_text.get(key, "")

    @functools.cached_property
    def _defaults_text(self) -> dict[str, str]:
        return {
            key: to_property(entry["default"])
            for key, entry in self.keys.items()
            if entry["default"] is not None
        }

    def check(self, key: str, text: str, mode: Mode, migrating: bool = False) -> str | None:
        """The reason Kafka would refuse `key=text` on a broker in `mode`, or None.

        `migrating`: a ZooKeeper-mode broker with zookeeper.metadata.migration.enable,
        which also reads the KRaft keys the catalogue notes as read during migration.
        """
        if key.startswith("config.providers"):
            return None
        if key in AUTHORIZER_KEYS:
            rule, reason = AUTHORIZER_KEYS[key]
            return None if rule(text) else reason
        entry = self._entry(key)
        if entry is None:
            return self._unknown(key)
        key_mode = entry.get("mode", "both")
        if mode == "kraft" and key_mode == "zk_only":
            return "a ZooKeeper-mode key; this cluster runs KRaft (remove it)"
        read_in_migration = migrating and key in MIGRATION_READS
        if mode == "zookeeper" and key_mode == "kraft_only" and not read_in_migration:
            return "a KRaft-only key; this cluster runs ZooKeeper mode (remove it)"
        return _check_value(entry, text)

    def dynamic(self, key: str) -> str | None:
        """How a running broker takes a new value of `key`: "per-broker" or
        "cluster-wide" (incrementalAlterConfigs, no restart), "read-only" (a restart),
        None for a key the catalogue does not know."""
        entry = self._entry(key)
        return None if entry is None else entry["dynamic"]

    def _entry(self, key: str) -> dict[str, Any] | None:
        if key in self.keys:
            return self.keys[key]
        per_listener = _LISTENER_PREFIX.match(key)
        if not per_listener:
            return None
        rest = per_listener[1]
        per_mechanism = rest.split(".", 1)[-1]
        return self.keys.get(rest) or self.keys.get(per_mechanism)

    def _unknown(self, key: str) -> str:
        if key in self.removed:
            return f"removed after Kafka {self.removed[key]}; not accepted by Kafka {self.version}"
        close = difflib.get_close_matches(key, self.keys, n=1, cutoff=0.8)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"unknown key for Kafka {self.version}{hint}"


def _parse(kind: str, text: str) -> Any:
    """Kafka's ConfigDef.parseType: raises ValueError where the broker would refuse."""
    text = text.strip()
    if kind == "BOOLEAN":
        if text.lower() not in ("true", "false"):
            raise ValueError("must be true or false")
        return text.lower() == "true"
    if kind in _INT_RANGES:
        bits = _INT_RANGES[kind]
        if not re.fullmatch(r"[+-]?\d+", text):
            raise ValueError(f"must be a {bits}-bit integer ({kind})")
        number = int(text)
        if not -(2 ** (bits - 1)) <= number < 2 ** (bits - 1):
            raise ValueError(f"must be a {bits}-bit integer ({kind})")
        return number
    if kind == "DOUBLE":
        if not _JAVA_DOUBLE.fullmatch(text):
            raise ValueError("must be a number (DOUBLE)")
        return (
            float.fromhex(text.rstrip("dDfF"))
            if "x" in text.lower()
            else float(text.rstrip("dDfF"))
        )
    if kind == "LIST":  # as ConfigDef splits it: an empty item ("a,", ",") stays, and fails
        return re.split(r"\s*,\s*", text) if text else []
    if kind == "CLASS" and not _JAVA_CLASS.match(text):
        raise ValueError("must be a Java class name (CLASS)")
    return text


def _check_value(entry: dict[str, Any], text: str) -> str | None:
    try:
        value = _parse(entry["type"], text)
    except ValueError as err:
        return f"{err}, got {text!r}"
    rule = entry["validator"]
    if rule is None:
        return None
    kind = rule["kind"]
    failed: str | None = None
    if kind == "atLeast" and value < rule["min"]:
        failed = f"must be >= {rule['min']}"
    # As Java's Range compares: a value below min or above max fails (NaN is neither).
    elif kind == "between" and (value < rule["min"] or value > rule["max"]):
        failed = f"must be between {rule['min']} and {rule['max']}"
    elif kind == "between_or_value" and not (
        value == rule["or_value"] or not (value < rule["min"] or value > rule["max"])
    ):
        failed = f"must be {rule['or_value']} or between {rule['min']} and {rule['max']}"
    elif kind == "in" and value not in rule["values"]:
        failed = f"must be one of {', '.join(rule['values'])}"
    elif kind == "in_case_insensitive" and value.lower() not in {v.lower() for v in rule["values"]}:
        failed = f"must be one of {', '.join(rule['values'])} (any case)"
    elif (
        kind in ("list_in", "list_no_duplicates")
        and rule.get("empty_allowed") is False
        and not value
    ):
        failed = "must not be empty"  # KIP-1161 (4.2+)
    elif kind == "list_in" and any(item not in rule["values"] for item in value):
        failed = f"must list only {', '.join(rule['values'])}"
    elif kind == "non_empty_string" and not value:
        failed = "must not be empty"
    elif kind == "custom":
        accepts, expected = CUSTOM_RULES[rule["summary"]]
        try:
            ok = accepts(text)
        except ValueError:
            ok = False
        if not ok:
            failed = expected
    return f"{failed}, got {text!r}" if failed else None


@functools.cache
def load(version: KafkaVersion) -> Catalog:
    data = json.loads((CATALOG_DIR / f"kafka-broker-configs-{version}.json").read_text())
    return Catalog(version, data["kafka_version"], data["configs"], data.get("removed_since", {}))


@dataclass(frozen=True)
class ReleaseDiff:
    """What changes for broker config between two release lines."""

    added: list[str]
    removed: list[str]
    changed: dict[str, list[tuple[str, Any, Any]]]  # key -> (field, before, after)


COMPARED = ("type", "default", "validator", "required", "dynamic")


def diff(old: Catalog, new: Catalog) -> ReleaseDiff:
    keys_old, keys_new = set(old.keys), set(new.keys)
    changed = {}
    for key in sorted(keys_old & keys_new):
        fields = [
            (field, old.keys[key].get(field), new.keys[key].get(field))
            for field in COMPARED
            if old.keys[key].get(field) != new.keys[key].get(field)
        ]
        if fields:
            changed[key] = fields
    return ReleaseDiff(sorted(keys_new - keys_old), sorted(keys_old - keys_new), changed)
