"""A ZooKeeper ensemble member's zookeeper.properties (Kafka 3.9 ZooKeeper mode)."""

from __future__ import annotations

from infra.model.plan import Derived, Settings
from infra.model.spec import Node
from infra.model.topology import LOOPBACK, Topology


def zookeeper_properties(topology: Topology, node: Node) -> Settings:
    if "zookeeper" not in node.roles:
        return {}
    settings: Settings = {
        "tickTime": Derived(value=2000, why="ZooKeeper's base time unit (ms)"),
        "initLimit": Derived(value=10, why="followers have 10 ticks to connect and sync"),
        "syncLimit": Derived(value=5, why="a follower more than 5 ticks behind is dropped"),
        "dataDir": Derived(
            value=topology.data_dir(node, "zookeeper"),
            why="the node's data directory" if topology.local else "the node's data volume",
        ),
        "clientPort": Derived(
            value=topology.bound_port(node, "zookeeper-client"), why="for brokers"
        ),
        "autopurge.snapRetainCount": Derived(value=3, why="keep the last 3 snapshots"),
        "autopurge.purgeInterval": Derived(
            value=24, why="ZooKeeper never deletes old snapshots unless told (hours)"
        ),
        "4lw.commands.whitelist": Derived(
            value="ruok,srvr,mntr", why="health and status checks only"
        ),
        "admin.enableServer": Derived(value=False, why="no embedded Jetty on port 8080"),
    }
    if topology.local:
        settings["clientPortAddress"] = Derived(value=LOOPBACK, why="loopback only")
    if topology.spans_hosts:
        settings["quorumListenOnAllIPs"] = Derived(
            value=True, why="peers are addressed by Docker host, not container"
        )
    for peer in topology.spec.with_role("zookeeper"):
        peer_port = topology.reach(peer, "zookeeper-peer")
        election = topology.reach(peer, "zookeeper-election").rsplit(":", 1)[1]
        settings[f"server.{topology.zookeeper_ids[peer.name]}"] = Derived(
            value=f"{peer_port}:{election}", why=f"ensemble member {peer.name}"
        )
    return settings
