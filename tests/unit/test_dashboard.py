"""The plan's Grafana dashboard: a row per group and per broker, every query valid PromQL
over series the plan's exporters and supervisors serve."""

from __future__ import annotations

import json
import re
import subprocess

import yaml

from infra.build import build
from infra.model.metrics import EXPORT_RULES
from infra.render.files import monitoring
from tests.conftest import REPO, TEST_LOCAL_CORES

BUILT = build(str(REPO / "specs/dedicated-controllers.yaml"), local_cores=TEST_LOCAL_CORES)
BOARD = json.loads(monitoring(BUILT.plan)["dashboard.json"])
QUERIES = [t["expr"] for p in BOARD["panels"] if p["type"] != "row" for t in p["targets"]]


def test_a_row_per_group_and_per_broker_laid_out_without_overlap():
    rows = [p["title"] for p in BOARD["panels"] if p["type"] == "row"]
    brokers = [n.name for n in BUILT.plan.nodes if "broker" in n.roles]
    groups = [g.group for g in BUILT.plan.groups]
    assert [r.split(" ")[1] for r in rows[1:]] == groups + brokers
    cells = set()
    for panel in BOARD["panels"]:
        pos = panel["gridPos"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, panel["title"]
                cells.add((x, y))
    assert len({p["id"] for p in BOARD["panels"]}) == len(BOARD["panels"])


def test_every_query_names_the_cluster_and_a_series_that_is_served():
    # An exporter rule's name with its $1 as any lowercase word; the JVM's own, and up.
    rules = [r.name for found in EXPORT_RULES.values() for r in found]
    served = [re.escape(n).replace(r"\$1", "[a-z_]+").replace(r"\$2", "[a-z_]+") for n in rules]
    served += ["up", "jvm_memory_used_bytes", "klc_consumer_[a-z_]+"]
    for query in QUERIES:
        assert f'cluster="{BUILT.plan.cluster.name}"' in query, query
        names = re.findall(r"([a-z_]+)\{", query)
        assert names, query
        for name in names:
            assert any(re.fullmatch(pattern, name) for pattern in served), name


def test_every_query_is_valid_promql(tmp_path):
    """promtool parses each one, as the expression of a recording rule."""
    rules = [{"record": f"check:q{i}", "expr": q} for i, q in enumerate(QUERIES)]
    (tmp_path / "queries.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "q", "rules": rules}]})
    )
    done = subprocess.run(["promtool", "check", "rules", "queries.yml"], cwd=tmp_path,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(QUERIES)} rules found" in done.stdout
