"""The file sink, on its own: it writes where it is told, even into a fresh container."""

from __future__ import annotations

import fcntl
import os

from consumers.sinks import FileSink


def test_the_file_sink_makes_its_directory(tmp_path):
    path = tmp_path / "var" / "log" / "kafka-log-cluster" / "app.jsonl"
    sink = FileSink(str(path))

    def retried():
        raise AssertionError("the sink retried instead of writing")

    sink.deliver([b'{"a":1}', b'{"a":2}'], keepalive=retried)
    sink.close()
    assert path.read_bytes() == b'{"a":1}\n{"a":2}\n'


def test_workers_sharing_a_file_take_turns_for_a_whole_batch(tmp_path, monkeypatch):
    """Another writer cannot take the file while a batch is being written and synced:
    appends of any size never interleave, by construction rather than by luck."""
    path = tmp_path / "app.jsonl"
    sink = FileSink(str(path))
    seen = []

    def fsync_while_another_tries(fd):
        other = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            seen.append("the other writer got the file mid-batch")
        except BlockingIOError:
            seen.append("held")
        finally:
            os.close(other)

    monkeypatch.setattr(os, "fsync", fsync_while_another_tries)
    sink.deliver([b"x" * 1_000_000], keepalive=lambda: None)
    sink.close()
    assert seen == ["held"]
