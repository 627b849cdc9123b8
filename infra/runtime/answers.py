"""Waiting on the admin API's futures: a refusal or a silence is one line, naming what."""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import Future

from confluent_kafka import KafkaException


def settle(
    futures: Mapping[object, Future], what: str, error: type[Exception], timeout_s: float
) -> None:
    """Wait, `timeout_s` in all, for every future; the first that fails raises `error`
    with `what`, the future's key and Kafka's reason (or that no answer came)."""
    deadline = time.monotonic() + timeout_s
    for key, future in futures.items():
        try:
            future.result(timeout=max(0.0, deadline - time.monotonic()))
        except KafkaException as err:
            raise error(f"{what} {key}: {err.args[0].str()}") from None
        except TimeoutError:
            raise error(f"{what} {key}: the cluster did not answer in {timeout_s:g} s") from None
