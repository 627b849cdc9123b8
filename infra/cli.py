"""The operator's command line: `python -m infra VERB`, one function per verb.

Bad input ends every verb the same way: one line per problem on stderr, nothing on
stdout, exit code 2. Warnings go to stderr and do not change the exit code. Each verb
function parses nothing and decides nothing: it calls its stage.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from rich.console import Console

from infra.build import Built, build
from infra.kafka.releases import RELEASES
from infra.model.topology import DOCKER, LOCAL_PORT_BLOCK, Placement
from infra.problems import EXIT_BAD_INPUT, InputError
from infra.render.files import monitoring, write
from infra.render.inventory import inventory_json
from infra.render.plan_table import plan_table
from infra.runtime.rebalance import DEFAULT_THROTTLE_MB


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _built(spec: str, placement: Placement = DOCKER) -> Built:
    built = build(spec, placement=placement)
    for line in built.warnings:
        print(line, file=sys.stderr)
    return built


def plan(args: argparse.Namespace, console: Console) -> int:
    built = _built(args.spec, Placement(stack=args.stack or ""))
    if args.json:
        sys.stdout.write(built.plan.to_json())
    elif args.inventory:
        sys.stdout.write(inventory_json(built.plan, built.rendered))
    else:
        console.print(plan_table(built.plan))
    return 0


def render(args: argparse.Namespace, console: Console) -> int:
    built = _built(args.spec)
    extra = {
        "plan.json": built.plan.to_json(),
        "inventory.json": inventory_json(built.plan, built.rendered),
        **{f"monitoring/{name}": text for name, text in monitoring(built.plan).items()},
    }
    written = write(built.rendered, args.out, extra)
    console.print(f"wrote {len(written)} files under {args.out}/")
    return 0


def check(args: argparse.Namespace, console: Console) -> int:
    built = _built(args.spec)
    files = [f for fs in built.rendered.values() for f in fs]
    brokers = sum(f.name == "server.properties" for f in files)
    console.print(
        f"{args.spec}: ok: {len(built.plan.nodes)} nodes, {len(files)} files rendered, "
        f"{brokers} server.properties pass Kafka {built.plan.cluster.kafka_release}'s rules"
    )
    return 0


def up(args: argparse.Namespace, console: Console) -> int:
    from infra.runtime.local import LocalRuntime

    placement = Placement.local(str(args.out.resolve()), args.port_base)
    return LocalRuntime(_built(args.spec, placement), placement, args.demo, console).run()


def roll(args: argparse.Namespace, console: Console) -> int:
    import json

    from infra.runtime.roll import RollRefused, follow, request

    _built(args.spec)  # a bad spec stops here, before the runtime is asked
    inventory = args.out / "inventory.json"
    try:
        pid = json.loads(inventory.read_text())["runtime"]["pid"]
        os.kill(pid, 0)
    except (OSError, KeyError, ValueError):
        print(
            f"roll: no local runtime serves {args.out} (no live pid in {inventory}); "
            f"start it with python -m infra up --local SPEC --out {args.out}",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    try:
        request(args.out, str(Path(args.spec).resolve()), pid)
    except RollRefused as err:
        print(f"roll: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    console.print(f"roll: asked the runtime (pid {pid}) to roll to {args.spec}")
    ok, message = follow(args.out, console.print, args.timeout)
    console.print(f"roll: {message}" if ok else f"[red]roll: {message}[/red]")
    return 0 if ok else 1


def top(args: argparse.Namespace, console: Console) -> int:
    from rich.live import Live

    from infra.ops.top import Top
    from infra.runtime.cluster import ClusterError

    try:
        view = Top.local(args.out)
    except ClusterError as err:
        print(f"top: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.once:
        console.print(view.frame())
        return 0
    try:
        with Live(view.frame(), console=console, refresh_per_second=1) as live:
            while True:
                time.sleep(args.interval)
                live.update(view.frame())
    except KeyboardInterrupt:
        return 0


def rebalance(args: argparse.Namespace, console: Console) -> int:
    from rich.progress import Progress

    from infra.runtime.cluster import ClusterError
    from infra.runtime.maven import MavenError
    from infra.runtime.rebalance import Running
    from infra.runtime.rebalance import rebalance as move
    from infra.runtime.tools import KafkaTools

    try:
        running = Running.local(args.out)
        weights = running.weights(args.drain)
        tools = KafkaTools(running.release, running.admin, args.out / "clients")
        with Progress(console=console) as bar:
            task = bar.add_task("partitions moved", total=None)
            move(
                running.admin, tools, weights, args.out, console.print,
                lambda p: bar.update(task, completed=p.done, total=p.total),
                args.throttle * 1_000_000,
            )  # fmt: skip
        held = running.shares()
    except KeyboardInterrupt:
        print(
            "rebalance: stopped following; Kafka goes on moving (throttled): run rebalance "
            "again to follow it to the end and clear the throttles",
            file=sys.stderr,
        )
        return 130
    except (ClusterError, MavenError) as err:
        print(f"rebalance: {err}", file=sys.stderr)
        return 1
    for name, (node_id, cores) in running.brokers.items():
        weight = f"{cores} cores" if weights[node_id] else "drained"
        console.print(f"  {name} (node {node_id}, {weight}): {held[name]} replicas")
    return 0


def keyring(args: argparse.Namespace, console: Console) -> int:
    from infra.secrets import Keyring, fill

    built = _built(args.spec)
    text = "" if sys.stdin.isatty() else sys.stdin.read()
    try:
        ring = Keyring.loads(text, built.plan.cluster.name)
    except ValueError:  # not JSON, or an item not base64
        print(
            "keyring: stdin is not a keyring (the JSON `python -m infra keyring` prints); "
            "pipe the stack's: pulumi config get keyring | python -m infra keyring SPEC",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    users = {u.name for u in built.plan.security.users} if built.plan.security else set()
    unknown = sorted(set(args.rotate) - users)
    if unknown:
        print(
            f"keyring: --rotate {', '.join(unknown)}: not a user of {args.spec} "
            f"(its users: {', '.join(sorted(users)) or 'none, it has no security:'})",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    for user in args.rotate:
        ring.forget_password(user)
    sys.stdout.write(fill(built.plan, ring).dumps())
    return 0


def jars(args: argparse.Namespace, console: Console) -> int:
    from infra.runtime.maven import MavenError, exporter_agent, kafka_libs

    try:
        for release in RELEASES.values():
            libs = kafka_libs(release)
            jars = len(list(libs.glob("*.jar")))
            console.print(f"Kafka {release.version}: {jars} jars in {libs}")
        console.print(f"JMX exporter agent: {exporter_agent()}")
    except MavenError as err:
        print(f"jars: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def diff(args: argparse.Namespace, console: Console) -> int:
    from infra.render.changes import diff_table, plan_diff

    old, new = _built(args.old), _built(args.new)
    found = plan_diff(old.plan, new.plan, old.rendered, new.rendered)
    console.print(diff_table(found, args.old, args.new))
    return 0 if found.safe_online else 1


def release_diff(args: argparse.Namespace, console: Console) -> int:
    from infra.kafka.catalog import diff, load
    from infra.render.release_table import broker_keys, release_table

    keys = broker_keys(_built(args.spec).rendered) if args.spec else None
    console.print(release_table(diff(load(args.old), load(args.new)), args.old, args.new, keys))
    return 0


def catalogs(args: argparse.Namespace, console: Console) -> int:
    from infra.runtime.kafka_rules import catalogs

    for path, text in catalogs().items():
        path.write_text(text)
        console.print(
            f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}"
        )
    return 0


def verify(args: argparse.Namespace, console: Console) -> int:
    from infra.verify.suite import inventory_file, verify

    inventory = args.inventory
    if args.spec:
        built = _built(args.spec)
        inventory = inventory_file(inventory_json(built.plan, built.rendered))
    args.junit.parent.mkdir(parents=True, exist_ok=True)
    return verify(inventory, args.stack, args.junit, console, args.settle)


def ci(args: argparse.Namespace, console: Console) -> int:
    from infra.ops.ci import ci

    _built(args.spec)  # a bad spec stops here, before any stack exists
    return ci(args.spec, args.stack_prefix, args.ttl, args.keep_on_failure, args.junit, console)


def teardown(args: argparse.Namespace, console: Console) -> int:
    from infra.ops.teardown import teardown

    return teardown(args.stack, args.dry_run, args.host or [None], console)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m infra",
        description="Plan, render and check a Kafka log cluster from a node spec.",
    )
    verbs = parser.add_subparsers(dest="verb", required=True)
    plan_verb = verbs.add_parser("plan", help="show every derived number and why")
    plan_verb.add_argument("spec", help="path of the node spec (YAML)")
    shape = plan_verb.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="print the plan as JSON")
    shape.add_argument(
        "--inventory", action="store_true", help="print the inventory JSON verification reads"
    )
    plan_verb.add_argument(
        "--stack", help="as the Pulumi stack NAME provisions it (the stack is in the cluster id)"
    )
    render_verb = verbs.add_parser("render", help="write every node's config files under --out")
    render_verb.add_argument("spec", help="path of the node spec (YAML)")
    render_verb.add_argument("--out", required=True, type=Path, help="directory to write into")
    check_verb = verbs.add_parser("check", help="validate the spec and its rendered files only")
    check_verb.add_argument("spec", help="path of the node spec (YAML)")
    up_verb = verbs.add_parser(
        "up",
        help="bring the planned cluster up",
        description="--local: the planned cluster on this machine: real Apache Kafka JVMs "
        "(jars from Maven Central, cached), bound to 127.0.0.1, and the planned consumer "
        "groups. Ctrl-C or SIGTERM stops everything it started.",
    )
    up_verb.add_argument("spec", nargs="?", default="specs/single-node.yaml")
    up_verb.add_argument("--local", action="store_true", required=True, help="run on this machine")
    up_verb.add_argument(
        "--out", type=Path, default=Path("build/local"), help="rendered files here"
    )
    up_verb.add_argument(
        "--demo", type=int, default=100_000, help="demo syslog lines to feed (0: none)"
    )
    up_verb.add_argument(
        "--port-base",
        type=int,
        default=LOCAL_PORT_BLOCK,
        help=f"node k listens on PORT_BASE+10k+1..9, its consumer groups' metrics on "
        f"PORT_BASE-1000+10k+g (default {LOCAL_PORT_BLOCK})",
    )
    roll_verb = verbs.add_parser(
        "roll",
        help="apply a changed spec to a running cluster, one Kafka node at a time",
        description="--local: ask the running `up --local` serving --out (SIGHUP) to apply "
        "SPEC: the Kafka nodes `diff` says must restart, brokers first, each refused before "
        "it stops if a partition it holds would fall below min ISR or the quorum below a "
        "majority, and waited for after it starts (registered, a controller, 0 "
        "under-replicated partitions); then the consumer shares whose files changed. One "
        "line per node. Exit 0: rolled; 1: refused or failed (the line says where).",
    )
    roll_verb.add_argument("spec", help="the changed spec")
    roll_verb.add_argument("--local", action="store_true", required=True, help="up --local's")
    roll_verb.add_argument("--out", type=Path, default=Path("build/local"), help="its --out")
    roll_verb.add_argument(
        "--timeout", type=float, default=900.0, help="seconds to wait for the result"
    )
    rebalance_verb = verbs.add_parser(
        "rebalance",
        help="move partitions so each broker carries its core-weighted share",
        description="Through Kafka's reassignment (kafka-reassign-partitions.sh), as few "
        "replicas as it takes, throttled, with a progress bar. Ctrl-C stops following, not "
        "the moves: run it again to follow them to the end (it clears the throttles). "
        "--drain NODE empties a broker, before a roll removes it. Exit 0: balanced; 1: "
        "refused or failed; 130: interrupted, the moves go on.",
    )
    rebalance_verb.add_argument("--local", action="store_true", required=True, help="up --local's")
    rebalance_verb.add_argument("--out", type=Path, default=Path("build/local"), help="its --out")
    rebalance_verb.add_argument("--drain", metavar="NODE", help="move every replica off NODE")
    rebalance_verb.add_argument(
        "--throttle", type=_positive, default=DEFAULT_THROTTLE_MB, metavar="MB",
        help=f"MB/s per broker (default {DEFAULT_THROTTLE_MB})",
    )  # fmt: skip
    top_verb = verbs.add_parser(
        "top",
        help="a live view of a running cluster: brokers, partitions, ISR, groups, lag",
        description="Brokers, the partitions each leads and holds, under-replicated and "
        "leaderless partitions (the admin API), and each consumer group's workers, "
        "records/s, lag and DLQ (its metrics endpoint), asked again every --interval "
        "seconds until Ctrl-C.",
    )
    top_verb.add_argument("--local", action="store_true", required=True, help="up --local's")
    top_verb.add_argument("--out", type=Path, default=Path("build/local"), help="its --out")
    top_verb.add_argument("--interval", type=_positive, default=2, help="seconds per frame")
    top_verb.add_argument("--once", action="store_true", help="print one frame and exit")
    keyring_verb = verbs.add_parser(
        "keyring",
        help="the stack's secret config keyring, filled for SPEC",
        description="Read a keyring (JSON) on stdin, or none, and print it with every "
        "secret SPEC's plan needs (CA, node keystores, passwords) generated, keeping those "
        "there. `make up` runs: pulumi config get keyring | python -m infra keyring SPEC | "
        "pulumi config set --secret keyring. --rotate USER gives USER a new password; the "
        "next `pulumi up` changes its SCRAM credential and restarts only its containers.",
    )
    keyring_verb.add_argument("spec", help="path of the node spec (YAML)")
    keyring_verb.add_argument(
        "--rotate", action="append", default=[], metavar="USER", help="a new password (repeat)"
    )
    jars_verb = verbs.add_parser(
        "jars",
        help="resolve each Kafka release's jars from Maven Central, once",
        description="Resolve the broker classpath of every supported Kafka release into "
        "~/.cache/kafka-log-cluster/kafka-<release>/libs (checked, then moved into place), "
        "so the local runtime and the images work offline afterwards.",
    )
    plan_diff_verb = verbs.add_parser(
        "diff",
        help="what changing a spec does to a running cluster, and whether it is safe online",
        description="Plan and render both specs and print, per node, topic and group, what "
        "changes: each changed key of each file and whether Kafka takes it online (a dynamic "
        "config) or at a restart, new and removed nodes, partitions and replication. The "
        "last line says whether the change is safe online one node at a time, in which "
        "order. Exit 0: safe online (or nothing changes); 1: not, or refused.",
    )
    plan_diff_verb.add_argument("old", help="the spec the cluster runs")
    plan_diff_verb.add_argument("new", help="the spec it would change to")
    diff_verb = verbs.add_parser(
        "release-diff",
        help="what changes in broker config between two Kafka release lines",
        description="Keys added and removed, and keys whose type, default, validator or "
        "update mode changed, between the catalogues of two release lines; with --spec, "
        "only the keys that spec's server.properties set.",
    )
    diff_verb.add_argument("old", choices=list(RELEASES), help="the line a cluster runs")
    diff_verb.add_argument("new", choices=list(RELEASES), help="the line it would move to")
    diff_verb.add_argument("--spec", help="only the keys this spec's rendered files set")
    catalogs_verb = verbs.add_parser(
        "catalogs",
        help="regenerate the config catalogues from each Kafka release's jars",
        description="Read every supported release's broker ConfigDef from its jars "
        "(infra/kafka/java/GenerateCatalog.java) and write infra/kafka/catalogs/. "
        "Adding a release: a line in infra/kafka/releases.py, then this command.",
    )
    verify_verb = verbs.add_parser(
        "verify",
        help="check what runs against what was planned",
        description="Run the live verification suite (tests/infra) against a deployment: "
        "its hosts from an inventory (a spec's, a file, or a Pulumi stack's output). "
        "Prints one table and writes JUnit XML; exit 1 when a check fails.",
    )
    target = verify_verb.add_mutually_exclusive_group(required=True)
    target.add_argument("spec", nargs="?", help="the spec the deployment was provisioned from")
    target.add_argument(
        "--inventory", type=Path, help="an inventory JSON (e.g. build/local/inventory.json)"
    )
    target.add_argument("--stack", help="a Pulumi stack whose inventory output to read")
    verify_verb.add_argument(
        "--junit", type=Path, default=Path("build/verify-junit.xml"), help="JUnit XML here"
    )
    verify_verb.add_argument(
        "--settle",
        type=float,
        metavar="SECONDS",
        help="how long a check that converges (group membership, metrics endpoints) waits "
        "for the planned answer before it fails; 60 by default, for a deployment just up",
    )
    ci_verb = verbs.add_parser(
        "ci",
        help="ephemeral stack: up, verify, destroy",
        description="Create a unique ephemeral Pulumi stack for SPEC (Automation API; local file "
        "backend unless PULUMI_BACKEND_URL is set), pulumi up, verify it, then destroy and "
        "remove the stack: after success, failure, an exception, Ctrl-C or SIGTERM. The exit "
        "code is the verification's. Needs the Pulumi CLI and the spec's Docker hosts.",
    )
    ci_verb.add_argument("spec", help="path of the node spec (YAML)")
    ci_verb.add_argument("--stack-prefix", default="ci", help="stack names are PREFIX-<time>-<id>")
    ci_verb.add_argument(
        "--ttl", default="2h", help="how long the sweeper leaves it alone (7d, 2h, 30m)"
    )
    ci_verb.add_argument(
        "--keep-on-failure", action="store_true", help="keep a failed stack to inspect"
    )
    ci_verb.add_argument(
        "--junit", type=Path, default=Path("build/ci-junit.xml"), help="JUnit XML here"
    )
    teardown_verb = verbs.add_parser(
        "teardown",
        help="destroy expired stacks and sweep their leftovers",
        description="Destroy and remove stacks (one by name, or those whose ttl has passed), "
        "then remove Docker containers, networks, volumes and images labelled "
        "kafka-log-cluster.stack whose stack is gone or expired. Never touches an unlabelled "
        "resource. Without the Pulumi CLI no stack is known, and only resources whose own "
        "labels say they expired are removed.",
    )
    which = teardown_verb.add_mutually_exclusive_group(required=True)
    which.add_argument("--stack", help="destroy and remove this stack, then sweep")
    which.add_argument("--expired", action="store_true", help="stacks and leftovers past their ttl")
    teardown_verb.add_argument(
        "--dry-run", action="store_true", help="list what would go; change nothing"
    )
    teardown_verb.add_argument(
        "--host", action="append", help="Docker host to sweep (repeat; default: the local engine)"
    )
    for verb, run in (
        (plan_verb, plan), (render_verb, render), (check_verb, check), (up_verb, up),
        (roll_verb, roll), (rebalance_verb, rebalance), (top_verb, top), (keyring_verb, keyring),
        (jars_verb, jars), (plan_diff_verb, diff),
        (diff_verb, release_diff),
        (catalogs_verb, catalogs),
        (verify_verb, verify), (ci_verb, ci), (teardown_verb, teardown),
    ):  # fmt: skip
        verb.set_defaults(run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 160)
    try:
        return args.run(args, console)
    except InputError as err:
        print("\n".join(err.lines()), file=sys.stderr)
        return EXIT_BAD_INPUT
