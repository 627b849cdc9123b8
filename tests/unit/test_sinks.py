"""The file sink, on its own: it writes where it is told, even into a fresh container."""

from __future__ import annotations

from consumers.sinks import FileSink


def test_the_file_sink_makes_its_directory(tmp_path):
    path = tmp_path / "var" / "log" / "kafka-log-cluster" / "app.jsonl"
    sink = FileSink(str(path))

    def retried():
        raise AssertionError("the sink retried instead of writing")

    sink.deliver([b'{"a":1}', b'{"a":2}'], keepalive=retried)
    sink.close()
    assert path.read_bytes() == b'{"a":1}\n{"a":2}\n'
