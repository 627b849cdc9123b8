"""make up / make down without a Pulumi CLI: one line saying so, then the local runtime."""

from __future__ import annotations

import os
import subprocess

from tests.conftest import REPO

# A PATH with a shell and coreutils but no pulumi, whatever this machine has installed.
NO_PULUMI = {**os.environ, "PATH": "/usr/bin:/bin"}


def stack(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "scripts/stack.sh", *args], cwd=REPO, env=NO_PULUMI, capture_output=True, text=True
    )


def test_down_without_pulumi_says_nothing_was_provisioned():
    result = stack("down")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        "make down: no Pulumi CLI here, so Pulumi provisioned nothing; "
        "the local runtime stops with Ctrl-C\n"
    )


def test_up_without_pulumi_runs_the_local_runtime():
    spec = "tests/unit/bad_specs/cores-zero.yaml"
    result = stack("up", spec)
    assert result.stdout.startswith(
        f"make up: no Pulumi CLI here; running the local runtime for {spec} on Kafka JVMs"
    )
    # The local runtime itself answered: a bad spec is its one line and exit 2.
    assert result.returncode == 2
    assert result.stderr == f'{spec}: nodes[0].cores: must be an integer >= 1 or "auto", got 0\n'
