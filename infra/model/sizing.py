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


# What a node's containers may use: the spec's memory split between them, so several
# nodes on one Docker host cannot take each other's, and a heap can never outgrow its
# container (the page cache a broker reads through counts against its limit too).
WORKER_MB = 256  # a worker: Python, its parser, librdkafka's queues for a batch each way
SUPERVISOR_MB = 128
JVM_OVERHEAD_MB = 512  # beyond the heap: metaspace, code cache, thread stacks, direct buffers
CPU_SHARES_PER_CORE = 1024  # Docker's weight of one CPU


def consumer_memory(processes: int) -> Derived:
    value = SUPERVISOR_MB + WORKER_MB * processes
    return Derived(
        value=value,
        why=f"{SUPERVISOR_MB} MiB for the supervisor + {WORKER_MB} MiB for each of its "
        f"{processes} workers",
    )


def zookeeper_memory(heap: int) -> Derived:
    return Derived(
        value=heap + JVM_OVERHEAD_MB,
        why=f"its heap ({heap} MiB) + {JVM_OVERHEAD_MB} MiB the JVM needs beyond it",
    )


def kafka_memory(node_mb: int, others: dict[str, int]) -> Derived:
    """The rest of the node: the heap, and the page cache Kafka serves reads from."""
    taken = sum(others.values())
    detail = ", ".join(f"{s} {mb}" for s, mb in others.items())
    return Derived(
        value=node_mb - taken,
        why=f"the node's {node_mb} MiB"
        + (f" less its other containers' {taken} MiB ({detail})" if others else "")
        + ": the heap, and the page cache Kafka reads and writes through",
    )


def cpu_shares(cores: int, what: str) -> Derived:
    return Derived(
        value=CPU_SHARES_PER_CORE * cores,
        why=f"{cores} core(s) for {what}, as a weight: under contention each container gets "
        "CPU in proportion (a hard quota above the Docker host's CPUs is refused)",
    )
