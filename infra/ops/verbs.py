"""The `ci` and `teardown` verbs: the pipeline and the sweeper, wired to the real world."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from infra.model.spec import duration_ms
from infra.ops.ci import CONFIG, AutomationStacks, PulumiUnavailable, run_ci
from infra.ops.sweeper import expiry
from infra.ops.teardown import sweep_hosts

EXIT_BAD_INPUT = 2


def _stacks(verb: str, console: Console) -> AutomationStacks | None:
    try:
        return AutomationStacks(log=console.print)
    except PulumiUnavailable as err:
        console.print(f"{verb}: {err}; see https://www.pulumi.com/docs/install/")
        return None


def ci(
    spec: str, prefix: str, ttl: str, keep_on_failure: bool, junit: Path, console: Console
) -> int:
    if duration_ms(ttl) is None:
        print(f"ci: --ttl must be like 2h, 30m or 7d, got {ttl!r}", file=sys.stderr)
        return EXIT_BAD_INPUT
    stacks = _stacks("ci", console)
    if stacks is None:
        return EXIT_BAD_INPUT

    def verify(inventory: dict, junit_path: Path) -> int:
        from infra.verify.suite import inventory_file
        from infra.verify.suite import verify as run_suite

        junit_path.parent.mkdir(parents=True, exist_ok=True)
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


def teardown(stack: str | None, dry_run: bool, hosts: list[str | None], console: Console) -> int:
    """Destroy `stack`, or (None) every expired stack; then sweep `hosts`."""
    stacks = _stacks("teardown", console)
    live = None
    if stacks is None:
        console.print("teardown: no stack is known; sweeping only what its labels say expired")
    else:
        known = stacks.list()
        now = datetime.now(UTC)
        doomed = (
            [stack]
            if stack
            else [
                name
                for name, config in known.items()
                if (ends := expiry(config.get(f"{CONFIG}:created-at"), config.get(f"{CONFIG}:ttl")))
                and ends <= now
            ]
        )
        for name in doomed:
            console.print(f"teardown: {'would destroy' if dry_run else 'destroying'} stack {name}")
            if not dry_run:
                stacks.destroy(name)
                stacks.remove(name)
        live = set(known) - set(doomed)
    return sweep_hosts(hosts, live, dry_run, console)
