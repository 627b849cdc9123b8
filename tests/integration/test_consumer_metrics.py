"""The deployment's Prometheus endpoint against a real Kafka broker: what a scrape says
matches what was fed, and survives a worker's restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from consumers.produce import demo_lines
from tests.conftest import REPO
from tests.integration.kafka_helpers import Deployment, wait_for
from tests.integration.test_consumer_deployment import JOIN_TIMEOUT_S, MALFORMED, produce

VALID = 300


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def scrape(port: int) -> dict[str, dict[frozenset, float]]:
    """Each sample's name -> its labels (as items) -> its value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    found: dict[str, dict[frozenset, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found.setdefault(s.name, {})[frozenset(s.labels.items())] = s.value
    return found


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get(name, {}).get(frozenset(labels.items()))


def lag_partitions(samples: dict) -> set[str]:
    """The partitions ("topic:N") that have a lag series."""
    return {
        f"{labels['topic']}:{labels['partition']}"
        for labels in map(dict, samples.get("klc_consumer_lag", {}))
    }


def shared_by_both(deployment: Deployment) -> bool:
    status = deployment.status() or {"workers": []}
    return len(deployment.owned()) == 3 and all(w["partitions"] for w in status["workers"])


def test_a_scrape_counts_what_was_fed_and_survives_a_restart(bootstrap, new_topic, tmp_path):
    topic, dlq = new_topic(3), new_topic(1, prefix="dlq")
    group, port = f"g-{topic}", free_port()
    g = {"group": group}
    deployment = Deployment(
        tmp_path, "--bootstrap-servers", bootstrap, "--group", group, "--topic", topic,
        "--processes", "2", "--sink", f"file:{tmp_path / 'out.jsonl'}", "--dlq", dlq,
        "--metrics", f"127.0.0.1:{port}",
    )  # fmt: skip
    try:
        wait_for(lambda: shared_by_both(deployment), JOIN_TIMEOUT_S, "both workers owning")
        produce(bootstrap, topic, [*demo_lines(VALID), *MALFORMED])

        def counted() -> dict | None:
            m = scrape(port)
            done = (
                value(m, "klc_consumer_records_total", **g) == VALID
                and value(m, "klc_consumer_dlq_records_total", **g) == len(MALFORMED)
                and all(v == 0 for v in m.get("klc_consumer_lag", {}).values())
            )
            return m if done else None

        m = wait_for(counted, 60, lambda: f"the fed records counted: {scrape(port)}")
        assert value(m, "klc_consumer_workers", **g) == 2
        assert value(m, "klc_consumer_workers_planned", **g) == 2
        assert lag_partitions(m) == {f"{topic}:{p}" for p in range(3)}
        assert value(m, "klc_consumer_commit_seconds_count", **g) > 0
        assert value(m, "klc_consumer_rebalances_total", **g) >= 2  # each worker was assigned some
        assert f"serving Prometheus metrics at http://127.0.0.1:{port}/metrics" in deployment.log

        victim = next(w for w in deployment.status()["workers"] if w["index"] == 0)
        os.kill(victim["pid"], signal.SIGKILL)
        restarted = {**g, "worker": "0"}
        m = wait_for(
            lambda: (
                (m := scrape(port))
                and value(m, "klc_consumer_worker_restarts_total", **restarted) == 1
                and value(m, "klc_consumer_workers", **g) == 2
                and m
            ),
            30,
            "the killed worker restarted",
        )
        assert value(m, "klc_consumer_records_total", **g) == VALID  # totals kept
        assert value(m, "klc_consumer_crash_looping", **restarted) == 0
        # The replacement joins; each partition keeps one lag series, whoever owns it now.
        wait_for(
            lambda: (
                shared_by_both(deployment)
                and lag_partitions(scrape(port)) == set(deployment.owned())
            ),
            JOIN_TIMEOUT_S,
            lambda: f"the replacement owning partitions: {deployment.status()}",
        )
    finally:
        assert deployment.stop() == 0, deployment.log


def run_consumers(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "consumers", *args],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_a_metrics_port_already_taken_is_one_line_and_exit_2(bootstrap, new_topic):
    topic = new_topic(1)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        result = run_consumers(
            "--bootstrap-servers", bootstrap, "--group", f"g-{topic}", "--topic", topic,
            "--metrics", address,
        )  # fmt: skip
    assert (result.returncode, result.stderr) == (
        2,
        f"consumers: cannot serve metrics at {address} (Address already in use); "
        "choose a free port or an address of this host\n",
    )


def test_a_bad_metrics_flag_is_one_line_and_exit_2():
    result = run_consumers("--bootstrap-servers", "b:1", "--group", "g", "--topic", "t",
                           "--metrics", "9404")  # fmt: skip
    assert (result.returncode, result.stderr) == (
        2,
        "consumers: --metrics must be HOST:PORT with a port from 1 to 65535, got '9404'\n",
    )
