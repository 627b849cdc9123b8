"""Rendering: the checker guards what leaves `render`, and values cannot break the file format."""

from __future__ import annotations

import dataclasses

import jinja2
import pytest

from consumers.properties import parse
from infra.build import build
from infra.model.load import parse_spec
from infra.model.planner import build_plan
from infra.render.files import _ENV, check, render
from tests.conftest import TEST_LOCAL_CORES


def test_two_files_claiming_one_node_id_are_refused():
    built = build("specs/three-node-kraft.yaml", local_cores=TEST_LOCAL_CORES)
    rendered = dict(built.rendered)
    server, *others = rendered["kafka-2"]
    rendered["kafka-2"] = [
        dataclasses.replace(server, content=server.content.replace("node.id=2", "node.id=1")),
        *others,
    ]
    found = [p.line("x.yaml") for p in check(built.plan, rendered)]
    assert "x.yaml: kafka-2/server.properties: node.id: 1 is also the id of kafka-1" in found


def test_a_value_with_a_line_break_cannot_inject_a_key(minimal_spec):
    minimal_spec["tuning"] = {
        "broker": {"ssl.endpoint.identification.algorithm": "https\nnum.partitions=999"}
    }
    spec, _ = parse_spec(minimal_spec, "x.yaml")
    plan, _ = build_plan(spec, "x.yaml", TEST_LOCAL_CORES)
    (server, *_) = render(plan, "x.yaml")["kafka-1"]
    entries = parse(server.content)
    assert [e.value for e in entries if e.key == "num.partitions"] == ["4"]
    (algorithm,) = [e.value for e in entries if e.key == "ssl.endpoint.identification.algorithm"]
    assert algorithm == "https\nnum.partitions=999"


def test_templates_refuse_an_undefined_value():
    with pytest.raises(jinja2.UndefinedError):
        _ENV.get_template("myid.j2").render(node=object())


def test_client_settings_in_consumer_files_are_checked_by_librdkafka():
    built = build("specs/single-node.yaml", local_cores=TEST_LOCAL_CORES)
    rendered = dict(built.rendered)
    *others, consumer = rendered["kafka-1"]
    # The Java client's name for librdkafka's fetch.wait.max.ms: a mistake the plan once made.
    broken = consumer.content.replace("consumer.fetch.wait.max.ms=", "consumer.fetch.max.wait.ms=")
    rendered["kafka-1"] = [*others, dataclasses.replace(consumer, content=broken)]
    assert [p.line("x.yaml") for p in check(built.plan, rendered)] == [
        "x.yaml: kafka-1/consumer-siem-parsers.properties: consumer.fetch.max.wait.ms: "
        'No such configuration property: "fetch.max.wait.ms"'
    ]


def test_a_fractional_tuning_value_is_rendered_as_written(minimal_spec):
    # A DOUBLE key: the plan once refused every float with a pydantic traceback.
    minimal_spec["tuning"] = {"broker": {"log.cleaner.min.cleanable.ratio": 0.6}}
    spec, _ = parse_spec(minimal_spec, "x.yaml")
    plan, _ = build_plan(spec, "x.yaml", TEST_LOCAL_CORES)
    (server, *_) = render(plan, "x.yaml")["kafka-1"]
    values = {e.key: e.value for e in parse(server.content)}
    assert values["log.cleaner.min.cleanable.ratio"] == "0.6"
