"""Plan -> file contents, checked against Kafka's rules before they leave this module.

Templates under `templates/` hold layout only; every value comes from the plan.
`render(plan, source)` returns each node's files, or raises InputError when a
rendered `server.properties` would be refused by a broker of the planned version.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import jinja2

from consumers.client_config import problems as client_problems
from consumers.properties import parse, to_property
from consumers.settings import prefixed
from infra.kafka.broker_rules import check_entries
from infra.model.metrics import EXPORT_RULES, METRICS_PORT, SCRAPE_INTERVAL_S, alerts, targets
from infra.model.plan import NodePlan, Plan
from infra.problems import Problem, raise_if
from infra.render.dashboard import dashboard

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def _property_value(value: object) -> str:
    """A value as Java properties text: backslashes and line breaks escaped."""
    text = to_property(value)
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    autoescape=False,
)
_ENV.filters["prop"] = _property_value
# A YAML scalar or flow mapping, as JSON (YAML's subset) but readable: Jinja's own tojson
# escapes < > & ' for HTML, which the exporter's patterns are full of.
_ENV.filters["yaml"] = lambda value: json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class RenderedFile:
    name: str  # file name under the node's directory
    service: str  # the node service (a key of NodePlan.containers) whose container holds it
    path: str  # where its service reads it: in its container, or on this machine (local)
    content: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content.encode()).hexdigest()


Rendered = dict[str, list[RenderedFile]]  # node name -> its files


def _node_files(plan: Plan, node: NodePlan) -> list[RenderedFile]:
    def file(name: str, service: str, template: str, path: str, **extra) -> RenderedFile:
        content = _ENV.get_template(template).render(cluster=plan.cluster, node=node, **extra)
        return RenderedFile(name, service, path, content)

    def exporter(service: str) -> RenderedFile:
        name = metrics_rules_file(service)
        target = next(t for t in targets(plan)[service] if t.labels["node"] == node.name)
        rules = EXPORT_RULES[service]
        path = f"{node.config_dir}/{name}"
        return file(name, service, "jmx-exporter.yaml.j2", path, exported=service,
                    rules=rules, target=target.address)  # fmt: skip

    files = []
    if node.server_properties:
        path = f"{node.config_dir}/server.properties"
        files.append(file("server.properties", "kafka", "server.properties.j2", path))
        files.append(exporter("kafka"))
    if node.zookeeper_properties:
        path = f"{node.config_dir}/zookeeper.properties"
        files.append(file("zookeeper.properties", "zookeeper", "zookeeper.properties.j2", path))
        myid = f"{node.data_dirs['zookeeper']}/myid"
        files.append(file("myid", "zookeeper", "myid.j2", myid))
        files.append(exporter("zookeeper"))
    groups = {g.group: g for g in plan.groups}
    for share in node.consumers:
        name = f"consumer-{share.group}.properties"
        files.append(
            file(
                name,
                f"consumer:{share.group}",
                "consumer.properties.j2",
                f"{node.config_dir}/{name}",
                group=groups[share.group],
                share=share,
            )
        )
    return files


def metrics_rules_file(service: str) -> str:
    """The JMX exporter rules a Kafka or ZooKeeper JVM's agent reads, beside its config."""
    assert service in METRICS_PORT, service
    return f"{service}-metrics.yaml"


def metrics_agent(node: NodePlan, service: str, jar: str, host: str) -> str:
    """The JVM flag that starts the JMX exporter agent of `service` on `node`: bound to
    `host` on its planned metrics port, reading its rendered rules file."""
    port = next(p.container for p in node.ports if p.name == METRICS_PORT[service])
    return f"-javaagent:{jar}={host}:{port}:{node.config_dir}/{metrics_rules_file(service)}"


def monitoring(plan: Plan) -> dict[str, str]:
    """The cluster's Prometheus config, alert rules and Grafana dashboard (file name ->
    content): a Prometheus on the operator's machine runs them as they are."""
    context = {"cluster": plan.cluster}
    return {
        "prometheus.yml": _ENV.get_template("prometheus.yml.j2").render(
            **context, jobs=targets(plan), interval=SCRAPE_INTERVAL_S
        ),
        "alerts.yml": _ENV.get_template("alerts.yml.j2").render(**context, alerts=alerts(plan)),
        "dashboard.json": dashboard(plan),
    }


def _check_client_settings(where: str, content: str) -> list[Problem]:
    """What librdkafka would refuse in a consumer settings file's consumer./producer. keys."""
    settings = {e.key: e.value for e in parse(content)}
    return [
        Problem(f"{where}: {kind}.{key}", reason)
        for kind in ("consumer", "producer")
        for key, reason in client_problems(kind, prefixed(settings, kind)).items()
    ]


def check(plan: Plan, rendered: Rendered) -> list[Problem]:
    """What a broker or librdkafka would refuse in the rendered files, as `node/file: key`."""
    problems = []
    owners: dict[str, str] = {}  # node.id (or broker.id) -> the node whose file set it
    for node in plan.nodes:
        for f in rendered[node.name]:
            where = f"{node.name}/{f.name}"
            if f.name.startswith("consumer-"):
                problems += _check_client_settings(where, f.content)
            if f.name != "server.properties":
                continue
            entries = parse(f.content)
            for p in check_entries(entries, plan.cluster.kafka_version):
                problems.append(Problem(f"{where}: {p.path}", p.message))
            settings = {e.key: e.value.strip() for e in entries}
            key = "node.id" if "node.id" in settings else "broker.id"
            if key in settings:
                if settings[key] in owners:
                    problems.append(
                        Problem(
                            f"{where}: {key}",
                            f"{settings[key]} is also the id of {owners[settings[key]]}",
                        )
                    )
                owners.setdefault(settings[key], node.name)
    return problems


def render(plan: Plan, source: str) -> Rendered:
    rendered = {node.name: _node_files(plan, node) for node in plan.nodes}
    raise_if(source, check(plan, rendered))
    return rendered


def _put(path: Path, content: str) -> None:
    """A file with this content: left untouched when it already has it (a re-render keeps
    its timestamps and costs a read), else written whole."""
    data = content.encode()
    try:
        if path.read_bytes() == data:
            return
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def write(rendered: Rendered, out_dir: Path, extra: dict[str, str]) -> list[Path]:
    """Write DIR/<node>/<file> and the `extra` top-level files; nothing outside DIR."""
    files = {out_dir / node / f.name: f.content for node, fs in rendered.items() for f in fs}
    files |= {out_dir / name: content for name, content in extra.items()}
    for path, content in files.items():
        _put(path, content)
    return list(files)


def install(rendered: Rendered) -> list[Path]:
    """Write every file where its service reads it (the local placement's own paths)."""
    written = [Path(f.path) for files in rendered.values() for f in files]
    for path, f in zip(written, (f for fs in rendered.values() for f in fs), strict=True):
        _put(path, f.content)
    return written
