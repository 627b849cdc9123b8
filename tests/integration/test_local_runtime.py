"""`python -m infra up --local`: up, consuming the planned group, then down leaving nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import orjson

from tests.conftest import REPO
from tests.integration.kafka_helpers import read_topic, wait_for


def descendants(pid: int) -> set[int]:
    found, frontier = set(), [pid]
    while frontier:
        out = subprocess.run(
            ["ps", "--ppid", str(frontier.pop()), "-o", "pid="], capture_output=True, text=True
        ).stdout
        children = {int(p) for p in out.split()}
        found |= children
        frontier += children
    return found


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


def test_local_runtime_runs_the_plan_and_tears_everything_down(tmp_path):
    out = tmp_path / "local"
    runtime = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "infra",
            "up",
            "--local",
            "specs/three-node-kraft.yaml",
            "--out",
            str(out),
            "--demo",
            "3000",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "runtime.err").open("w"),
    )
    try:
        inventory = wait_for(
            lambda: (
                (out / "inventory.json").exists()
                and json.loads((out / "inventory.json").read_text())
            ),
            60,
            "the inventory",
        )
        (group,) = inventory["groups"]
        status_file = out / "parsers-1" / "status-siem-parsers.json"
        wait_for(
            lambda: (
                status_file.exists()
                and json.loads(status_file.read_text())["partitions_owned"] == group["partitions"]
            ),
            90,
            "the planned group owning every partition",
        )
        status = json.loads(status_file.read_text())
        assert status["processes"] == group["processes"] == 8
        bootstrap = inventory["runtime"]["bootstrap_servers"]
        parsed = wait_for(
            lambda: len(r := read_topic(bootstrap, "logs.parsed", quiet_s=1)) >= 3000 and r,
            90,
            "the demo lines parsed into logs.parsed",
        )
        assert {orjson.loads(v)["format"] for v, _ in parsed} == {"rfc5424"}
        started = descendants(runtime.pid)
        assert len(started) >= 1 + 1 + 8  # the broker (unless given), a supervisor, 8 workers
    finally:
        runtime.send_signal(signal.SIGTERM)
        code = runtime.wait(timeout=90)
    assert code == 0, (tmp_path / "runtime.err").read_text()
    assert [pid for pid in started if alive(pid)] == []
    assert (out / "parsers-1" / "consumer-siem-parsers.properties").exists()
