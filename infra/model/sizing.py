"""Threads and heap from a machine's cores and memory."""

from __future__ import annotations

from infra.kafka.catalog import load as load_catalog
from infra.model.plan import Derived, Settings


def heap_mb(memory_gb: float, service: str) -> Derived:
    """A bounded share of memory for a JVM, leaving the rest to the page cache."""
    floor, cap = {"broker": (512, 6144), "controller": (256, 1024), "zookeeper": (256, 2048)}[
        service
    ]
    memory_mb = int(memory_gb * 1024)
    value = min(cap, max(floor, memory_mb // 4), memory_mb // 2)
    return Derived(
        value=value,
        why=f"memory/4 of {memory_mb} MiB within [{floor}, {cap}] MiB and at most half: "
        "Kafka reads and writes through the page cache, which gets the rest",
    )


def broker_threads(cores: int, brokers: int, version: str) -> Settings:
    recovery_default = load_catalog(version).default("num.recovery.threads.per.data.dir")
    fetchers = (
        Derived(value=1, why="a single broker has nothing to replicate")
        if brokers == 1
        else Derived(
            value=max(1, cores // 4),
            why=f"max(1, cores/4) with {cores} cores: "
            "parallel replication without starving request handling",
        )
    )
    return {
        "num.network.threads": Derived(
            value=max(3, cores // 2),
            why=f"max(3, cores/2) with {cores} cores: sockets need less than request handling",
        ),
        "num.io.threads": Derived(
            value=max(8, 2 * cores),
            why=f"max(8, 2*cores) with {cores} cores: request handlers block on disk, "
            "so two per core keep every core busy",
        ),
        "num.recovery.threads.per.data.dir": Derived(
            value=max(recovery_default, cores),
            why=f"max(Kafka {version} default {recovery_default}, cores={cores}): "
            "log recovery after an unclean stop runs while nothing else does",
        ),
        "num.replica.fetchers": fetchers,
    }


LOCAL_HEAP_CAP_MB = 512


def local_heap(planned: Derived) -> Derived:
    """The local runtime runs every node's JVM on one machine: each gets at most 512 MiB."""
    if int(planned.value) <= LOCAL_HEAP_CAP_MB:
        return planned
    return Derived(
        value=LOCAL_HEAP_CAP_MB,
        why=f"local runtime: at most {LOCAL_HEAP_CAP_MB} MiB, so every node's JVM fits on one "
        f"machine (the node's own share would be {planned.value} MiB)",
    )
