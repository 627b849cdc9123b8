"""The CI provisioning pipeline: an ephemeral stack up, verified, and always taken away.

`run_ci` drives a `Stacks` implementation (infra/ops/stacks.py): the Automation API in
real use, a recording stand-in in the tests. Teardown (destroy, then remove the stack) runs after
success, failure, an exception, Ctrl-C and SIGTERM; --keep-on-failure keeps a failed
stack for inspection. The exit code is the verification's.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from infra.model.spec import duration_ms
from infra.ops.stacks import CONFIG, Stacks, inventory_of, new_secrets, open_stacks
from infra.problems import EXIT_BAD_INPUT

EXIT_INTERRUPTED = 130


class Interrupted(BaseException):
    """SIGTERM or Ctrl-C during the pipeline: stop what runs, then tear down."""


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
    verify: Callable[[dict, Path], int],  # the stack's outputs, the JUnit file
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
    }  # the stacks add the backend label's value
    code, created, removed, updating = 1, False, False, False
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
            created = updating = True  # a partial `up` leaves resources: teardown from here
            secrets = new_secrets(spec)
            outputs = step(f"up {name} ({spec})", lambda: stacks.up(name, config, secrets))
            updating = False
            code = step("verify", lambda: verify(outputs, junit))
    except (Interrupted, KeyboardInterrupt):
        code = EXIT_INTERRUPTED
        if updating:  # a destroy while the update still runs would find the stack locked
            log("ci: interrupted; cancelling the update, then tearing down")
            stacks.cancel(name)
        else:
            log("ci: interrupted; tearing down")
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


def ci(
    spec: str, prefix: str, ttl: str, keep_on_failure: bool, junit: Path, console: Console
) -> int:
    if duration_ms(ttl) is None:
        print(f"ci: --ttl must be like 2h, 30m or 7d, got {ttl!r}", file=sys.stderr)
        return EXIT_BAD_INPUT
    stacks = open_stacks("ci", console)
    if stacks is None:
        return EXIT_BAD_INPUT

    def verify(outputs: dict, junit_path: Path) -> int:
        from infra.verify.suite import inventory_file
        from infra.verify.suite import verify as run_suite

        junit_path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="klc-ci-") as clients:
            inventory = inventory_of(outputs, Path(clients))
            return run_suite(inventory_file(json.dumps(inventory)), None, junit_path, console)

    return run_ci(
        spec,
        stacks,
        verify,
        prefix=prefix,
        ttl=ttl,
        keep_on_failure=keep_on_failure,
        junit=junit,
        now=datetime.now(UTC),
        log=console.print,
    )
