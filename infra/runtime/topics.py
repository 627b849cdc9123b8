"""The planned topics on a running cluster, through the admin API.

At start every planned topic is created with its planned partitions, replication and
configs (one already there is left as it is). A roll grows a topic whose plan asks more
partitions (Kafka never removes one, and `diff` refuses a plan that asks fewer) and
creates the topics the new plan adds.
"""

from __future__ import annotations

import time

from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from consumers.properties import to_property
from infra.build import Built
from infra.runtime.answers import settle
from infra.runtime.cluster import ClusterError

TOPIC_TIMEOUT_S = 30


def _visible(admin: AdminClient, partitions: dict[str, int]) -> None:
    """Wait until the brokers' metadata has every new partition: the controller takes
    them first, and the brokers (and so the clients) learn of them a moment later."""
    deadline = time.monotonic() + TOPIC_TIMEOUT_S
    while True:
        topics = admin.list_topics(timeout=TOPIC_TIMEOUT_S).topics
        short = [n for n, total in partitions.items() if len(topics[n].partitions) < total]
        if not short:
            return
        if time.monotonic() > deadline:
            raise ClusterError(f"the brokers do not show the new partitions of {short[0]} yet")
        time.sleep(0.5)


def create_topics(admin_config: dict[str, str], built: Built) -> list[str]:
    """The planned topics with their planned partitions, replication and configs; the
    names of those that were already there (left as they are)."""
    admin = AdminClient({**admin_config, "log_level": 0})
    existing = admin.list_topics(timeout=10).topics
    wanted = [
        NewTopic(
            topic.name,
            int(topic.partitions.value),
            int(topic.replication_factor.value),
            config={k: to_property(d.value) for k, d in topic.config.items()},
        )
        for topic in built.plan.topics
        if topic.name not in existing
    ]
    if wanted:
        settle(
            admin.create_topics(wanted, request_timeout=TOPIC_TIMEOUT_S),
            "topic",
            ClusterError,
            TOPIC_TIMEOUT_S,
        )
    return [t.name for t in built.plan.topics if t.name in existing]


def grow_topics(admin_config: dict[str, str], built: Built) -> list[str]:
    """New topics created and existing ones grown to their planned partitions: a line
    for each."""
    admin = AdminClient({**admin_config, "log_level": 0})
    existing = admin.list_topics(timeout=10).topics
    kept = set(create_topics(admin_config, built))
    grown = {
        t.name: (len(existing[t.name].partitions), int(t.partitions.value))
        for t in built.plan.topics
        if t.name in kept and int(t.partitions.value) > len(existing[t.name].partitions)
    }
    if grown:
        wanted = [NewPartitions(name, total) for name, (_had, total) in grown.items()]
        settle(
            admin.create_partitions(wanted, request_timeout=TOPIC_TIMEOUT_S),
            "partitions of",
            ClusterError,
            TOPIC_TIMEOUT_S,
        )
        _visible(admin, {name: total for name, (_had, total) in grown.items()})
    created = [t.name for t in built.plan.topics if t.name not in kept]
    return [f"  created topic {name}" for name in created] + [
        f"  grew topic {name}: {had} -> {total} partitions" for name, (had, total) in grown.items()
    ]
