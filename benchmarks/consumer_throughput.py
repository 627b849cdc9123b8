"""Consumer throughput: the project's workers vs a quixstreams app vs a raw forward.

The same job for each: read N RFC 5424 lines from one topic, parse each into the
normalized JSON record, write it to another topic, commit after the write is
acknowledged. The raw forward skips parsing: it is the ceiling of this client and
broker, tuned for its own speed (100,000-record batches), as quixstreams keeps the
settings it runs fastest with; neither is held to the project's. All run against the
same broker in the same run (a real Apache Kafka node on this machine, the tests' own,
or KAFKA_BOOTSTRAP_SERVERS), one after another, each in its own consumer group.
Progress is read from outside, identically for all: the group's committed offsets,
polled every 50 ms. Records/s count from the first commit (so the group join is
excluded) to the commit of the last record. The output is then counted by reading it.

    make bench-consumers            # or: .venv/bin/python benchmarks/consumer_throughput.py

Each contender runs once per round, rounds interleaved, and the median is reported with
every sample: on a 2-core machine shared with the broker, single runs vary by a third.
Then the takeover, for each group protocol the plan runs (KIP-848's consumer protocol
on Kafka 4.x, the classic one on 3.9) with one session timeout: two project workers,
one SIGKILLed mid-stream, and the seconds until every partition it owned is committed
again past where it stood.

Results: benchmarks/results/consumer_throughput.json and .png.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import yaml  # noqa: E402
from confluent_kafka import (  # noqa: E402
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (  # noqa: E402
    AdminClient,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from consumers.produce import demo_lines, produce  # noqa: E402
from infra.build import build  # noqa: E402
from tests.conftest import plaintext  # noqa: E402
from tests.integration.kafka_helpers import local_cluster, read_topic  # noqa: E402

QUIX_PYTHON = REPO / "benchmarks/.venv-quix/bin/python"
TEST_BROKER = REPO / "tests/integration/specs/test-broker.yaml"
RESULTS = REPO / "benchmarks/results"


def broker_setting(admin: AdminClient, key: str) -> str:
    broker = next(iter(admin.list_topics(timeout=10).brokers))
    resource = ConfigResource(ResourceType.BROKER, str(broker))
    return admin.describe_configs([resource])[resource].result(timeout=30)[key].value


def committed(reader: Consumer, partitions: list[TopicPartition]) -> int:
    # A consumer of the group that never joins it, not AdminClient's
    # list_consumer_group_offsets: librdkafka 2.16 dereferences a null group when a new
    # group's coordinator answers NOT_COORDINATOR there (librdkafka#5040) and crashes.
    try:
        found = reader.committed(partitions, timeout=5)
    except KafkaException as err:
        if err.args[0].retriable() or err.args[0].code() == KafkaError.NOT_COORDINATOR:
            return 0  # a new group's coordinator is still loading: nothing committed yet
        raise
    return sum(max(0, tp.offset) for tp in found)


def stop_contender(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()


def run_contender(
    name: str,
    command: list[str],
    group: str,
    source: list[TopicPartition],
    total: int,
    bootstrap: str,
    output: str,
    log: Path,
) -> dict:
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 0})
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log.open("w"))
    started = time.monotonic()
    first: tuple[float, int] | None = None
    try:
        while True:
            done = committed(reader, source)
            now = time.monotonic()
            if first is None and done > 0:
                first = (now, done)
            if done >= total:
                break
            if process.poll() is not None or now - started > 600:
                raise RuntimeError(f"{name} stopped or stalled at {done}/{total}; see {log}")
            time.sleep(0.05)
    finally:
        stop_contender(process)
        reader.close()
    assert first is not None
    written = len(read_topic(bootstrap, output, quiet_s=2))
    rate = (total - first[1]) / max(now - first[0], 1e-9)
    result = {
        "records_per_s": round(rate),
        "join_and_first_batch_s": round(first[0] - started, 2),
        "output_records": written,
    }
    print(f"{name:>18}: {rate:>10,.0f} records/s  (output {written:,} records)", flush=True)
    if written < total:
        raise RuntimeError(f"{name} wrote {written} of {total} records")
    return result


def takeover(command: list[str], group: str, source: str, partitions: int, bootstrap: str,
             status: Path, log: Path) -> dict:  # fmt: skip
    """One of two workers SIGKILLed while lines keep arriving: seconds until every
    partition it owned is committed past where it stood. The group's session timeout
    bounds it: the coordinator learns of the death only when that runs out, whether or
    not the supervisor has started a new worker meanwhile."""
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 0})
    stop = threading.Event()

    def feed() -> None:  # a steady stream: every partition always has more to read
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "log_level": 0})
        seq = 0
        while not stop.is_set():
            for line in demo_lines(2_000, seq):
                producer.produce(source, value=line)
            seq += 2_000
            producer.poll(0)
            time.sleep(0.1)
        producer.flush(30)

    feeder = threading.Thread(target=feed)
    feeder.start()
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log.open("w"))
    source_tps = [TopicPartition(source, p) for p in range(partitions)]
    try:
        deadline = time.monotonic() + 120
        while True:  # both workers own partitions and records are being committed
            found = json.loads(status.read_text()) if status.exists() else {"workers": []}
            owners = [w for w in found["workers"] if w["partitions"] and w["pid"]]
            if len(owners) == 2 and committed(reader, source_tps) > 0:
                break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"the takeover run did not start; see {log}")
            time.sleep(0.05)
        victim = owners[0]
        owned = [TopicPartition(source, int(p.rsplit(":", 1)[1])) for p in victim["partitions"]]
        before = {tp.partition: tp.offset for tp in reader.committed(owned, timeout=10)}
        os.kill(victim["pid"], signal.SIGKILL)
        killed = time.monotonic()
        waiting = set(before)
        while waiting:
            now = {tp.partition: tp.offset for tp in reader.committed(owned, timeout=10)}
            waiting = {p for p in waiting if now[p] <= before[p]}
            if time.monotonic() - killed > 120:
                raise RuntimeError(f"partitions {sorted(waiting)} not taken over in 120 s")
            time.sleep(0.05)
        seconds = time.monotonic() - killed
    finally:
        stop.set()
        feeder.join()
        stop_contender(process)
        reader.close()
    print(f"{'takeover':>18}: {seconds:>10.1f} s after a worker's SIGKILL ({log.stem})", flush=True)
    return {"seconds": round(seconds, 1), "partitions": len(before)}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["contenders"])
    rates = [results["contenders"][n]["records_per_s"] for n in names]
    fig, ax = plt.subplots(figsize=(8, 4))
    bars = ax.barh(names, rates, color=["#888" if "raw" in n else "#2a6" for n in names])
    ax.bar_label(bars, labels=[f"{r:,}" for r in rates], padding=4)
    ax.set_xlabel("records/s (parse RFC 5424 -> JSON -> Kafka, at least once)")
    ax.set_title(
        f"{results['records']:,} records, {results['partitions']} partitions, same broker, "
        f"median of {results['rounds']} rounds"
    )
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=600_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="contenders interleaved per round")
    parser.add_argument("--max-processes", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if not QUIX_PYTHON.exists():
        sys.exit(f"no quixstreams venv at {QUIX_PYTHON}: run `make bench-consumers`")

    work = Path(tempfile.mkdtemp(prefix="bench-"))
    with contextlib.ExitStack() as running:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or (
            running.enter_context(local_cluster(TEST_BROKER, work / "broker"))[0].bootstrap
        )
        admin = AdminClient({"bootstrap.servers": bootstrap})
        source = f"bench-in-{uuid.uuid4().hex[:8]}"
        admin.create_topics([NewTopic(source, args.partitions, 1)])[source].result()
        produce(
            bootstrap,
            source,
            demo_lines(args.records),
            args.records,
            {"linger.ms": "20", "log_level": "0"},
        )
        print(f"{args.records:,} lines in {source} ({args.partitions} partitions)", flush=True)

        # The project runs with the settings its plan renders for a consumer node. The
        # test broker is plaintext (every contender connects alike), so the plan opts out.
        spec = plaintext(REPO / "specs/single-node.yaml")
        (work / "single-node.yaml").write_text(yaml.safe_dump(spec))
        built = build(str(work / "single-node.yaml"), local_cores=args.max_processes)
        rendered = built.rendered
        config = work / "consumer.properties"
        config.write_text(
            next(f.content for f in rendered["kafka-1"] if f.name.startswith("consumer-"))
        )

        def project(processes: int, settings: Path = config, session_ms: int | None = None):
            return lambda bs, group, inp, out: [
                sys.executable,
                "-m",
                "consumers",
                "--config",
                str(settings),
                "--bootstrap-servers",
                bs,
                "--group",
                group,
                "--topic",
                inp,
                "--sink",
                f"kafka:{out}",
                "--dlq",
                f"{out}.dlq",
                "--processes",
                str(processes),
                *(["--session-timeout-ms", str(session_ms)] if session_ms else []),
            ]

        contenders = {
            "raw forward": lambda bs, group, inp, out: [
                sys.executable,
                str(REPO / "benchmarks/raw_forward.py"),
                bs,
                group,
                inp,
                out,
            ],
            "project, 1 process": project(1),
            "quixstreams": lambda bs, group, inp, out: [
                str(QUIX_PYTHON),
                str(REPO / "benchmarks/quix_app.py"),
                bs,
                group,
                inp,
                out,
            ],
        }
        for n in range(2, args.max_processes + 1):
            contenders[f"project, {n} processes"] = project(n)

        samples: dict[str, list[dict]] = {name: [] for name in contenders}
        for round_ in range(1, args.rounds + 1):
            print(f"round {round_} of {args.rounds}", flush=True)
            for name, command in contenders.items():
                output = f"bench-out-{uuid.uuid4().hex[:8]}"
                admin.create_topics([NewTopic(output, args.partitions, 1)])[output].result()
                group = f"bench-{uuid.uuid4().hex[:8]}"
                log = work / f"{name.replace(' ', '-').replace(',', '')}-{round_}.log"
                samples[name].append(
                    run_contender(
                        name,
                        command(bootstrap, group, source, output),
                        group,
                        [TopicPartition(source, p) for p in range(args.partitions)],
                        args.records,
                        bootstrap,
                        output,
                        log,
                    )
                )
                admin.delete_topics([output])  # keep the broker's disk small

        # Takeover, with each group protocol the plan runs (KIP-848's on 4.x, classic on
        # 3.9) and one session timeout: the broker's for KIP-848, the same on the client.
        session_ms = int(broker_setting(admin, "group.consumer.session.timeout.ms"))
        takeovers = {}
        for protocol in ("classic", "consumer"):
            settings = work / f"consumer-{protocol}.properties"
            settings.write_text(
                config.read_text().replace(
                    "consumer.group.protocol=consumer", f"consumer.group.protocol={protocol}"
                )
            )
            fed, output = (f"bench-{kind}-{uuid.uuid4().hex[:8]}" for kind in ("fed", "out"))
            for topic in (fed, output):
                admin.create_topics([NewTopic(topic, args.partitions, 1)])[topic].result()
            group, status = f"bench-{uuid.uuid4().hex[:8]}", work / f"takeover-{protocol}.json"
            client_session = session_ms if protocol == "classic" else None
            command = project(2, settings, client_session)(bootstrap, group, fed, output)
            takeovers[protocol] = {
                **takeover([*command, "--status-file", str(status)], group, fed,
                           args.partitions, bootstrap, status, work / f"takeover-{protocol}.log"),
                "session_timeout_s": session_ms / 1000,
            }  # fmt: skip
    results = {
        "records": args.records,
        "partitions": args.partitions,
        "rounds": args.rounds,
        "contenders": {
            name: {
                "records_per_s": round(statistics.median(r["records_per_s"] for r in runs)),
                "samples": [r["records_per_s"] for r in runs],
                "join_and_first_batch_s": statistics.median(
                    r["join_and_first_batch_s"] for r in runs
                ),
            }
            for name, runs in samples.items()
        },
        "takeover": takeovers,
    }

    rate = {name: r["records_per_s"] for name, r in results["contenders"].items()}
    one = rate["project, 1 process"]
    results["ratios"] = {
        "project_1_process_vs_quixstreams": round(one / rate["quixstreams"], 2),
        "project_1_process_vs_raw_forward": round(one / rate["raw forward"], 2),
        **{
            f"project_{n}_processes_vs_{n}x_one": round(
                rate[f"project, {n} processes"] / (n * one), 2
            )
            for n in range(2, args.max_processes + 1)
        },
        **{
            f"takeover_{protocol}_vs_session_timeout": round(
                taken["seconds"] / taken["session_timeout_s"], 2
            )
            for protocol, taken in takeovers.items()
        },
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "consumer_throughput.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, RESULTS / "consumer_throughput.png")
    for key, value in results["ratios"].items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
