"""The rebalance target: core-weighted shares, as few moves as it takes, leaders spread."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from infra.runtime.rebalance import RebalanceRefused, balanced, quotas


def spread(partitions: int, rf: int, brokers: list[int]) -> dict[tuple[str, int], list[int]]:
    """What Kafka's round-robin gives a topic created over `brokers`."""
    n = len(brokers)
    return {("logs.raw", p): [brokers[(p + k) % n] for k in range(rf)] for p in range(partitions)}


def held(assignment) -> Counter:
    return Counter(b for replicas in assignment.values() for b in replicas)


def test_shares_follow_the_cores_within_one_and_never_two_per_partition():
    none = Counter()
    assert quotas(72, 24, {1: 8, 2: 8, 3: 8, 4: 4}, none, none) == {1: 21, 2: 21, 3: 20, 4: 10}
    # A tie goes to the broker that holds them already.
    assert quotas(72, 24, {1: 8, 2: 8, 3: 8, 4: 4}, Counter({3: 24}), none)[3] == 21
    assert quotas(6, 2, {1: 100, 2: 1, 3: 1}, none, none) == {1: 2, 2: 2, 3: 2}  # one each
    assert quotas(9, 3, {1: 8, 2: 8, 3: 0, 4: 8}, none, none) == {1: 3, 2: 3, 3: 0, 4: 3}


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


@st.composite
def layouts(draw):
    """Any cluster: 1-6 brokers with weights (0: drained), topics of any replication."""
    brokers = list(range(1, draw(st.integers(1, 6)) + 1))
    weights = {b: draw(st.sampled_from([0, 1, 2, 4, 8])) for b in brokers}
    current = {}
    for topic in range(draw(st.integers(1, 3))):
        rf = draw(st.integers(1, len(brokers)))
        for p in range(draw(st.integers(1, 12))):
            current[f"t{topic}", p] = draw(st.permutations(brokers))[:rf]
    return current, weights


@settings(max_examples=400, deadline=None)
@given(layouts())
def test_any_layout_gets_a_valid_target_with_each_share_within_one(layout):
    current, weights = layout
    try:
        target = balanced(current, weights)
    except RebalanceRefused:
        assume(False)  # fewer brokers with cores than a topic's replication factor
    assert target.keys() == current.keys()
    for key, replicas in target.items():
        assert len(replicas) == len(current[key]) == len(set(replicas)), (key, replicas)
        assert all(weights[b] > 0 for b in replicas), (key, replicas)  # drained: emptied
    total = sum(weights.values())
    for topic in {t for t, _ in current}:
        partitions = [k for k in current if k[0] == topic]
        slots = sum(len(current[k]) for k in partitions)
        exact = {b: slots * w / total for b, w in weights.items()}
        if max(exact.values()) > len(partitions):
            continue  # a broker capped at one replica per partition: the rest share more
        held = Counter(b for k in partitions for b in target[k])
        assert all(abs(held[b] - exact[b]) < 1 for b in weights), (topic, held, exact)
    assert balanced(target, weights) == target  # a balanced layout stays as it is


def test_a_drain_finds_a_chain_when_no_direct_move_is_left():
    # Four equal brokers, RF 2 round robin: every partition broker 4 holds pairs it with a
    # broker that cannot take more, so emptying it takes moves through a third broker.
    current = spread(15, 2, [1, 2, 3, 4])
    target = balanced(current, {1: 8, 2: 8, 3: 8, 4: 0})
    assert held(target)[4] == 0 and sorted(held(target).values()) == [10, 10, 10]


def test_a_balanced_spread_of_small_topics_moves_nothing():
    current = {("a", 0): [1], ("b", 0): [2], ("c", 0): [3]}
    assert balanced(current, {1: 8, 2: 8, 3: 8}) == current
    eight = {(f"t{t}", p): r for t in range(8) for (_n, p), r in spread(6, 3, [1, 2, 3, 4]).items()}
    assert balanced(eight, {1: 8, 2: 8, 3: 8, 4: 8}) == eight
