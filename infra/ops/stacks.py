"""Pulumi stacks of this project, through the Automation API (which runs the Pulumi CLI).

`Stacks` is what the CI pipeline and teardown need of them; `AutomationStacks` is the
real thing (the repository's .pulumi/ file backend unless PULUMI_BACKEND_URL is set),
and the tests drive the pipeline with a recording stand-in.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console

REPO = Path(__file__).resolve().parents[2]
CONFIG = "kafka-log-cluster"  # the project's stack config namespace


def backend_url(work_dir: Path = REPO) -> str:
    """PULUMI_BACKEND_URL, else the repository's own file backend: what `make up` uses."""
    return os.environ.get("PULUMI_BACKEND_URL") or f"file://{work_dir}/.pulumi"


class PulumiUnavailable(RuntimeError):
    """No Pulumi CLI on this machine: the Automation API drives that CLI."""


class Stacks(Protocol):
    def up(self, name: str, config: dict[str, str]) -> dict[str, Any]: ...

    def destroy(self, name: str) -> None: ...

    def remove(self, name: str) -> None: ...

    def list(self) -> dict[str, dict[str, str]]: ...  # stack name -> its config


class AutomationStacks:
    """Stacks of this project through pulumi.automation, which runs the Pulumi CLI."""

    def __init__(self, work_dir: Path = REPO, log: Callable[[str], None] = print):
        from pulumi import automation

        self.auto, self.work_dir, self.log = automation, str(work_dir), log
        os.environ["PULUMI_BACKEND_URL"] = backend_url(work_dir)
        (work_dir / ".pulumi").mkdir(exist_ok=True)
        try:
            self.workspace = automation.LocalWorkspace(work_dir=self.work_dir)
        except Exception as err:  # the SDK raises several kinds when the CLI is missing
            raise PulumiUnavailable(f"the Pulumi CLI is needed ({err})") from None

    def _stack(self, name: str):
        return self.auto.select_stack(stack_name=name, work_dir=self.work_dir)

    def up(self, name: str, config: dict[str, str]) -> dict[str, Any]:
        stack = self.auto.create_or_select_stack(stack_name=name, work_dir=self.work_dir)
        stack.set_all_config({k: self.auto.ConfigValue(v) for k, v in config.items()})
        result = stack.up(on_output=self.log)
        return {key: output.value for key, output in result.outputs.items()}

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
        return AutomationStacks(log=console.print)
    except PulumiUnavailable as err:
        console.print(f"{verb}: {err}; see https://www.pulumi.com/docs/install/")
        return None
