"""The operator's command line: one verb per stage.

Bad input ends every verb the same way: one line per problem on stderr, nothing on
stdout, exit code 2. Warnings go to stderr and do not change the exit code.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from consumers.properties import to_property
from infra.model.load import load_spec
from infra.model.plan import Derived, Plan
from infra.model.planner import build_plan
from infra.problems import InputError, warning_line
from infra.render.files import Rendered, render, write
from infra.render.inventory import inventory_json

EXIT_BAD_INPUT = 2


@dataclass(frozen=True)
class Pipeline:
    """What the pure stages make of one spec: its plan and its checked files."""

    plan: Plan
    rendered: Rendered
    warnings: list[str]


def run_pipeline(spec_path: str, local_cores: int | None = None) -> Pipeline:
    spec, warnings = load_spec(spec_path)
    plan, plan_warnings = build_plan(spec, spec_path, local_cores or os.cpu_count() or 1)
    rendered = render(plan, spec_path)
    lines = [warning_line(spec_path, w) for w in warnings + plan_warnings]
    return Pipeline(plan, rendered, lines)


def plan_table(plan: Plan) -> Table:
    cluster = plan.cluster
    table = Table(
        title=f"Plan for cluster {cluster.name}: Kafka {cluster.kafka_release}, {cluster.mode}"
    )
    table.add_column("where", no_wrap=True)
    table.add_column("setting", overflow="fold")
    table.add_column("value", overflow="fold", max_width=40)
    table.add_column("why", ratio=1)

    def block(where: str, rows: list[tuple[str, Derived]]) -> None:
        for i, (setting, d) in enumerate(rows):
            table.add_row(where if i == 0 else "", setting, to_property(d.value), d.why)
        table.add_section()

    for node in plan.nodes:
        rows = [(f"{service} heap MiB", heap) for service, heap in node.heap_mb.items()]
        for settings in (*node.server_properties.values(), node.zookeeper_properties):
            rows += list(settings.items())
        group_processes = {g.group: g.processes.value for g in plan.groups}
        rows += [
            (
                f"{s.group} processes",
                Derived(value=s.processes, why=f"this node's share of {group_processes[s.group]}"),
            )
            for s in node.consumers
        ]
        block(f"{node.name}\n{','.join(node.roles)}", rows)
    for topic in plan.topics:
        rows = [("partitions", topic.partitions), ("replication.factor", topic.replication_factor)]
        block(f"topic {topic.name}", rows + list(topic.config.items()))
    for group in plan.groups:
        rows = [("processes", group.processes)]
        rows += [(f"consumer {k}", d) for k, d in group.consumer.items()]
        rows += [(f"producer {k}", d) for k, d in group.producer.items()]
        block(f"group {group.group}", rows)
    return table


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m infra",
        description="Plan, render and check a Kafka log cluster from a node spec.",
    )
    verbs = parser.add_subparsers(dest="verb", required=True)
    plan = verbs.add_parser("plan", help="show every derived number and why")
    plan.add_argument("spec", help="path of the node spec (YAML)")
    shape = plan.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="print the plan as JSON")
    shape.add_argument(
        "--inventory", action="store_true", help="print the inventory JSON verification reads"
    )
    rend = verbs.add_parser("render", help="write every node's config files under --out")
    rend.add_argument("spec", help="path of the node spec (YAML)")
    rend.add_argument("--out", required=True, type=Path, help="directory to write into")
    chk = verbs.add_parser("check", help="validate the spec and its rendered files only")
    chk.add_argument("spec", help="path of the node spec (YAML)")
    up = verbs.add_parser(
        "up",
        help="bring the planned cluster up",
        description="--local: the embedded runtime on this machine (a local Kafka-compatible "
        "broker, or KAFKA_BOOTSTRAP_SERVERS, and the planned consumer groups); "
        "Ctrl-C or SIGTERM stops everything it started.",
    )
    up.add_argument("spec", nargs="?", default="specs/single-node.yaml")
    up.add_argument("--local", action="store_true", required=True, help="run on this machine")
    up.add_argument("--out", type=Path, default=Path("build/local"), help="rendered files here")
    up.add_argument("--demo", type=int, default=100_000, help="demo syslog lines to feed (0: none)")
    ver = verbs.add_parser(
        "verify",
        help="check what runs against what was planned",
        description="Run the live verification suite (tests/infra) against a deployment: "
        "its hosts from an inventory (a spec's, a file, or a Pulumi stack's output). "
        "Prints one table and writes JUnit XML; exit 1 when a check fails.",
    )
    target = ver.add_mutually_exclusive_group(required=True)
    target.add_argument("spec", nargs="?", help="the spec the deployment was provisioned from")
    target.add_argument(
        "--inventory", type=Path, help="an inventory JSON (e.g. build/local/inventory.json)"
    )
    target.add_argument("--stack", help="a Pulumi stack whose inventory output to read")
    ver.add_argument(
        "--junit", type=Path, default=Path("build/verify-junit.xml"), help="JUnit XML here"
    )
    ci = verbs.add_parser(
        "ci",
        help="ephemeral stack: up, verify, destroy",
        description="Create a unique ephemeral Pulumi stack for SPEC (Automation API; local file "
        "backend unless PULUMI_BACKEND_URL is set), pulumi up, verify it, then destroy and "
        "remove the stack: after success, failure, an exception, Ctrl-C or SIGTERM. The exit "
        "code is the verification's. Needs the Pulumi CLI and the spec's Docker hosts.",
    )
    ci.add_argument("spec", help="path of the node spec (YAML)")
    ci.add_argument("--stack-prefix", default="ci", help="stack names are PREFIX-<time>-<id>")
    ci.add_argument(
        "--ttl", default="2h", help="how long the sweeper leaves it alone (7d, 2h, 30m)"
    )
    ci.add_argument("--keep-on-failure", action="store_true", help="keep a failed stack to inspect")
    ci.add_argument("--junit", type=Path, default=Path("build/ci-junit.xml"), help="JUnit XML here")
    down = verbs.add_parser(
        "teardown",
        help="destroy expired stacks and sweep their leftovers",
        description="Destroy and remove stacks (one by name, or those whose ttl has passed), "
        "then remove Docker containers, networks, volumes and images labelled "
        "kafka-log-cluster.stack whose stack is gone or expired. Never touches an unlabelled "
        "resource. Without the Pulumi CLI no stack is known, and only resources whose own "
        "labels say they expired are removed.",
    )
    which = down.add_mutually_exclusive_group(required=True)
    which.add_argument("--stack", help="destroy and remove this stack, then sweep")
    which.add_argument("--expired", action="store_true", help="stacks and leftovers past their ttl")
    down.add_argument("--dry-run", action="store_true", help="list what would go; change nothing")
    down.add_argument(
        "--host", action="append", help="Docker host to sweep (repeat; default: the local engine)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out = Console(width=None if sys.stdout.isatty() else 160)
    if args.verb == "verify" and not args.spec:
        from infra.verify.suite import verify

        args.junit.parent.mkdir(parents=True, exist_ok=True)
        return verify(args.inventory, args.stack, args.junit, out)
    if args.verb == "teardown":
        from infra.ops.verbs import teardown

        return teardown(args.stack, args.dry_run, args.host or [None], out)
    try:
        result = run_pipeline(args.spec)
    except InputError as err:
        print("\n".join(err.lines()), file=sys.stderr)
        return EXIT_BAD_INPUT
    for line in result.warnings:
        print(line, file=sys.stderr)
    if args.verb == "verify":
        from infra.verify.suite import inventory_file, verify

        args.junit.parent.mkdir(parents=True, exist_ok=True)
        inventory = inventory_file(inventory_json(result.plan, result.rendered))
        return verify(inventory, None, args.junit, out)
    if args.verb == "ci":
        from infra.ops.verbs import ci

        return ci(args.spec, args.stack_prefix, args.ttl, args.keep_on_failure, args.junit, out)
    if args.verb == "up":
        from infra.runtime.local import LocalRuntime

        return LocalRuntime(result, args.out, args.demo, out).run()
    if args.verb == "plan":
        if args.json:
            sys.stdout.write(result.plan.to_json())
        elif args.inventory:
            sys.stdout.write(inventory_json(result.plan, result.rendered))
        else:
            out.print(plan_table(result.plan))
    elif args.verb == "render":
        extra = {
            "plan.json": result.plan.to_json(),
            "inventory.json": inventory_json(result.plan, result.rendered),
        }
        written = write(result.rendered, args.out, extra)
        out.print(f"wrote {len(written)} files under {args.out}/")
    else:
        files = [f for fs in result.rendered.values() for f in fs]
        brokers = sum(f.name == "server.properties" for f in files)
        out.print(
            f"{args.spec}: ok: {len(result.plan.nodes)} nodes, {len(files)} files rendered, "
            f"{brokers} server.properties pass Kafka {result.plan.cluster.kafka_release}'s rules"
        )
    return 0
