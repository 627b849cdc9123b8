"""`python -m infra up --local`: the planned cluster on real Kafka, the planned group
consuming, then down leaving nothing; a broker that cannot start is one line."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import orjson

from consumers.settings import client_file
from tests.conftest import REPO
from tests.integration.kafka_helpers import free_port_block, read_topic, wait_for


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
            "--port-base",
            str(free_port_block(4)),
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
            180,  # the first run resolves Kafka's jars from Maven Central
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
        admin = client_file(inventory["runtime"]["clients"]["admin"])  # secure by default
        parsed = wait_for(
            lambda: (
                len(r := read_topic(bootstrap, "logs.parsed", quiet_s=1, login=admin)) >= 3000 and r
            ),
            90,
            "the demo lines parsed into logs.parsed",
        )
        assert {orjson.loads(v)["format"] for v, _ in parsed} == {"rfc5424"}
        started = descendants(runtime.pid)
        jvms = [e["pid"] for e in inventory["runtime"]["kafka"]]
        assert len(jvms) == 3 and set(jvms) <= started  # three Kafka JVMs, its own children
        assert len(started) >= 3 + 1 + 8  # and a supervisor with its 8 workers
    finally:
        runtime.send_signal(signal.SIGTERM)
        code = runtime.wait(timeout=90)
    assert code == 0, (tmp_path / "runtime.err").read_text()
    assert [pid for pid in started if alive(pid)] == []
    assert (out / "parsers-1" / "consumer-siem-parsers.properties").exists()


def up_local(out: Path, port_base: int, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "infra", "up", "--local", "specs/three-node-kraft.yaml",
         "--out", str(out), "--demo", "0", "--port-base", str(port_base), *extra],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def java_processes_under(out: Path) -> list[str]:
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in ps.splitlines() if "java" in line and str(out) in line]


def test_a_broker_that_cannot_start_is_one_line_and_nothing_is_left(tmp_path):
    out = tmp_path / "local"
    # kafka-2's storage says it belongs to another cluster: Kafka's storage tool refuses it.
    data = out / "kafka-2" / "data"
    data.mkdir(parents=True)
    (data / "meta.properties").write_text(
        "version=1\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\nnode.id=2\n"
        "directory.id=ZZZZZZZZZZZZZZZZZZZZZZ\n"
    )
    done = up_local(out, free_port_block(4))
    assert done.returncode == 1, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(
        f"up --local: kafka-2 could not format its storage; {out}/kafka-2/kafka.log says: "
    )
    assert line.endswith("but read AAAAAAAAAAAAAAAAAAAAAA")  # Kafka's own words
    assert java_processes_under(out) == []


def test_a_taken_port_is_one_line_and_starts_nothing(tmp_path):
    out = tmp_path / "local"
    base = free_port_block(4)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", base + 12))  # kafka-2's EXTERNAL listener
        holder.listen()
        done = up_local(out, base)
    assert done.returncode == 1
    assert done.stderr == (
        f"up --local: port {base + 12} (kafka-2 EXTERNAL) on 127.0.0.1 is taken: stop what "
        "holds it, or plan another block with --port-base\n"
    )
    assert java_processes_under(out) == []


def test_a_renumbered_node_is_refused_with_the_id_lines_that_keep_it(tmp_path):
    """kafka-2's data was formatted when it was the third Kafka node (a node before it was
    removed since): the spec now numbers it 2. Refused before any JVM starts, data kept."""
    out = tmp_path / "local"
    data = out / "kafka-2" / "data"
    data.mkdir(parents=True)
    meta = "version=1\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\nnode.id=3\n"
    (data / "meta.properties").write_text(meta)
    done = up_local(out, free_port_block(4))
    assert done.returncode == 1, done.stderr
    assert done.stderr == (
        "up --local: the spec renumbers nodes whose data keeps its node.id: kafka-2 holds 3 "
        "(planned 2); a node was inserted, removed or moved in the list: add kafka-2: id: 3 "
        "to the spec\n"
    )
    assert (data / "meta.properties").read_text() == meta
    assert java_processes_under(out) == []
