"""Stopping JVMs: a quorum member left without a quorum is no fault; a stuck broker is."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from infra.runtime.cluster import LocalCluster, Service

EXITS_ON_TERM = "trap 'exit 0' TERM; touch \"$0\"; sleep 60 & wait"
IGNORES_TERM = "trap '' TERM; touch \"$0\"; sleep 60"


def services(tmp_path: Path, *scripts: str) -> list[Service]:
    """JVM stand-ins, each with its SIGTERM handling in place before it is returned."""
    found = []
    for i, script in enumerate(scripts):
        service = Service(node=None, kind="kafka", log=Path(f"/dev/null{i}"))  # type: ignore[arg-type]
        ready = tmp_path / f"ready-{i}"
        service.process = subprocess.Popen(["sh", "-c", script, str(ready)])
        found.append((service, ready))
    deadline = time.monotonic() + 10
    while not all(ready.exists() for _s, ready in found) and time.monotonic() < deadline:
        time.sleep(0.02)
    return [service for service, _ready in found]


def stopper(said: list[str]) -> LocalCluster:
    cluster = LocalCluster.__new__(LocalCluster)  # only what stopping uses
    cluster.say = said.append
    return cluster


def test_a_voter_left_without_a_quorum_is_killed_soon_and_that_is_clean(monkeypatch, tmp_path):
    monkeypatch.setattr(Service, "name", property(lambda s: f"voter-{s.log.name[-1]}"))
    said: list[str] = []
    voters = services(tmp_path, EXITS_ON_TERM, EXITS_ON_TERM, IGNORES_TERM)
    assert stopper(said)._stop_all(voters, grace_s=60, voters=3) is True
    assert said == ["  voter-2 waited for a quorum that had stopped: killed"]
    assert all(v.process.poll() is not None for v in voters)


def test_a_broker_that_outlives_its_grace_is_killed_and_that_is_not_clean(monkeypatch, tmp_path):
    monkeypatch.setattr(Service, "name", property(lambda s: f"broker-{s.log.name[-1]}"))
    said: list[str] = []
    brokers = services(tmp_path, EXITS_ON_TERM, IGNORES_TERM)
    assert stopper(said)._stop_all(brokers, grace_s=1) is False
    assert said == ["  broker-1 did not stop within 1 s: killed"]
