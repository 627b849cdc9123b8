"""The CI provisioning pipeline: an ephemeral stack up, verified, and always taken away.

`run_ci` drives a `Stacks` implementation: `AutomationStacks` over pulumi.automation
(local file backend by default, PULUMI_BACKEND_URL honoured) in real use, and a
recording stand-in in the tests. Teardown (destroy, then remove the stack) runs after
success, failure, an exception, Ctrl-C and SIGTERM; --keep-on-failure keeps a failed
stack for inspection. The exit code is the verification's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

REPO = Path(__file__).resolve().parents[2]
CONFIG = "kafka-log-cluster"
EXIT_INTERRUPTED = 130


class Interrupted(BaseException):
    """SIGTERM or Ctrl-C during the pipeline: stop what runs, then tear down."""


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
        if not os.environ.get("PULUMI_BACKEND_URL"):  # unset or empty: the repo's own
            os.environ["PULUMI_BACKEND_URL"] = f"file://{work_dir}/.pulumi"
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


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM raises Interrupted in the pipeline (as Ctrl-C raises KeyboardInterrupt)."""

    def on_term(*_):
        raise Interrupted()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_ci(
    spec: str,
    stacks: Stacks,
    verify: Callable[[dict, Path], int],
    *,
    prefix: str,
    ttl: str,
    keep_on_failure: bool,
    junit: Path,
    now: datetime,
    log: Callable[[str], None] = print,
) -> int:
    name = f"{prefix}-{now:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    config = {
        f"{CONFIG}:spec": spec,
        f"{CONFIG}:created-at": now.isoformat().replace("+00:00", "Z"),
        f"{CONFIG}:ttl": ttl,
    }
    code, created, removed = 1, False, False
    retry = f"python -m infra teardown --stack {name}"

    def step(what: str, action: Callable[[], Any]) -> Any:
        start = time.monotonic()
        log(f"ci: {what} ...")
        try:
            result = action()
        except BaseException:
            log(f"ci: {what} failed after {time.monotonic() - start:.1f} s")
            raise
        log(f"ci: {what} done in {time.monotonic() - start:.1f} s")
        return result

    try:
        with interruptible():
            created = True  # a partial `up` leaves resources: teardown runs from here on
            outputs = step(f"up {name} ({spec})", lambda: stacks.up(name, config))
            code = step("verify", lambda: verify(outputs["inventory"], junit))
    except (Interrupted, KeyboardInterrupt):
        log("ci: interrupted; tearing down")
        code = EXIT_INTERRUPTED
    except Exception as err:
        log(f"ci: {type(err).__name__}: {err}")
        code = 1
    finally:
        if created and keep_on_failure and code != 0:
            log(f"ci: kept stack {name} for inspection; remove it with: {retry}")
        elif created:
            try:
                with interruptible():
                    step(f"destroy {name}", lambda: stacks.destroy(name))
                    step(f"remove stack {name}", lambda: stacks.remove(name))
                    removed = True
            except BaseException as err:
                failure = f"{type(err).__name__}: {err}"
                log(f"ci: teardown of {name} did not finish ({failure}); retry with: {retry}")
                code = code or 1
    outcome = "passed" if code == 0 else f"failed (exit {code})"
    state = (
        "created and removed" if removed else "created, still present" if created else "not created"
    )
    log(f"ci: {outcome}; stack {name} {state}")
    return code
