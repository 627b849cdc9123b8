"""Client settings are judged by librdkafka as a client gets them: together."""

from __future__ import annotations

from consumers.client_config import problems


def test_settings_valid_together_pass_though_one_alone_breaks_a_default():
    # max.poll.interval.ms 6000 alone is below librdkafka's default session timeout (45 s).
    assert problems("consumer", {"max.poll.interval.ms": 6000, "session.timeout.ms": 6000}) == {}


def test_a_rule_across_keys_is_named_once_with_both_values():
    found = problems("consumer", {"max.poll.interval.ms": 6000, "session.timeout.ms": 60000})
    assert found == {
        "max.poll.interval.ms": "`max.poll.interval.ms`must be >= `session.timeout.ms`, "
        "got max.poll.interval.ms=6000, session.timeout.ms=60000"
    }


def test_unknown_keys_and_bad_values_are_named_alone():
    found = problems("producer", {"linger.msx": 1, "acks": "most", "batch.size": 1000})
    assert set(found) == {"linger.msx", "acks"}
