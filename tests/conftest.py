"""Shared helpers: the repository root, example specs, and running the CLI in-process."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from infra.cli import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_SPECS = sorted((REPO / "specs").glob("*.yaml"))


def plaintext(spec: Path) -> dict:
    """`spec` opting out of security: for what tests or measures a plaintext cluster."""
    found = yaml.safe_load(spec.read_text())
    return {**found, "security": {"tls": False, "sasl": "none", "acls": False}}


# `cores: auto` resolves to this in tests, so plans do not depend on the test machine.
TEST_LOCAL_CORES = 4

MINIMAL_SPEC = {
    "cluster": {"name": "logs"},
    "nodes": [{"name": "kafka-1", "cores": 4, "roles": ["broker", "controller", "consumer"]}],
    "topics": [{"name": "logs.raw"}],
    "consumers": [{"group": "parsers", "topic": "logs.raw", "sink": "kafka:logs.parsed"}],
}


@pytest.fixture
def minimal_spec() -> dict:
    return copy.deepcopy(MINIMAL_SPEC)


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run `python -m infra ARGS` in-process from the repo root: (exit code, stdout, stderr)."""
    monkeypatch.chdir(REPO)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run
