"""Log lines -> normalized records; every malformed line gets its reason."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from consumers.parsing import ParseError, parse

JAN_2027 = int(datetime(2027, 1, 2, 12, tzinfo=UTC).timestamp() * 1000)
JUN_2026 = int(datetime(2026, 6, 1, tzinfo=UTC).timestamp() * 1000)


def test_rfc5424_with_structured_data_from_the_rfc():
    line = (
        b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
        b'[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]'
        b'[examplePriority@32473 class="high"] An application event log entry...'
    )
    assert parse(line, JUN_2026) == {
        "timestamp": "2003-10-11T22:14:15.003Z",
        "host": "mymachine.example.com",
        "app": "evntslog",
        "pid": None,
        "msgid": "ID47",
        "facility": "local4",
        "severity": "notice",
        "message": "An application event log entry...",
        "structured_data": {
            "exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"},
            "examplePriority@32473": {"class": "high"},
        },
        "format": "rfc5424",
    }


def test_rfc5424_escapes_bom_nil_values_and_numeric_pid():
    line = (
        "<34>1 2003-08-24T05:14:15.000003-07:00 - su 8710 - "
        '[x@1 q="say \\"hi\\"" b="a\\]b" c="back\\\\slash" d="x=y [z"] \ufeffsu root failed'
    ).encode()
    record = parse(line, JUN_2026)
    assert record["host"] is None and record["msgid"] is None and record["pid"] == 8710
    assert (record["facility"], record["severity"]) == ("auth", "crit")
    assert record["structured_data"] == {
        "x@1": {"q": 'say "hi"', "b": "a]b", "c": "back\\slash", "d": "x=y [z"}
    }
    assert record["message"] == "su root failed"


def test_rfc5424_without_message_or_structured_data():
    record = parse(b"<13>1 - host app - - -", JUN_2026)
    assert (record["timestamp"], record["message"], record["structured_data"]) == (None, "", {})


def test_rfc3164_takes_the_year_it_was_received_in():
    record = parse(b"<13>Feb  5 17:32:18 10.0.0.99 sshd[1234]: Accepted publickey", JUN_2026)
    assert record == {
        "timestamp": "2026-02-05T17:32:18Z",
        "host": "10.0.0.99",
        "app": "sshd",
        "pid": 1234,
        "msgid": None,
        "facility": "user",
        "severity": "notice",
        "message": "Accepted publickey",
        "structured_data": {},
        "format": "rfc3164",
    }


def test_rfc3164_from_december_received_in_january_is_last_year():
    record = parse(b"<86>Dec 31 23:59:59 gw cron: job ran", JAN_2027)
    assert record["timestamp"] == "2026-12-31T23:59:59Z"
    assert (record["facility"], record["severity"], record["pid"]) == ("authpriv", "info", None)


def test_rfc3164_without_a_tag():
    record = parse(b"<13>Oct 11 22:14:15 mymachine just a message", JUN_2026)
    assert (record["app"], record["pid"], record["message"]) == (None, None, "just a message")


def test_json_lines_map_common_names_and_keep_the_rest():
    line = (
        b'{"@timestamp":"2024-01-01T00:00:00Z","hostname":"web-1","level":"warn",'
        b'"msg":"slow","ms":812,"path":"/x"}\r\n'
    )
    assert parse(line, JUN_2026) == {
        "timestamp": "2024-01-01T00:00:00Z",
        "host": "web-1",
        "app": None,
        "pid": None,
        "msgid": None,
        "facility": None,
        "severity": "warn",
        "message": "slow",
        "structured_data": {"ms": 812, "path": "/x"},
        "format": "json",
    }


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"", "empty record"),
        (None, "empty record"),
        (b"plain text", "not syslog (<PRI>...) and not a JSON object"),
        (b"<192>1 - h a - - -", "syslog priority 192 is above 191"),
        (b"<13>1 2024-13-45 h a - - -", "RFC 5424 timestamp '2024-13-45' is not RFC 3339"),
        (
            b"<13>1 - h a - - [unclosed",
            "not RFC 5424: expected <PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG",
        ),
        (
            b"<13>1 - h a - -",
            "not RFC 5424: expected <PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG",
        ),
        (b"<13>Foo  5 17:32:18 h x: y", "RFC 3164 month 'Foo' is not a month"),
        (
            b"<13>Feb 30 17:32:18 h x: y",
            "RFC 3164 timestamp is not a date: day is out of range for month",
        ),
        (b"<13>yesterday h x: y", "not RFC 3164: expected <PRI>Mmm dd hh:mm:ss HOST TAG: MSG"),
        (b'{"level": "info"}', "a JSON line needs a message (or msg) field"),
        (b'{"msg": "cut', "not valid JSON: unexpected end of data: line 1 column 13 (char 12)"),
        (b"\xc3\x28 broken utf-8", "not UTF-8: invalid continuation byte at byte 0"),
    ],
)
def test_malformed_lines_say_why(line, reason):
    with pytest.raises(ParseError) as caught:
        parse(line, JUN_2026)
    assert str(caught.value) == reason
