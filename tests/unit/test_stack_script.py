"""make up / make down without a Pulumi CLI: one line saying so, then the local runtime."""

from __future__ import annotations

import os
import subprocess

from infra.secrets import Keyring
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


FAKE_PULUMI = """#!/bin/bash
# Records each call; `config get` answers from the recorded config, `config set` stores it.
echo "pulumi $*" >> "$STATE/calls"
case "$1 $2" in
    "config get") key=$3; [ -f "$STATE/$key" ] && cat "$STATE/$key" || exit 1 ;;
    "config set") if [ "$3" = --secret ]; then key=$4; cat > "$STATE/$key"; else key=$3;
                  printf '%s' "$4" > "$STATE/$key"; fi ;;
esac
"""


def with_fake_pulumi(tmp_path, *args: str) -> subprocess.CompletedProcess:
    """scripts/stack.sh with a `pulumi` that records and a `docker` that answers."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "pulumi").write_text(FAKE_PULUMI)
    (bin_dir / "docker").write_text("#!/bin/sh\nexit 0\n")
    for tool in ("pulumi", "docker"):
        (bin_dir / tool).chmod(0o755)
    env = {**NO_PULUMI, "PATH": f"{bin_dir}:/usr/bin:/bin", "STATE": str(tmp_path)}
    env["PULUMI_BACKEND_URL"] = f"file://{tmp_path}/backend"
    return subprocess.run(
        ["bash", "scripts/stack.sh", *args], cwd=REPO, env=env, capture_output=True, text=True
    )


def test_up_fills_the_stacks_secret_keyring_and_keeps_what_it_holds(tmp_path):
    spec = "specs/secure-kraft.yaml"
    first = with_fake_pulumi(tmp_path, "up", spec)
    assert first.returncode == 0, first.stderr
    stored = tmp_path / "kafka-log-cluster:keyring"
    ring = Keyring.loads(stored.read_text(), "vault")
    assert {"ca.key", "ca.pem", "passwords.properties", "kafka-1.p12"} <= set(ring.store)
    calls = (tmp_path / "calls").read_text().splitlines()
    assert "pulumi config set --secret kafka-log-cluster:keyring" in calls
    assert calls[-1] == "pulumi up --yes"  # after the keyring is set
    assert not any(ring.password("admin") in call for call in calls)  # never an argument
    before = stored.read_text()
    assert with_fake_pulumi(tmp_path, "up", spec).returncode == 0
    assert stored.read_text() == before  # a second up keeps every secret


def test_a_refused_spec_leaves_the_stacks_keyring_as_it_was(tmp_path):
    assert with_fake_pulumi(tmp_path, "up", "specs/secure-kraft.yaml").returncode == 0
    stored = tmp_path / "kafka-log-cluster:keyring"
    before = stored.read_text()
    refused = with_fake_pulumi(tmp_path, "up", "tests/unit/bad_specs/cores-zero.yaml")
    assert refused.returncode != 0
    assert "nodes[0].cores: must be an integer" in refused.stderr
    assert stored.read_text() == before
    assert "pulumi up --yes" not in (tmp_path / "calls").read_text().splitlines()[-1]
