"""Time from starting the local runtime's cluster to a ready one, on real Apache Kafka.

For each spec: the planned Kafka nodes (and ZooKeeper ensemble) start as JVMs from the
rendered files of the local placement, exactly as `python -m infra up --local` starts
them, and the clock stops when every planned broker is registered (and, in ZooKeeper
mode, the ensemble has its leader). The jars are resolved first, outside the clock.
Median of --rounds fresh starts (empty data directories each time).

    make bench-cluster       # or: .venv/bin/python benchmarks/cluster_start.py

The target (issue: real Kafka) is a three-node KRaft cluster ready in at most 60 s on
2 cores with 512 MiB of heap per JVM. Results: benchmarks/results/cluster_start.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from infra.kafka.releases import RELEASES  # noqa: E402
from infra.render.files import install  # noqa: E402
from infra.runtime.cluster import LocalCluster  # noqa: E402
from infra.runtime.maven import kafka_libs  # noqa: E402
from tests.integration.kafka_helpers import local_build  # noqa: E402

RESULTS = REPO / "benchmarks/results"
SPECS = (
    "specs/three-node-kraft.yaml",
    "specs/dedicated-controllers.yaml",
    "specs/zookeeper-3.9.yaml",
)
TARGET_S = 60.0


def once(spec: str) -> tuple[float, int]:
    """Seconds to ready, and how many JVMs the plan runs."""
    with tempfile.TemporaryDirectory(prefix="bench-start-") as out:
        built = local_build(REPO / spec, Path(out))
        install(built.rendered)
        cluster = LocalCluster(built.plan, log=lambda _line: None)
        started = time.monotonic()
        cluster.start()
        ready = time.monotonic() - started
        cluster.stop()
        return ready, len(cluster.services)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for release in RELEASES.values():
        kafka_libs(release)  # resolved once, outside the clock
    results = {}
    for spec in SPECS:
        runs = [once(spec) for _ in range(args.rounds)]
        samples = [round(seconds, 1) for seconds, _ in runs]
        results[Path(spec).stem] = {
            "ready_s": statistics.median(samples),
            "samples": samples,
            "jvms": runs[0][1],
        }
        print(f"{spec}: ready in {statistics.median(samples)} s (samples {samples})", flush=True)
    three = results["three-node-kraft"]["ready_s"]
    results["ratios"] = {"three_node_kraft_ready_vs_60s_target": round(three / TARGET_S, 2)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cluster_start.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
