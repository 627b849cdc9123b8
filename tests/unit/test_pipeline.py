"""The CI pipeline with a stand-in for the stack operations: teardown runs every time.

The Automation API drives the Pulumi CLI, which cannot be installed on the build
machines; the pipeline is written against a small interface, and this stand-in records
the calls and fails on demand (or receives SIGTERM in the middle of `up`).
"""

from __future__ import annotations

import io
import os
import signal
import stat
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from consumers.properties import parse
from infra.ops import teardown as teardown_ops
from infra.ops.ci import EXIT_INTERRUPTED, run_ci
from infra.ops.stacks import (
    AutomationStacks,
    PulumiUnavailable,
    interrupt_pulumi,
    inventory_of,
    verbatim,
)
from infra.secrets import Keyring

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
INVENTORY = {"cluster": {"name": "logs"}}


class StandIn:
    def __init__(self, fail_at: str | None = None, sigterm_in_up: bool = False):
        self.fail_at, self.sigterm_in_up = fail_at, sigterm_in_up
        self.calls: list[tuple] = []

    def _maybe_fail(self, step: str) -> None:
        if self.fail_at == step:
            raise RuntimeError(f"{step} broke")

    def up(self, name, config, secrets):
        self.calls.append(("up", name, config, secrets))
        if self.sigterm_in_up:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler interrupts this
            raise AssertionError("SIGTERM did not interrupt up")
        self._maybe_fail("up")
        return {"inventory": INVENTORY, "bootstrap_servers": "127.0.0.1:19092"}

    def cancel(self, name):
        self.calls.append(("cancel", name))

    def destroy(self, name):
        self.calls.append(("destroy", name))
        self._maybe_fail("destroy")

    def remove(self, name):
        self.calls.append(("remove", name))

    def list(self):
        return {}

    def steps(self) -> list[str]:
        return [call[0] for call in self.calls]


def run(stand_in: StandIn, verify_result=0, keep_on_failure=False):
    lines: list[str] = []
    verified: list[dict] = []

    def verify(outputs, junit):
        verified.append(outputs["inventory"])
        if isinstance(verify_result, BaseException):
            raise verify_result
        return verify_result

    code = run_ci(
        "specs/single-node.yaml",
        stand_in,
        verify,
        prefix="ci",
        ttl="2h",
        keep_on_failure=keep_on_failure,
        junit=Path("junit.xml"),
        now=NOW,
        log=lines.append,
    )
    return code, lines, verified


def test_success_verifies_the_stack_inventory_then_tears_down():
    stand_in = StandIn()
    code, lines, verified = run(stand_in)
    assert code == 0
    assert stand_in.steps() == ["up", "destroy", "remove"]
    _, name, config, secrets = stand_in.calls[0]
    assert list(secrets) == ["kafka-log-cluster:keyring"]  # secure by default
    assert name.startswith("ci-20261125-093000-") and all(c[1] == name for c in stand_in.calls)
    assert config == {
        "kafka-log-cluster:spec": "specs/single-node.yaml",
        "kafka-log-cluster:created-at": "2026-11-25T09:30:00Z",
        "kafka-log-cluster:ttl": "2h",
    }
    assert verified == [INVENTORY]
    assert lines[-1] == f"ci: passed; stack {name} created and removed"
    assert any(
        line.startswith(f"ci: up {name} (specs/single-node.yaml) done in ") for line in lines
    )


@pytest.mark.parametrize(
    ("fail", "verify_result", "code"),
    [
        ("up", 0, 1),  # up fails
        (None, 1, 1),  # a check fails: the exit code is the verification's
        (None, RuntimeError("suite crashed"), 1),  # verification raises
        (None, KeyboardInterrupt(), EXIT_INTERRUPTED),  # Ctrl-C
    ],
    ids=["up-fails", "verify-fails", "verify-raises", "ctrl-c"],
)
def test_teardown_runs_whatever_happens(fail, verify_result, code):
    stand_in = StandIn(fail_at=fail)
    got, lines, _ = run(stand_in, verify_result=verify_result)
    assert got == code
    assert stand_in.steps() == ["up", "destroy", "remove"]
    assert "created and removed" in lines[-1]


def test_sigterm_in_the_middle_of_up_still_tears_down():
    stand_in = StandIn(sigterm_in_up=True)
    code, lines, verified = run(stand_in)
    assert code == EXIT_INTERRUPTED
    # The update is cancelled and waited for first: destroy would find the stack locked.
    assert stand_in.steps() == ["up", "cancel", "destroy", "remove"]
    assert verified == []
    assert "ci: interrupted; cancelling the update, then tearing down" in lines
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler was put back


def test_keep_on_failure_keeps_a_failed_stack_and_says_how_to_remove_it():
    stand_in = StandIn()
    code, lines, _ = run(stand_in, verify_result=1, keep_on_failure=True)
    assert code == 1
    assert stand_in.steps() == ["up"]
    name = stand_in.calls[0][1]
    retry = f"python -m infra teardown --stack {name}"
    assert f"ci: kept stack {name} for inspection; remove it with: {retry}" in lines


def test_keep_on_failure_still_removes_a_passing_stack():
    stand_in = StandIn()
    code, _, _ = run(stand_in, keep_on_failure=True)
    assert (code, stand_in.steps()) == (0, ["up", "destroy", "remove"])


def test_a_failed_destroy_keeps_the_stack_record_and_fails_the_run():
    stand_in = StandIn(fail_at="destroy")
    code, lines, _ = run(stand_in)
    assert code == 1  # verification passed, but the environment was not taken away
    assert stand_in.steps() == ["up", "destroy"]  # never remove a stack that still owns resources
    name = stand_in.calls[0][1]
    assert any(
        "teardown of" in line and f"retry with: python -m infra teardown --stack {name}" in line
        for line in lines
    )
    assert lines[-1] == f"ci: failed (exit 1); stack {name} created, still present"


def test_the_automation_adapter_says_when_the_pulumi_cli_is_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(PulumiUnavailable, match="the Pulumi CLI is needed"):
        AutomationStacks(work_dir=tmp_path)


def test_cancelling_interrupts_the_pulumi_cli_this_process_runs(tmp_path):
    # A stand-in named pulumi (the kernel names a process after the file it runs).
    cli = tmp_path / "pulumi"
    cli.write_text(
        "#!/bin/sh\ntrap 'echo cancelled > \"$0.out\"; exit 0' INT\nwhile :; do sleep 0.1; done\n"
    )
    cli.chmod(0o755)
    process = subprocess.Popen([str(cli)])
    try:
        time.sleep(0.5)
        assert interrupt_pulumi() == [process.pid]
        assert process.wait(timeout=10) == 0
        assert (tmp_path / "pulumi.out").read_text() == "cancelled\n"
    finally:
        process.kill()


def test_pulumis_output_is_printed_verbatim():
    console = Console(file=io.StringIO(), width=200)
    log = verbatim(console)
    log("~ docker:index/container:Container siem-kafka-1 updating [diff: ~uploads]")
    log("[/closing] tags and [bold] are text here")
    assert console.file.getvalue().splitlines() == [
        "~ docker:index/container:Container siem-kafka-1 updating [diff: ~uploads]",
        "[/closing] tags and [bold] are text here",
    ]


class FailingDestroy(StandIn):
    def list(self):
        return {"ci-a": {}, "ci-b": {}}

    def destroy(self, name):
        self.calls.append(("destroy", name))
        if name == "ci-a":
            raise RuntimeError("code: 255\n stderr: error: the stack is locked [/x]")


def test_teardown_says_each_failed_destroy_in_one_line_and_goes_on(monkeypatch):
    monkeypatch.setattr(teardown_ops, "sweep_hosts", lambda *args: 0)
    console = Console(file=io.StringIO(), width=200)
    stacks = FailingDestroy()
    code = teardown_ops.teardown("ci-a", False, [None], console, stacks)
    assert code == 1
    assert "teardown: stack ci-a not destroyed: stderr: error: the stack is locked [/x]" in (
        console.file.getvalue()
    )
    stacks.calls.clear()
    monkeypatch.setattr(teardown_ops, "expiry", lambda *_: NOW)  # both expired
    assert teardown_ops.teardown(None, False, [None], console, stacks) == 1
    assert stacks.steps() == ["destroy", "destroy", "remove"]  # ci-b despite ci-a


def test_teardown_of_a_named_stack_without_the_pulumi_cli_says_so(monkeypatch):
    monkeypatch.setattr(teardown_ops, "sweep_hosts", lambda *args: 0)
    monkeypatch.setattr(teardown_ops, "open_stacks", lambda *args: None)
    console = Console(file=io.StringIO(), width=200)
    assert teardown_ops.teardown("dev", False, [None], console) == 1
    assert "teardown: stack dev not destroyed: it needs the Pulumi CLI" in console.file.getvalue()


def test_a_secured_spec_gets_a_new_keyring_as_secret_config_only():
    stand_in = StandIn()
    lines: list[str] = []
    code = run_ci(
        "specs/secure-kraft.yaml", stand_in, lambda outputs, junit: 0, prefix="ci", ttl="2h",
        keep_on_failure=False, junit=Path("junit.xml"), now=NOW, log=lines.append,
    )  # fmt: skip
    assert code == 0
    _, _, config, secrets = stand_in.calls[0]
    assert list(secrets) == ["kafka-log-cluster:keyring"]
    assert not any("keyring" in key for key in config)
    ring = Keyring.loads(secrets["kafka-log-cluster:keyring"], "vault")
    assert {"ca.key", "ca.pem", "kafka-1.p12", "kafka-2.p12", "kafka-3.p12"} <= set(ring.store)


def test_verify_reads_the_secret_clients_output_from_0600_files(tmp_path):
    ca = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    login = {"bootstrap.servers": "127.0.0.1:19092", "security.protocol": "SASL_SSL",
             "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "admin",
             "sasl.password": "s3cret", "ssl.ca.pem": ca.decode()}  # fmt: skip
    outputs = {"inventory": INVENTORY, "clients": {"admin": login}, "ca_pem": ca.decode()}
    inventory = inventory_of(outputs, tmp_path)
    assert INVENTORY == {"cluster": {"name": "logs"}}  # the output itself is left as it was
    path = Path(inventory["runtime"]["clients"]["admin"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    written = {e.key: e.value for e in parse(path.read_text())}
    assert written == {
        **{k: v for k, v in login.items() if k != "ssl.ca.pem"},
        "ssl.ca.location": str(tmp_path / "clients" / "ca.pem"),
    }
    assert (tmp_path / "clients" / "ca.pem").read_bytes() == ca
