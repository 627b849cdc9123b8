"""The plan's Grafana dashboard: one row per consumer group, one per broker.

Built as Grafana's dashboard JSON (schema 39) over a Prometheus data source chosen at
import (`${datasource}`); every panel's query names its cluster, so one Prometheus can
hold several. Import it in Grafana: Dashboards, New, Import, upload the file.
"""

from __future__ import annotations

import json

from infra.model.plan import Plan

WIDTH = 24  # Grafana's grid
PANEL_HEIGHT = 7
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def _panel(title: str, queries: list[tuple[str, str]], unit: str, x: int, y: int, w: int) -> dict:
    return {
        "type": "timeseries",
        "title": title,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "gridPos": {"h": PANEL_HEIGHT, "w": w, "x": x, "y": y},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "expr": expr,
                "legendFormat": legend,
                "datasource": DATASOURCE,
            }
            for i, (expr, legend) in enumerate(queries)
        ],
    }


def panels(plan: Plan) -> list[dict]:
    """Rows and their panels, top to bottom: the cluster, each group, each broker."""
    c = f'cluster="{plan.cluster.name}"'
    rows: list[tuple[str, list[tuple[str, list[tuple[str, str]], str]]]] = [
        (
            f"cluster {plan.cluster.name}",
            [
                ("targets up", [(f"sum by (service) (up{{{c}}})", "{{service}}")], "short"),
                (
                    "partitions: under-replicated, offline",
                    [
                        (
                            f"sum(kafka_server_replicamanager_underreplicatedpartitions{{{c}}})",
                            "under-replicated",
                        ),
                        (
                            f"max(kafka_controller_kafkacontroller_offlinepartitionscount{{{c}}})",
                            "offline",
                        ),
                    ],
                    "short",
                ),
                (
                    "active controllers",
                    [
                        (
                            f"sum(kafka_controller_kafkacontroller_activecontrollercount{{{c}}})",
                            "active",
                        )
                    ],
                    "short",
                ),
            ],
        )
    ]
    for group in plan.groups:
        g = f'{c}, group="{group.group}"'
        rows.append(
            (
                f"group {group.group} ({group.topic} -> {group.sink})",
                [
                    (
                        "records/s",
                        [
                            (f"sum(rate(klc_consumer_records_total{{{g}}}[1m]))", "delivered"),
                            (f"sum(rate(klc_consumer_dlq_records_total{{{g}}}[1m]))", "to DLQ"),
                        ],
                        "ops",
                    ),
                    (
                        "lag (records behind)",
                        [(f"sum(klc_consumer_lag{{{g}}})", "total")],
                        "short",
                    ),
                    (
                        "workers: live, planned, restarts",
                        [
                            (f"sum(klc_consumer_workers{{{g}}})", "live"),
                            (f"sum(klc_consumer_workers_planned{{{g}}})", "planned"),
                            (
                                f"sum(increase(klc_consumer_worker_restarts_total{{{g}}}[5m]))",
                                "restarts in 5 min",
                            ),
                        ],
                        "short",
                    ),
                ],
            )
        )
    for node in plan.nodes:
        if "broker" not in node.roles:
            continue
        n = f'{c}, node="{node.name}"'
        rows.append(
            (
                f"broker {node.name} ({node.cores} cores)",
                [
                    (
                        "records in/s",
                        [
                            (
                                f"rate(kafka_server_brokertopicmetrics_messagesinpersec_total{{{n}}}[1m])",
                                "in",
                            )
                        ],
                        "ops",
                    ),
                    (
                        "partitions: led, under-replicated",
                        [
                            (f"kafka_server_replicamanager_leadercount{{{n}}}", "leader"),
                            (
                                f"kafka_server_replicamanager_underreplicatedpartitions{{{n}}}",
                                "under-replicated",
                            ),
                        ],
                        "short",
                    ),
                    (
                        "heap",
                        [(f'jvm_memory_used_bytes{{{n}, area="heap", service="kafka"}}', "used")],
                        "bytes",
                    ),
                ],
            )
        )
    found, y = [], 0
    for title, charts in rows:
        found.append({"type": "row", "title": title, "collapsed": False,
                      "gridPos": {"h": 1, "w": WIDTH, "x": 0, "y": y}})  # fmt: skip
        y += 1
        w = WIDTH // len(charts)
        for i, (chart, queries, unit) in enumerate(charts):
            found.append(_panel(chart, queries, unit, i * w, y, w))
        y += PANEL_HEIGHT
    for i, panel in enumerate(found):
        panel["id"] = i + 1
    return found


def dashboard(plan: Plan) -> str:
    board = {
        "title": f"kafka-log-cluster: {plan.cluster.name}",
        "uid": f"klc-{plan.cluster.name}"[:40],
        "schemaVersion": 39,
        "editable": True,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "type": "datasource",
                    "query": "prometheus",
                    "label": "Prometheus",
                },
            ]
        },
        "panels": panels(plan),
    }
    return json.dumps(board, indent=2) + "\n"
