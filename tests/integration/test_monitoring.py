"""A real Prometheus (Debian's) scraping the local runtime from the config the plan renders:
every planned target up, the brokers' and the group's series there, the alerts loaded;
and `infra top` showing the same cluster."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import urllib.parse
import urllib.request

import pytest

from tests.conftest import REPO
from tests.integration.kafka_helpers import free_port_block, wait_for


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def api(port: int, path: str, **query: str):
    url = f"http://127.0.0.1:{port}/api/v1/{path}?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())["data"]


def test_prometheus_scrapes_every_planned_target_of_the_local_runtime(tmp_path):
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.fail("prometheus is not installed: `make deps` installs Debian's prometheus")
    out = tmp_path / "local"
    runtime = subprocess.Popen(
        [sys.executable, "-m", "infra", "up", "--local", "specs/three-node-kraft.yaml",
         "--out", str(out), "--demo", "3000", "--port-base", str(free_port_block(4))],
        cwd=REPO, stdout=(tmp_path / "runtime.out").open("w"),
        stderr=(tmp_path / "runtime.err").open("w"),
    )  # fmt: skip
    server = None
    try:
        inventory = wait_for(
            lambda: (
                (out / "inventory.json").exists()
                and json.loads((out / "inventory.json").read_text())
            ),
            180,
            "the inventory",
        )
        planned = inventory["metrics"]
        assert sorted(t["service"] for t in planned) == [
            "consumer:siem-parsers", "kafka", "kafka", "kafka",
        ]  # fmt: skip
        port = free_port()
        server = subprocess.Popen(
            [prometheus, f"--config.file={out}/monitoring/prometheus.yml",
             f"--storage.tsdb.path={tmp_path}/tsdb", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("w"),
        )  # fmt: skip

        def targets_up():
            try:
                active = api(port, "targets", state="active")["activeTargets"]
            except OSError:
                return False
            return (
                len(active) == len(planned) and all(t["health"] == "up" for t in active) and active
            )

        active = wait_for(targets_up, 90, "every planned target up in Prometheus", interval=1)
        assert {t["scrapeUrl"] for t in active} == {
            f"http://{t['address']}/metrics" for t in planned
        }
        assert {t["labels"]["node"] for t in active} == {
            "kafka-1",
            "kafka-2",
            "kafka-3",
            "parsers-1",
        }

        def query(expr: str):
            return api(port, "query", query=expr)["result"]

        urp = query('kafka_server_replicamanager_underreplicatedpartitions{cluster="siem"}')
        assert sorted(s["metric"]["node"] for s in urp) == ["kafka-1", "kafka-2", "kafka-3"]
        controllers = query("sum(kafka_controller_kafkacontroller_activecontrollercount)")
        assert [s["value"][1] for s in controllers] == ["1"]  # exactly one, of three voters
        lag = wait_for(
            lambda: query('klc_consumer_lag{group="siem-parsers"}'), 60, "the lag series"
        )
        assert {s["metric"]["topic"] for s in lag} == {"logs.raw"}
        delivered = wait_for(
            lambda: [
                s for s in query('klc_consumer_records_total{group="siem-parsers"}')
                if float(s["value"][1]) >= 3000
            ],
            90,
            "the demo lines counted",
            interval=1,
        )  # fmt: skip
        assert delivered
        rules = [r["name"] for g in api(port, "rules")["groups"] for r in g["rules"]]
        assert "KafkaOfflinePartitions" in rules and "ConsumerLagGrowing" in rules
        firing = [a["labels"]["alertname"] for a in api(port, "alerts")["alerts"]
                  if a["state"] == "firing"]  # fmt: skip
        assert firing == []
        # `infra top` shows the same cluster from the admin API and the group's endpoint.
        shown = subprocess.run(
            [sys.executable, "-m", "infra", "top", "--local", "--out", str(out), "--once"],
            cwd=REPO, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert shown.returncode == 0, shown.stderr
        rows = {line.split("│")[1].strip(): line for line in shown.stdout.splitlines()
                if line.count("│") > 2}  # fmt: skip
        assert {"kafka-1", "kafka-2", "kafka-3", "siem-parsers"} <= set(rows), shown.stdout
        assert "8/8" in rows["siem-parsers"]  # its workers, live of planned
        assert "without a leader" in shown.stdout and " 0 without a leader" in shown.stdout
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        runtime.send_signal(signal.SIGTERM)
        code = runtime.wait(timeout=90)
    assert code == 0, (tmp_path / "runtime.err").read_text()
    said = (tmp_path / "runtime.out").read_text()
    assert f"watch them: prometheus --config.file={out}/monitoring/prometheus.yml\n" in said
