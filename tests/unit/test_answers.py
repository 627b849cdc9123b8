"""The admin API's futures: a refusal and a silence each become the caller's one line."""

from concurrent.futures import Future

import pytest
from confluent_kafka import KafkaError, KafkaException

from infra.runtime.answers import settle


class Refused(RuntimeError):
    pass


def done(value=None) -> Future:
    future: Future = Future()
    future.set_result(value)
    return future


def test_every_answer_in_time_is_quiet():
    settle({"a": done(), "b": done()}, "topic", Refused, 1)


def test_a_refusal_names_the_key_and_kafkas_reason():
    refused: Future = Future()
    refused.set_exception(KafkaException(KafkaError(KafkaError.TOPIC_ALREADY_EXISTS, "it exists")))
    with pytest.raises(Refused, match=r"^topic logs\.raw: it exists$"):
        settle({"ok": done(), "logs.raw": refused}, "topic", Refused, 1)


def test_a_silence_is_one_line_within_the_whole_timeout():
    never: Future = Future()
    with pytest.raises(Refused, match=r"^user auditor: the cluster did not answer in 0\.2 s$"):
        settle({"auditor": never, "other": Future()}, "user", Refused, 0.2)
