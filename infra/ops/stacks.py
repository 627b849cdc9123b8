"""Pulumi stacks of this project, through the Automation API (which runs the Pulumi CLI).

`Stacks` is what the CI pipeline and teardown need of them; `AutomationStacks` is the
real thing (the repository's .pulumi/ file backend unless PULUMI_BACKEND_URL is set),
and the tests drive the pipeline with a recording stand-in.
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console

from infra.build import build
from infra.provision.components.secrets import KEYRING
from infra.secrets import Keyring, fill, write_client_files

REPO = Path(__file__).resolve().parents[2]
CONFIG = "kafka-log-cluster"  # the project's stack config namespace
CANCEL_WAIT_S = 120.0


def new_secrets(spec: str) -> dict[str, str]:
    """A new stack's secret config for `spec`: a keyring with every secret its plan needs."""
    plan = build(spec).plan
    if plan.security is None:
        return {}
    return {f"{CONFIG}:{KEYRING}": fill(plan, Keyring({}, plan.cluster.name)).dumps()}


def inventory_of(outputs: dict[str, Any], directory: Path) -> dict:
    """A stack's inventory output, naming the client files (mode 0600) its secret
    `clients` output is written to under `directory`, as verify reads them."""
    inventory = dict(outputs["inventory"])
    if "clients" in outputs:
        logins = {
            user: {k: v for k, v in settings.items() if k != "ssl.ca.pem"}
            for user, settings in outputs["clients"].items()
        }
        files = write_client_files(logins, outputs["ca_pem"].encode(), directory / "clients")
        inventory["runtime"] = {
            "kind": "docker",
            "clients": {user: str(path) for user, path in files.items()},
        }
    return inventory


def backend_url(work_dir: Path = REPO) -> str:
    """PULUMI_BACKEND_URL, else the repository's own file backend: what `make up` uses."""
    return os.environ.get("PULUMI_BACKEND_URL") or f"file://{work_dir}/.pulumi"


def backend_id(url: str) -> str:
    """The label that says which backend's stack owns a resource (a digest: the URL
    itself may name a bucket or a path that is nobody else's business)."""
    return hashlib.sha256(url.encode()).hexdigest()[:12]


def pulumi_children() -> list[int]:
    """The Pulumi CLI processes this process started (the Automation API runs them)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)
        except OSError:
            continue  # gone meanwhile
        name = fields[0].split("(", 1)[1]
        if name == "pulumi" and int(fields[1].split()[1]) == os.getpid():
            found.append(int(stat.parent.name))
    return found


def interrupt_pulumi() -> list[int]:
    """SIGINT to the Pulumi CLI processes this one runs, as Ctrl-C would: each stops its
    update and writes the state, so the stack is not left locked. Their pids."""
    found = pulumi_children()
    for pid in found:
        os.kill(pid, signal.SIGINT)
    return found


def verbatim(console: Console) -> Callable[[str], None]:
    """Pulumi's lines as they are: read as markup, "[diff: ~uploads]" vanishes and "[/x]"
    raises."""
    return lambda line: console.out(line, highlight=False)


class PulumiUnavailable(RuntimeError):
    """No Pulumi CLI on this machine: the Automation API drives that CLI."""


class Stacks(Protocol):
    def up(self, name: str, config: dict[str, str], secrets: dict[str, str]) -> dict[str, Any]: ...

    def cancel(self, name: str) -> None: ...  # stop an `up` in progress, and wait for it

    def destroy(self, name: str) -> None: ...

    def remove(self, name: str) -> None: ...

    def list(self) -> dict[str, dict[str, str]]: ...  # stack name -> its config


class AutomationStacks:
    """Stacks of this project through pulumi.automation, which runs the Pulumi CLI."""

    def __init__(self, work_dir: Path = REPO, log: Callable[[str], None] = print):
        from pulumi import automation

        self.auto, self.work_dir, self.log = automation, str(work_dir), log
        self.running: threading.Thread | None = None
        os.environ["PULUMI_BACKEND_URL"] = backend_url(work_dir)
        (work_dir / ".pulumi").mkdir(exist_ok=True)
        try:
            self.workspace = automation.LocalWorkspace(work_dir=self.work_dir)
        except Exception as err:  # the SDK raises several kinds when the CLI is missing
            raise PulumiUnavailable(f"the Pulumi CLI is needed ({err})") from None

    def _stack(self, name: str):
        return self.auto.select_stack(stack_name=name, work_dir=self.work_dir)

    def up(self, name: str, config: dict[str, str], secrets: dict[str, str]) -> dict[str, Any]:
        """`pulumi up` in a thread, so that SIGTERM or Ctrl-C still reach this one: the
        pipeline then cancels the update (cancel) before it destroys. `secrets` are set
        as secret config, encrypted by the stack's secrets provider."""
        stack = self.auto.create_or_select_stack(stack_name=name, work_dir=self.work_dir)
        config = {**config, f"{CONFIG}:backend": backend_id(backend_url(Path(self.work_dir)))}
        values = {k: self.auto.ConfigValue(v) for k, v in config.items()}
        values |= {k: self.auto.ConfigValue(v, secret=True) for k, v in secrets.items()}
        stack.set_all_config(values)
        done: dict[str, Any] = {}

        def run() -> None:
            try:
                done["result"] = stack.up(on_output=self.log)
            except Exception as err:  # re-raised in the caller's thread
                done["error"] = err

        self.running = threading.Thread(target=run, name=f"pulumi up {name}", daemon=True)
        self.running.start()
        while self.running.is_alive():
            self.running.join(0.2)
        if "error" in done:
            raise done["error"]
        return {key: output.value for key, output in done["result"].outputs.items()}

    def cancel(self, name: str) -> None:
        interrupt_pulumi()
        if self.running is not None:  # the update ends once the CLI has written the state
            self.running.join(CANCEL_WAIT_S)

    def destroy(self, name: str) -> None:
        self._stack(name).destroy(on_output=self.log)

    def remove(self, name: str) -> None:
        self.workspace.remove_stack(name)

    def list(self) -> dict[str, dict[str, str]]:
        return {
            summary.name: {
                k: v.value for k, v in self.workspace.get_all_config(summary.name).items()
            }
            for summary in self.workspace.list_stacks()
        }


def open_stacks(verb: str, console: Console) -> AutomationStacks | None:
    """The project's stacks, or None (said in one line) when no Pulumi CLI is here."""
    try:
        return AutomationStacks(log=verbatim(console))
    except PulumiUnavailable as err:
        console.print(f"{verb}: {err}; see https://www.pulumi.com/docs/install/")
        return None
