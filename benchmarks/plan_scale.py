"""How planning scales: spec parsing, plan, render and check for 10, 100 and 1,000 nodes.

Two measures, medians of --runs:
- in this process, per stage (imports and templates warm): the 1,000-node total as a
  share of a 1 s budget, and its per-node cost against the 10-node one (1.0 = linear);
- as an operator runs it, the whole command `python -m infra render SPEC --out DIR`
  (imports, writing every file, the plan and inventory JSON): its time beyond the
  interpreter's own start (`python -c pass`), against the 1 s budget, and the 1,000-node
  command against the 10-node one (the target: at most 3x).
Results go to benchmarks/results/plan_scale.json.

    .venv/bin/python benchmarks/plan_scale.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from infra.model.load import load_spec  # noqa: E402
from infra.model.planner import build_plan  # noqa: E402
from infra.render.files import render  # noqa: E402

SIZES = (10, 100, 1000)
BUDGET_S = 1.0


def spec_of(size: int) -> dict:
    """3 controllers, brokers of mixed sizes, and a tenth of the nodes parsing logs."""
    consumers = max(1, size // 10)
    brokers = size - 3 - consumers
    nodes = [
        {"name": f"controller-{i}", "cores": 2, "memory_gb": 4, "roles": ["controller"]}
        for i in range(3)
    ]
    nodes += [
        {"name": f"broker-{i}", "cores": (4, 8, 16)[i % 3], "memory_gb": 32, "roles": ["broker"]}
        for i in range(brokers)
    ]
    nodes += [
        {"name": f"parsers-{i}", "cores": 8, "memory_gb": 16, "roles": ["consumer"]}
        for i in range(consumers)
    ]
    return {
        "cluster": {"name": f"bench-{size}"},
        "nodes": nodes,
        "topics": [{"name": "logs.raw"}, {"name": "logs.parsed", "retention": "14d"}],
        "consumers": [{"group": "parsers", "topic": "logs.raw", "sink": "kafka:logs.parsed"}],
    }


def measure(path: Path) -> dict[str, float]:
    source = str(path)
    t0 = time.perf_counter()
    spec, _ = load_spec(path)
    t1 = time.perf_counter()
    plan, _ = build_plan(spec, source, local_cores=8)
    t2 = time.perf_counter()
    render(plan, source)  # renders every file and checks every server.properties
    t3 = time.perf_counter()
    return {"spec": t1 - t0, "plan": t2 - t1, "render_and_check": t3 - t2, "total": t3 - t0}


def command_s(args: list[str], runs: int, out: Path | None = None) -> float:
    """Median wall time of a whole command; with `out`, into a fresh directory each run
    (render leaves a file that already has its content untouched)."""
    times = []
    for run in range(runs):
        fresh = [str(out / str(run))] if out else []
        start = time.perf_counter()
        subprocess.run([*args, *fresh], cwd=REPO, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def whole_commands(tmp: Path, runs: int) -> dict:
    python = [sys.executable]
    start = command_s([*python, "-c", "pass"], runs)
    seconds = {}
    for size in (SIZES[0], SIZES[-1]):
        spec = Path(tmp) / f"{size}.yaml"
        render = [
            *python,
            "-m",
            "infra",
            "render",
            str(spec),
            "--out",
            str(Path(tmp) / f"out-{size}"),
        ]
        seconds[size] = command_s(render, runs)
        print(f"{size:>5} nodes: python -m infra render {seconds[size] * 1000:.0f} ms", flush=True)
    return {
        "interpreter_start_s": round(start, 3),
        "render_command_s": {str(size): round(s, 3) for size, s in seconds.items()},
        "1000_node_command_beyond_start_share_of_1s_budget": round(
            (seconds[SIZES[-1]] - start) / BUDGET_S, 2
        ),
        "1000_node_command_vs_10_node_command": round(seconds[SIZES[-1]] / seconds[SIZES[0]], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in SIZES:
            path = Path(tmp) / f"{size}.yaml"
            path.write_text(yaml.safe_dump(spec_of(size), sort_keys=False))
            measure(path)  # warm-up: imports, template compilation, catalogue loading
            runs = [measure(path) for _ in range(args.runs)]
            results[size] = {stage: statistics.median(r[stage] for r in runs) for stage in runs[0]}
            print(
                f"{size:>5} nodes: total {results[size]['total'] * 1000:8.1f} ms  "
                + "  ".join(
                    f"{k} {v * 1000:.1f} ms" for k, v in results[size].items() if k != "total"
                )
            )
        commands = whole_commands(Path(tmp), args.runs)
    largest, smallest = results[SIZES[-1]], results[SIZES[0]]
    figures = {
        "runs_per_size": args.runs,
        "median_seconds": {str(size): stages for size, stages in results.items()},
        "1000_nodes_share_of_1s_budget": round(largest["total"] / BUDGET_S, 3),
        "per_node_cost_1000_vs_10": round(
            (largest["total"] / SIZES[-1]) / (smallest["total"] / SIZES[0]), 3
        ),
        "whole_commands": commands,
    }
    out = REPO / "benchmarks/results/plan_scale.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(
        f"1,000 nodes use {figures['1000_nodes_share_of_1s_budget']:.0%} of the 1 s budget; "
        f"per-node cost at 1,000 is {figures['per_node_cost_1000_vs_10']}x that at 10. -> {out}"
    )


if __name__ == "__main__":
    main()
