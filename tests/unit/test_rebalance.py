"""The rebalance target: core-weighted shares, as few moves as it takes, leaders spread."""

from __future__ import annotations

from collections import Counter

import pytest

from infra.runtime.rebalance import RebalanceRefused, balanced, quotas


def spread(partitions: int, rf: int, brokers: list[int]) -> dict[tuple[str, int], list[int]]:
    """What Kafka's round-robin gives a topic created over `brokers`."""
    n = len(brokers)
    return {("logs.raw", p): [brokers[(p + k) % n] for k in range(rf)] for p in range(partitions)}


def held(assignment) -> Counter:
    return Counter(b for replicas in assignment.values() for b in replicas)


def test_shares_follow_the_cores_within_one_and_never_two_per_partition():
    assert quotas(72, 24, {1: 8, 2: 8, 3: 8, 4: 4}) == {1: 21, 2: 21, 3: 20, 4: 10}
    assert quotas(6, 2, {1: 100, 2: 1, 3: 1}) == {1: 2, 2: 2, 3: 2}  # capped at one each
    assert quotas(9, 3, {1: 8, 2: 8, 3: 0, 4: 8}) == {1: 3, 2: 3, 3: 0, 4: 3}


def test_a_new_broker_gets_its_share_and_only_replicas_for_it_move():
    current = spread(24, 3, [1, 2, 3])
    weights = {1: 8, 2: 8, 3: 8, 4: 4}
    target = balanced(current, weights)
    counts = held(target)
    total = 24 * 3
    for broker, cores in weights.items():
        assert abs(counts[broker] - total * cores / 28) < 1, (broker, counts)
    assert all(len(set(r)) == 3 for r in target.values())
    moved = [k for k in target if set(target[k]) != set(current[k])]
    assert len(moved) == counts[4]  # each moved partition gained broker 4, nothing else
    assert all(set(target[k]) - set(current[k]) == {4} for k in moved)


def test_a_drained_broker_is_emptied_and_the_leaders_spread():
    current = spread(28, 3, [1, 2, 3, 4])
    target = balanced(current, {1: 8, 2: 8, 3: 8, 4: 0})
    assert held(target)[4] == 0
    assert all(sorted(r) == [1, 2, 3] for r in target.values())
    leaders = Counter(r[0] for r in target.values())
    assert max(leaders.values()) - min(leaders.values()) <= 1, leaders


def test_a_balanced_cluster_moves_nothing():
    current = spread(24, 3, [1, 2, 3])
    assert balanced(current, {1: 8, 2: 8, 3: 8}) == current


def test_too_few_brokers_for_the_replication_factor_is_refused():
    with pytest.raises(RebalanceRefused, match="3 replicas per partition need as many brokers"):
        balanced(spread(6, 3, [1, 2, 3]), {1: 8, 2: 8, 3: 0})
