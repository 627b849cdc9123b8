"""`python -m consumers`: the consumer deployment, its workers, and a producer for demos.

python -m consumers --bootstrap-servers HOST:PORT --group G --topic T [...]
python -m consumers produce --bootstrap-servers HOST:PORT --topic T [FILE|-|--demo N]
"""

from __future__ import annotations

import argparse
import json
import sys

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from consumers.client_config import problems
from consumers.settings import Settings, SettingsError, build, client_file, prefixed, read_file

EXIT_BAD_INPUT = 2


def _run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m consumers",
        description="Run N worker processes in one consumer group: parse log lines "
        "(RFC 5424, RFC 3164, JSON) into normalized JSON, at least once.",
        epilog="`python -m consumers produce --help` sends log lines to a topic.",
    )
    p.add_argument("--bootstrap-servers", help="HOST:PORT[,...] (default: from --config)")
    p.add_argument("--group", help="consumer group id (default: from --config)")
    p.add_argument("--topic", action="append", dest="topics", help="topic to consume (repeat)")
    p.add_argument("--processes", type=int, help="workers (default: --config's, else cores)")
    p.add_argument("--sink", help="kafka:TOPIC | file:PATH | stdout (default: stdout)")
    p.add_argument("--dlq", help="topic for malformed records (default: <first topic>.dlq)")
    p.add_argument("--config", help="the consumer settings file the plan renders")
    p.add_argument("--max-poll-interval-ms", type=int)
    p.add_argument("--session-timeout-ms", type=int)
    p.add_argument("--status-file", help="keep the workers' partitions here as JSON")
    p.add_argument(
        "--metrics", metavar="HOST:PORT", help="serve Prometheus metrics here (default: --config's)"
    )
    p.add_argument(
        "--connect-timeout", type=float, default=30.0, help="seconds to wait for the cluster"
    )
    return p


def _check_clients(settings: Settings) -> None:
    """librdkafka's word on every client setting, before any worker starts."""
    found = {
        f"{kind}.{key}": reason
        for kind, conf in (
            ("consumer", settings.consumer_config()),
            ("producer", settings.producer_config()),
        )
        for key, reason in problems(kind, conf).items()
    }
    if found:
        raise SettingsError("; ".join(f"{key}: {reason}" for key, reason in found.items()))


def _check_cluster(settings: Settings, timeout: float) -> None:
    """Fail fast, in one line, on an unreachable cluster or a missing topic."""
    refused: list[str] = []  # the broker's own word on a login it refused

    def on_error(err) -> None:
        if err.code() == KafkaError._AUTHENTICATION:
            refused.append(err.str())

    admin = AdminClient(
        {
            **settings.connection,
            "bootstrap.servers": settings.bootstrap_servers,
            "log_level": 0,
            "error_cb": on_error,
        }
    )
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as err:
        admin.poll(1)  # serves the error callback, which says whether a login was refused
        if refused:
            user = settings.connection.get("sasl.username", "")
            raise SettingsError(
                f"{settings.bootstrap_servers} refused the login of user {user!r} "
                f"({refused[-1]}); check sasl.username and its password file"
            ) from None
        raise SettingsError(
            f"cannot reach {settings.bootstrap_servers} within {timeout:g} s "
            f"({err.args[0].str()}); check --bootstrap-servers"
        ) from None
    missing = [t for t in settings.topics if t not in metadata.topics]
    if missing:
        raise SettingsError(
            f"topic {', '.join(missing)} does not exist on {settings.bootstrap_servers}"
        )


def run(argv: list[str]) -> int:
    from consumers.supervisor import Supervisor

    args = _run_parser().parse_args(argv)
    overrides = {
        key: str(value)
        for key, value in (
            ("max.poll.interval.ms", args.max_poll_interval_ms),
            ("session.timeout.ms", args.session_timeout_ms),
        )
        if value is not None
    }
    try:
        settings = build(
            config=args.config,
            bootstrap_servers=args.bootstrap_servers,
            group=args.group,
            topics=args.topics,
            sink=args.sink,
            dlq=args.dlq,
            processes=args.processes,
            metrics=args.metrics,
            overrides=overrides,
        )
        _check_clients(settings)
        _check_cluster(settings, args.connect_timeout)
        supervisor = Supervisor(settings, args.status_file)
        supervisor.serve_metrics()
    except SettingsError as err:
        print(f"consumers: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return supervisor.run()


def worker(argv: list[str]) -> int:
    from consumers.worker import Worker

    p = argparse.ArgumentParser(prog="python -m consumers worker", description="(internal)")
    p.add_argument("--settings", required=True)
    p.add_argument("--index", type=int, required=True)
    p.add_argument("--stats-fd", type=int)
    args = p.parse_args(argv)
    return Worker(Settings(**json.loads(args.settings)), args.index, args.stats_fd).run()


def produce(argv: list[str]) -> int:
    from consumers.produce import demo_lines, file_lines
    from consumers.produce import produce as send

    p = argparse.ArgumentParser(
        prog="python -m consumers produce", description="Send log lines to a topic (acks=all)."
    )
    p.add_argument("--bootstrap-servers", required=True)
    p.add_argument("--topic", required=True)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", help="a file of log lines, or - for stdin")
    source.add_argument("--demo", type=int, metavar="N", help="N demo RFC 5424 lines")
    p.add_argument("--demo-start", type=int, default=0, help="first demo sequence number")
    p.add_argument("--config", help="take producer.* settings from this rendered file")
    p.add_argument(
        "--client-config",
        metavar="FILE",
        help="connect as the user of this client file (clients/<user>.properties)",
    )
    args = p.parse_args(argv)
    try:
        file = read_file(args.config) if args.config else {}
        client = client_file(args.client_config) if args.client_config else {}
    except SettingsError as err:
        print(f"consumers: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    producer = {**prefixed(file, "producer"), **client}
    if args.demo is not None:
        lines, total = demo_lines(args.demo, args.demo_start), args.demo
    else:
        try:
            lines, total = file_lines(args.file), None
        except OSError as err:
            print(f"consumers: {args.file}: cannot read: {err.strerror}", file=sys.stderr)
            return EXIT_BAD_INPUT
    sent, refused = send(args.bootstrap_servers, args.topic, lines, total, producer)
    print(f"sent {sent} records to {args.topic}", file=sys.stderr)
    if refused:
        line, why = refused[0]
        print(
            f"consumers: {len(refused)} lines refused by {args.topic}, the first line {line}: "
            f"{why}",
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: list[str]) -> int:
    verbs = {"worker": worker, "produce": produce}
    if argv and argv[0] in verbs:
        return verbs[argv[0]](argv[1:])
    return run(argv[1:] if argv and argv[0] == "run" else argv)


sys.exit(main(sys.argv[1:]))
