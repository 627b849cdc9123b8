"""The node spec: the YAML an operator writes, parsed into frozen, typed models.

`load_spec(path)` is the only place YAML is read. It returns the spec and its
warnings, or raises InputError with one line per problem: the file, the field path
(`nodes[1].cores`) and what was expected. Rules that need only the spec live here;
rules about derived numbers (replication against brokers, processes against cores)
live in the plan, next to the numbers they check.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from consumers import client_config
from consumers.properties import to_property
from infra.kafka import catalog
from infra.problems import InputError, Problem, raise_if

Role = Literal["broker", "controller", "zookeeper", "consumer"]
Compression = Literal["none", "gzip", "snappy", "lz4", "zstd", "producer"]

_DNS_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_TOPIC = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
_HOST = re.compile(r"^(local|ssh://([^@/\s]+@)?[A-Za-z0-9.-]+(:\d+)?|tcp://[A-Za-z0-9.-]+:\d+)$")
_DURATION_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_SIZE_BYTES = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_SIZE_BYTES |= {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


def _rule(check, message: str):
    """An AfterValidator that refuses values failing `check` with `message`."""

    def validate(value):
        if not check(value):
            raise PydanticCustomError("rule", message)
        return value

    return AfterValidator(validate)


def parse_units(value: Any, table: dict[str, int]) -> int | None:
    """'7d' or '50GiB' (or a plain integer >= 0) in the table's base unit; None if neither."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    pattern = rf"^(\d+)\s*({'|'.join(table)})$"
    match = re.match(pattern, value.strip()) if isinstance(value, str) else None
    return int(match[1]) * table[match[2]] if match else None


def duration_ms(value: Any) -> int | None:
    """A duration like 7d, 12h or 30m in milliseconds (also the sweeper's ttl labels)."""
    return parse_units(value, _DURATION_MS)


def _units(table: dict[str, int], example: str):
    """A BeforeValidator turning '7d' / '50GiB' (or a plain integer) into an integer."""

    def parse(value):
        parsed = parse_units(value, table)
        if parsed is None:
            raise PydanticCustomError("units", f"must be like {example}")
        return parsed

    return BeforeValidator(parse)


def _cores(value):
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    raise PydanticCustomError("cores", 'must be an integer >= 1 or "auto"')


def _version(value):
    # An unquoted 4.1 in YAML is a float; it means the same thing.
    return str(value) if isinstance(value, float) else value


DnsName = Annotated[str, _rule(_DNS_NAME.match, "must be lowercase letters, digits and '-'")]
# Kafka's rule for topic names; group names follow it too, as they name rendered files.
KafkaName = Annotated[
    str, _rule(_TOPIC.match, "must be 1-249 characters of letters, digits, '.', '_' and '-'")
]
Positive = Annotated[int, Field(ge=1)]


def _scalar(value):
    if isinstance(value, str | int | float | bool):
        return value
    raise PydanticCustomError("scalar", "must be a single value (text, number or true/false)")


Scalar = Annotated[str | int | float | bool, BeforeValidator(_scalar)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Cluster(_Model):
    name: DnsName
    kafka_version: Annotated[Literal["4.1", "3.9"], BeforeValidator(_version)] = "4.1"
    mode: Literal["kraft", "zookeeper"] = "kraft"


class Node(_Model):
    name: DnsName
    host: Annotated[
        str, _rule(_HOST.match, "must be local, ssh://[user@]host[:port] or tcp://host:port")
    ] = "local"
    cores: Annotated[int | Literal["auto"], BeforeValidator(_cores)]
    memory_gb: float = Field(default=8, gt=0)
    roles: Annotated[list[Role], Field(min_length=1)]


class Topic(_Model):
    name: KafkaName
    partitions: Positive | None = None
    replication_factor: Positive | None = None
    min_insync_replicas: Positive | None = None
    retention: Annotated[int | None, _units(_DURATION_MS, "7d, 12h or 30m (ms, s, m, h, d, w)")] = (
        None  # in ms
    )
    retention_bytes: Annotated[
        int | None, _units(_SIZE_BYTES, "50GiB or 500MB (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)")
    ] = None
    compression: Compression | None = None


class Consumer(_Model):
    group: KafkaName
    topic: KafkaName
    sink: Annotated[
        str,
        _rule(
            lambda s: (
                s == "stdout"
                or (s.startswith("kafka:") and _TOPIC.match(s[6:]))
                or (s.startswith("file:") and len(s) > 5)
            ),
            "must be kafka:TOPIC, file:PATH or stdout",
        ),
    ] = "stdout"
    processes: Positive | None = None

    @property
    def sink_topic(self) -> str | None:
        return self.sink[6:] if self.sink.startswith("kafka:") else None


class Tuning(_Model):
    broker: dict[str, Scalar] = {}
    producer: dict[str, Scalar] = {}
    consumer: dict[str, Scalar] = {}


class Spec(_Model):
    cluster: Cluster
    nodes: Annotated[list[Node], Field(min_length=1)]
    topics: list[Topic] = []
    consumers: list[Consumer] = []
    tuning: Tuning = Tuning()

    def with_role(self, role: Role) -> list[Node]:
        return [n for n in self.nodes if role in n.roles]


# ---------------------------------------------------------------- YAML --


class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """Safe YAML that refuses duplicate keys: PyYAML would silently keep the last one."""

    def construct_mapping(self, node, deep=False):
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path, source: str) -> Any:
    try:
        return yaml.load(path.read_text(), Loader=_StrictLoader)
    except OSError as err:
        raise InputError(source, [Problem("", f"cannot read the spec: {err.strerror}")]) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        what = f"{err.problem} ({err.context})" if err.context else f"{err.problem}"
        if "duplicate key" not in what:
            what += "; check the indentation and quoting there"
        raise InputError(source, [Problem(where, what)]) from None
    except yaml.YAMLError as err:
        raise InputError(source, [Problem("", f"not valid YAML: {err}")]) from None


# ------------------------------------------------------- error wording --


def field_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The field names of the model at `loc` (for 'unknown key' hints)."""
    model: Any = Spec
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        model = next((a for a in (annotation, *args) if isinstance(a, type)), None)
        if model is None or not issubclass(model, BaseModel):
            return []
    return list(model.model_fields)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _wording(error: dict[str, Any]) -> Problem:
    loc, kind = tuple(error["loc"]), error["type"]
    if kind == "missing":
        return Problem(field_path(loc), "required")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.75)
        hint = f"did you mean {close[0]}?" if close else f"expected one of: {', '.join(allowed)}"
        return Problem(field_path(loc), f"unknown key ({hint})")
    message = error["msg"].replace("Input should be", "must be").replace("Value error, ", "")
    if kind in ("int_type", "int_from_float"):
        message = "must be an integer"
    elif kind in ("greater_than_equal", "greater_than"):
        op = ">=" if kind == "greater_than_equal" else ">"
        message = f"must be {op} {error['ctx'].get('ge', error['ctx'].get('gt')):g}"
    elif kind == "too_short":
        message = "must have at least one entry"
    elif kind in ("model_type", "dict_type"):
        message = "must be a mapping of keys to values"
    return Problem(field_path(loc), f"{message}, got {_shown(error['input'])}")


# --------------------------------------------------- cross-field rules --


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


def _tuning_rules(spec: Spec) -> list[Problem]:
    kafka = catalog.load(spec.cluster.kafka_version)
    problems = []
    for key, value in spec.tuning.broker.items():
        reason = kafka.check(key, to_property(value), spec.cluster.mode)
        if reason:
            problems.append(Problem(f"tuning.broker.{key}", reason))
    for kind in ("producer", "consumer"):
        for key, reason in client_config.problems(kind, getattr(spec.tuning, kind)).items():
            problems.append(Problem(f"tuning.{kind}.{key}", reason))
    return problems


def _warnings(spec: Spec) -> list[Problem]:
    warnings = []
    role = "controller" if spec.cluster.mode == "kraft" else "zookeeper"
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
    return warnings


def check_spec(spec: Spec) -> list[Problem]:
    """Every cross-field problem of a structurally valid spec (empty when it is sound)."""
    problems = _duplicates(spec.nodes, "name", "nodes")
    problems += _role_rules(spec) + _topic_rules(spec) + _tuning_rules(spec)
    return problems


def parse_spec(data: Any, source: str) -> tuple[Spec, list[Problem]]:
    """A spec from already-loaded data (YAML or a test's dict): (spec, warnings)."""
    if not isinstance(data, dict):
        got = "an empty file" if data is None else type(data).__name__
        raise InputError(
            source, [Problem("", f"must be a mapping with cluster and nodes, got {got}")]
        )
    try:
        spec = Spec.model_validate(data)
    except ValidationError as err:
        raise InputError(source, [_wording(e) for e in err.errors()]) from None
    raise_if(source, check_spec(spec))
    return spec, _warnings(spec)


def load_spec(path: str | Path) -> tuple[Spec, list[Problem]]:
    source = str(path)
    return parse_spec(_read_yaml(Path(path), source), source)
