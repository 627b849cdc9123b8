"""`python -m infra teardown`: destroy expired stacks, then sweep what they left behind.

Stacks are listed through the Pulumi Automation API (the Pulumi CLI must be installed).
Without it, no stack is known: the sweep then removes only resources whose own labels
say they expired. Resources whose stack is gone are removed once the stacks are known.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import docker
from docker.errors import DockerException
from rich.console import Console

from infra.ops.stacks import CONFIG, Stacks, backend_id, backend_url, open_stacks
from infra.ops.sweeper import KINDS, SweepError, expiry, sweep


def plural(count: int, kind: str) -> str:
    return f"{count} {kind}{'' if count == 1 else 's'}"


def sweep_hosts(
    hosts: list[str | None], live: set[str] | None, backend: str, dry_run: bool, console: Console
) -> int:
    """Sweep each Docker host (None: the local engine / DOCKER_HOST); exit code.

    `live`: the stacks that still exist; None when they could not be listed."""
    code = 0
    now = datetime.now(UTC)
    for host in hosts:
        where = host or "the local Docker engine"
        try:
            client = docker.DockerClient(base_url=host) if host else docker.from_env()
            client.ping()
        except DockerException as err:
            console.print(f"teardown: cannot reach {where} ({err}); not swept")
            code = 1
            continue
        try:
            leftovers, removed = sweep(client, live, backend, now, dry_run)
        except SweepError as err:
            console.print(f"teardown: {where}: {err}")
            code = 1
            continue
        verb = "would remove" if dry_run else "removed"
        for item in leftovers if dry_run else removed:
            console.print(f"  {verb} {item.kind} {item.name} (stack {item.stack}: {item.why})")
        counts = Counter(item.kind for item in (leftovers if dry_run else removed))
        summary = ", ".join(plural(counts[kind], kind) for kind in KINDS)
        console.print(f"{where}: {verb} {summary}")
    return code


def teardown(
    stack: str | None,
    dry_run: bool,
    hosts: list[str | None],
    console: Console,
    stacks: Stacks | None = None,
) -> int:
    """Destroy `stack`, or (None) every expired stack; then sweep `hosts`. `stacks`: the
    project's (the Automation API's by default; None without a Pulumi CLI)."""
    stacks = stacks or open_stacks("teardown", console)
    live, code = None, 0
    if stacks is None:
        if stack:
            console.print(f"teardown: stack {stack} not destroyed: it needs the Pulumi CLI")
            code = 1
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
        gone = []
        for name in doomed:
            console.print(f"teardown: {'would destroy' if dry_run else 'destroying'} stack {name}")
            if dry_run:
                continue
            try:
                stacks.destroy(name)
                stacks.remove(name)
                gone.append(name)
            except Exception as err:  # one line, and on to the next stack
                reason = (
                    str(err).strip().splitlines()[-1].strip() if str(err).strip() else repr(err)
                )
                console.print(f"teardown: stack {name} not destroyed: {reason}", markup=False)
                code = 1
        live = set(known) - set(gone if not dry_run else doomed)
    return sweep_hosts(hosts, live, backend_id(backend_url()), dry_run, console) or code
