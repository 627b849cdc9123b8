"""`python -m infra plan|render|check` as an operator runs them."""

from __future__ import annotations

import hashlib
import json

from tests.conftest import REPO


def test_plan_prints_the_table_of_numbers_and_reasons(cli):
    code, out, err = cli("plan", "specs/three-node-kraft.yaml")
    assert code == 0 and err == ""
    assert "Plan for cluster siem: Kafka 4.4.0, kraft" in out
    row = next(line for line in out.splitlines() if "num.partitions" in line)
    assert "8" in row and "this broker's cores (8)" in row


def test_plan_json_is_the_same_bytes_every_time(cli):
    first = cli("plan", "specs/dedicated-controllers.yaml", "--json")
    second = cli("plan", "specs/dedicated-controllers.yaml", "--json")
    assert first == second
    assert json.loads(first[1])["cluster"]["name"] == "logs-prod"


def test_inventory_hashes_are_those_of_the_rendered_files(cli, tmp_path):
    code, out, _ = cli("plan", "specs/zookeeper-3.9.yaml", "--inventory")
    assert code == 0
    inventory = json.loads(out)
    cli("render", "specs/zookeeper-3.9.yaml", "--out", str(tmp_path))
    for node in inventory["nodes"]:
        assert node["files"], node["name"]
        for f in node["files"]:
            written = (tmp_path / node["name"] / f["name"]).read_bytes()
            assert hashlib.sha256(written).hexdigest() == f["sha256"]
    zk = next(n for n in inventory["nodes"] if n["name"] == "zk-2")
    assert [(f["name"], f["path"]) for f in zk["files"]] == [
        ("zookeeper.properties", "/etc/kafka-log-cluster/zookeeper.properties"),
        ("myid", "/data/myid"),
        ("zookeeper-metrics.yaml", "/etc/kafka-log-cluster/zookeeper-metrics.yaml"),
    ]
    assert (tmp_path / "zk-2" / "myid").read_text() == "2\n"


def test_render_writes_every_node_file_and_nothing_outside_its_directory(cli, tmp_path):
    out_dir = tmp_path / "out"
    code, out, err = cli("render", "specs/dedicated-controllers.yaml", "--out", str(out_dir))
    assert code == 0 and err == ""
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    written = sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*") if p.is_file())
    nodes = ["broker-1", "broker-2", "broker-big", "controller-1", "controller-2", "controller-3"]
    assert written == sorted(
        [f"{n}/{name}" for n in nodes for name in ("server.properties", "kafka-metrics.yaml")]
        + [
            "parsers-1/consumer-syslog-normalizers.properties",
            "parsers-2/consumer-syslog-normalizers.properties",
            "plan.json",
            "inventory.json",
            "monitoring/prometheus.yml",
            "monitoring/alerts.yml",
            "monitoring/dashboard.json",
        ]
    )
    assert f"wrote {len(written)} files under {out_dir}/" in out


def test_check_says_ok_and_counts_the_checked_broker_files(cli):
    code, out, err = cli("check", "specs/zookeeper-3.9.yaml")
    assert (code, err) == (
        0,
        "specs/zookeeper-3.9.yaml: warning: security: ZooKeeper's own ports stay plaintext: "
        "keep them on the cluster's network\n",
    )  # secure by default, but for ZooKeeper's own ports
    assert out.strip() == (
        "specs/zookeeper-3.9.yaml: ok: 7 nodes, 16 files rendered, 3 server.properties "
        "pass Kafka 3.9.2's rules"
    )


def test_warnings_go_to_stderr_and_do_not_fail(cli, tmp_path):
    spec = tmp_path / "two-controllers.yaml"
    spec.write_text(
        "cluster: {name: logs}\n"
        "nodes:\n"
        "  - {name: a, cores: 2, roles: [broker, controller]}\n"
        "  - {name: b, cores: 2, roles: [broker, controller, consumer]}\n"
    )
    code, out, err = cli("check", str(spec))
    assert code == 0 and "ok" in out
    assert err.splitlines() == [
        f"{spec}: warning: nodes: 2 controllers tolerate no more failures than 1; use an odd count",
        f"{spec}: warning: consumers: consumer nodes are given but no consumer group",
    ]


def test_every_example_spec_passes_the_checker(cli):
    for spec in sorted((REPO / "specs").glob("*.yaml")):
        code, out, _ = cli("check", str(spec.relative_to(REPO)))
        assert code == 0, out


def test_release_diff_shows_what_an_upgrade_changes_for_a_spec(cli):
    code, out, _ = cli("release-diff", "4.1", "4.4", "--spec", "specs/dedicated-controllers.yaml")
    assert code == 0
    # KIP-1161 (4.2): listener settings became lists and controller.listener.names required.
    assert "controller.listener.names" in out and "required" in out
    assert "num.replica.fetchers" in out  # 4.4 refuses 0
    assert "group.streams.session.timeout.ms" not in out  # added in 4.4, not set by the spec


def test_keyring_fills_keeps_and_rotates_one_password(cli, monkeypatch):
    import io

    from infra.secrets import Keyring

    spec = "specs/secure-kraft.yaml"
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, first, _ = cli("keyring", spec)
    assert code == 0
    ring = Keyring.loads(first, "vault")
    monkeypatch.setattr("sys.stdin", io.StringIO(first))
    code, again, _ = cli("keyring", spec)
    assert (code, again) == (0, first)
    monkeypatch.setattr("sys.stdin", io.StringIO(first))
    code, rotated, _ = cli("keyring", spec, "--rotate", "siem-reader")
    after = Keyring.loads(rotated, "vault")
    assert after.password("siem-reader") != ring.password("siem-reader")
    assert after.password("admin") == ring.password("admin")
    assert after.store["kafka-1.p12"] == ring.store["kafka-1.p12"]


def test_keyring_refuses_a_stranger_and_a_non_keyring_in_one_line(cli, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, out, err = cli("keyring", "specs/secure-kraft.yaml", "--rotate", "mallory")
    assert (code, out) == (2, "")
    assert err == (
        "keyring: --rotate mallory: not a user of specs/secure-kraft.yaml "
        "(its users: admin, ingest, siem-parsers, siem-reader)\n"
    )
    monkeypatch.setattr("sys.stdin", io.StringIO("hunter2"))
    code, out, err = cli("keyring", "specs/secure-kraft.yaml")
    assert (code, out, err.count("\n")) == (2, "", 1)
    assert err.startswith("keyring: stdin is not a keyring")


def test_top_without_a_running_cluster_is_one_line(cli, tmp_path):
    code, out, err = cli("top", "--local", "--out", str(tmp_path), "--once")
    assert (code, out) == (2, "")
    assert err == (
        f"top: no local runtime's inventory at {tmp_path}/inventory.json: start python -m "
        f"infra up --local SPEC --out {tmp_path}\n"
    )
