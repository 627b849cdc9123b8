"""What `rebalance` and `top` read of a running `up --local`: its inventory and the admin."""

from __future__ import annotations

import json

import pytest

from infra.ops.top import Top
from infra.runtime.cluster import ClusterError
from infra.runtime.rebalance import RebalanceRefused, Running
from infra.runtime.running import running

INVENTORY = {
    "cluster": {"name": "siem", "kafka_release": "4.4.0"},
    "nodes": [{"name": "kafka-1", "node_id": 1, "cores": 8, "roles": ["broker", "controller"]}],
    "runtime": {"bootstrap_servers": "127.0.0.1:29092", "clients": {}},
}


def test_a_plaintext_runtime_is_reached_at_its_bootstrap(tmp_path):
    (tmp_path / "inventory.json").write_text(json.dumps(INVENTORY))
    inventory, admin = running(tmp_path)
    assert admin == {"bootstrap.servers": "127.0.0.1:29092"}
    assert Running.local(tmp_path).brokers == {"kafka-1": (1, 8)}
    assert Top.local(tmp_path).inventory == inventory


def test_a_secured_runtime_is_reached_with_the_admins_client_file(tmp_path):
    admin_file = tmp_path / "admin.properties"
    admin_file.write_text("security.protocol=SASL_SSL\nsasl.username=admin\n")
    secured = {
        **INVENTORY,
        "runtime": {**INVENTORY["runtime"], "clients": {"admin": str(admin_file)}},
    }
    (tmp_path / "inventory.json").write_text(json.dumps(secured))
    _, admin = running(tmp_path)
    assert admin["sasl.username"] == "admin" and admin["bootstrap.servers"] == "127.0.0.1:29092"


def test_no_runtime_is_one_line_for_each_verb(tmp_path):
    line = (
        f"no local runtime's inventory at {tmp_path}/inventory.json: start python -m infra "
        f"up --local SPEC --out {tmp_path}"
    )
    with pytest.raises(ClusterError) as found:
        running(tmp_path)
    assert str(found.value) == line
    with pytest.raises(RebalanceRefused, match=r"^no local runtime's inventory"):
        Running.local(tmp_path)
    (tmp_path / "inventory.json").write_text(json.dumps({**INVENTORY, "nodes": [{}]}))
    with pytest.raises(RebalanceRefused, match=r"not an inventory of up --local$"):
        Running.local(tmp_path)
