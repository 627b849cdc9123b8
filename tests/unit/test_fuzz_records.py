"""The record fuzzer: whatever bytes arrive, the parser returns a record that serialises
as JSON or raises its own ParseError (which sends the record to the DLQ), never anything
else, so no input can crash a worker into a restart loop.

Two runs in every `make test`: a fixed seed (the same examples every time) and a fresh
one. Inputs that once failed are kept below as explicit examples.
"""

from __future__ import annotations

import orjson
from hypothesis import HealthCheck, example, given, seed, settings
from hypothesis import strategies as st

from consumers.parsing import ParseError, parse

SEEDS = [
    b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
    b'[exampleSDID@32473 iut="3" eventSource="Application"] An application event',
    b'<34>1 2003-08-24T05:14:15.000003-07:00 - su 8710 - [a@1 x="\\"q\\" \\] \\\\"] msg',
    b"<34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed for lonvick on /dev/pts/8",
    b'{"@timestamp": "2026-01-01T00:00:00Z", "host": "h", "level": "info", "msg": "hi"}',
]
# Bytes that change a line's meaning most: syntax of the three formats, digits that are
# not ASCII, a BOM, line ends and bytes that are not UTF-8.
SPECIAL = [b"<", b">", b"1 ", b"-", b"[", b"]", b'"', b"\\", b"=", b"{", b"}", b":", b" ",
           b"\xef\xbb\xbf", b"\r\n", b"\x00", b"\xff", "²".encode(), "٣".encode(), b"999",
           b"Feb 30", b"9" * 30, b"[" * 200, b'{"a":' * 600]  # fmt: skip
RECEIVED_MS = st.one_of(st.just(-1), st.integers(0, 2**42))


@st.composite
def mutated(draw) -> bytes:
    """A known-good line with bytes deleted, replaced, duplicated or inserted."""
    line = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(line)))
        kind = draw(st.sampled_from(["delete", "insert", "duplicate", "truncate"]))
        if kind == "delete" and line:
            del line[at : at + draw(st.integers(1, 8))]
        elif kind == "insert":
            line[at:at] = draw(st.sampled_from(SPECIAL) | st.binary(max_size=8))
        elif kind == "duplicate":
            line[at:at] = line[at : at + draw(st.integers(1, 16))]
        else:
            del line[at:]
    return bytes(line)


def parses_or_refuses(value: bytes, received_ms: int) -> None:
    try:
        record = parse(value, received_ms)
    except ParseError as reason:
        assert str(reason), "a refusal must say why (the DLQ header carries it)"
        return
    assert orjson.loads(orjson.dumps(record))["format"] in ("rfc5424", "rfc3164", "json")


FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@seed(20261201)
@given(st.one_of(mutated(), st.binary(max_size=300)), RECEIVED_MS)
@example("<34>1 - h a ² - - m".encode(), 0)  # a superscript digit isdigit() but not int()
@example(b"<34>Oct 11 22:14:15 h su[999999999999999999999230]: m", -1)  # beyond 64 bits
def test_fixed_seed_any_bytes_parse_or_are_refused_with_a_reason(value, received_ms):
    parses_or_refuses(value, received_ms)


@FUZZ
@given(st.one_of(mutated(), st.binary(max_size=300)), RECEIVED_MS)
def test_fresh_seed_any_bytes_parse_or_are_refused_with_a_reason(value, received_ms):
    parses_or_refuses(value, received_ms)
