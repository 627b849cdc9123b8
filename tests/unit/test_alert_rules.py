"""The plan's alert rules under Prometheus's own rule tester (`promtool test rules`).

Every rendered alert has a case that fires it and one, close to it, that does not; a
rendered alert without both fails the coverage test. promtool comes with Debian's
`prometheus` package (`make deps` installs it).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from infra.build import build
from infra.model.metrics import alerts
from infra.render.files import monitoring
from tests.conftest import REPO, TEST_LOCAL_CORES

BUILT = build(str(REPO / "specs/three-node-kraft.yaml"), local_cores=TEST_LOCAL_CORES)
PLAN = BUILT.plan
CLUSTER = PLAN.cluster.name
(GROUP,) = PLAN.groups
LAG_FLOOR = int(GROUP.consumer["max.poll.records"].value) * int(GROUP.processes.value)


def series(name: str, values: str, **labels: str) -> dict:
    found = {"cluster": CLUSTER, **labels}
    return {"series": name + "{" + ",".join(f'{k}="{v}"' for k, v in found.items()) + "}",
            "values": values}  # fmt: skip


def consumer(name: str, values: str, **labels: str) -> dict:
    return series(f"klc_consumer_{name}", values, group=GROUP.group, **labels)


def rising(start: int, step: int, minutes: int) -> str:
    """A counter or gauge from `start`, `step` more each minute (promtool's a+bxn)."""
    return f"{start}+{step}x{minutes}"


# alert -> (what fires it, when it is asked, the labels it fires with), then a near miss.
CASES = {
    "KafkaTargetDown": (
        [series("up", "0x6", job="kafka", node="kafka-2", service="kafka")],
        "4m",
        {"job": "kafka", "node": "kafka-2", "service": "kafka", "severity": "critical"},
        [series("up", "0 1x6", job="kafka", node="kafka-2", service="kafka")],  # one lost scrape
    ),
    "KafkaUnderReplicatedPartitions": (
        [series("kafka_server_replicamanager_underreplicatedpartitions", "3x10", node="kafka-1")],
        "8m",
        {"node": "kafka-1", "severity": "warning"},
        # a rolling restart: behind for 3 minutes, then caught up
        [
            series(
                "kafka_server_replicamanager_underreplicatedpartitions", "3x3 0x7", node="kafka-1"
            )
        ],
    ),
    "KafkaOfflinePartitions": (
        [
            series(
                "kafka_controller_kafkacontroller_offlinepartitionscount", "0 2x6", node="kafka-1"
            )
        ],
        "4m",
        {"severity": "critical"},
        [series("kafka_controller_kafkacontroller_offlinepartitionscount", "0x6", node="kafka-1")],
    ),
    "KafkaNoActiveController": (
        [
            series("kafka_controller_kafkacontroller_activecontrollercount", "0x6", node=n)
            for n in ("kafka-1", "kafka-2", "kafka-3")
        ],
        "4m",
        {"severity": "critical"},
        [
            series("kafka_controller_kafkacontroller_activecontrollercount", v, node=n)
            for n, v in (("kafka-1", "1x6"), ("kafka-2", "0x6"), ("kafka-3", "0x6"))
        ],
    ),
    "ConsumerLagGrowing": (
        [consumer("lag", rising(LAG_FLOOR, 500, 40), topic="logs.raw", partition="0")],
        "30m",
        {"group": GROUP.group, "severity": "warning"},
        # as far behind, but holding steady: a burst the group keeps pace with
        [consumer("lag", f"{LAG_FLOOR * 2}x40", topic="logs.raw", partition="0")],
    ),
    "ConsumerDeadLetterRate": (
        [
            consumer("records_total", rising(0, 6000, 20)),
            consumer("dlq_records_total", rising(0, 600, 20)),  # 10%
        ],
        "15m",
        {"group": GROUP.group, "severity": "warning"},
        [
            consumer("records_total", rising(0, 6000, 20)),
            consumer("dlq_records_total", rising(0, 30, 20)),  # 0.5%
        ],
    ),
    "ConsumerWorkerCrashLooping": (
        [consumer("crash_looping", "0 1x3", node="parsers-1", worker="3")],
        "2m",
        {"group": GROUP.group, "node": "parsers-1", "worker": "3", "severity": "critical"},
        [consumer("crash_looping", "0x3", node="parsers-1", worker="3")],
    ),
}


def firing(alert: str, labels: dict[str, str] | None, when: str) -> dict:
    expected = []
    if labels is not None:
        found = {"alertname": alert, "alertstate": "firing", "cluster": CLUSTER, **labels}
        text = ",".join(f'{k}="{v}"' for k, v in found.items())
        expected = [{"labels": "ALERTS{" + text + "}", "value": 1}]
    return {
        "expr": f'ALERTS{{alertname="{alert}",alertstate="firing"}}',
        "eval_time": when,
        "exp_samples": expected,
    }


def promtool_tests(tmp_path: Path, cases: dict) -> subprocess.CompletedProcess:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: `make deps` installs Debian's prometheus")
    (tmp_path / "alerts.yml").write_text(monitoring(PLAN)["alerts.yml"])
    tests = []
    for alert, (fires, when, labels, near) in cases.items():
        tests.append({"interval": "1m", "input_series": fires,
                      "promql_expr_test": [firing(alert, labels, when)]})  # fmt: skip
        tests.append({"interval": "1m", "input_series": near,
                      "promql_expr_test": [firing(alert, None, when)]})  # fmt: skip
    suite = {"rule_files": ["alerts.yml"], "evaluation_interval": "1m", "tests": tests}
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(suite, sort_keys=False))
    return subprocess.run(
        [promtool, "test", "rules", "tests.yml"], cwd=tmp_path, capture_output=True, text=True
    )


def test_every_alert_fires_on_its_case_and_not_on_the_near_miss(tmp_path):
    done = promtool_tests(tmp_path, CASES)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_sees_an_alert_that_does_not_fire(tmp_path):
    """The tester itself can fail: a case whose series never reach the threshold."""
    _, when, labels, _ = CASES["KafkaOfflinePartitions"]
    quiet = [series("kafka_controller_kafkacontroller_offlinepartitionscount", "0x6")]
    done = promtool_tests(tmp_path, {"KafkaOfflinePartitions": (quiet, when, labels, quiet)})
    assert done.returncode != 0
    assert "KafkaOfflinePartitions" in done.stdout + done.stderr


def test_every_rendered_alert_has_its_cases():
    rendered = yaml.safe_load(monitoring(PLAN)["alerts.yml"])
    names = {rule["alert"] for group in rendered["groups"] for rule in group["rules"]}
    assert names == set(CASES) == {a.name for a in alerts(PLAN)}


def test_the_rendered_prometheus_config_and_rules_pass_promtool(tmp_path):
    for name, content in monitoring(PLAN).items():
        (tmp_path / name).write_text(content)
    done = subprocess.run(
        ["promtool", "check", "config", "prometheus.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 rule files found" in done.stdout
