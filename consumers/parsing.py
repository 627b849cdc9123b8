"""Log lines -> one normalized record: RFC 5424 and RFC 3164 syslog, and JSON lines.

Every record has the same keys: timestamp (ISO 8601), host, app, pid, msgid,
facility, severity, message, structured_data and format. A line that is none of the
three formats raises ParseError with the reason; the worker sends it to the DLQ.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

FACILITIES = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
    "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
)  # fmt: skip
SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1
    )
}

# RFC 5424: <PRI>1 TIMESTAMP HOST APP PROCID MSGID SD [MSG]; SD is '-' or [..][..] with
# '\]', '\"' and '\\' escaped inside. Loops are unrolled ([^x]*(?:\\.[^x]*)*) for speed.
_QUOTED = r'"[^"\\]*(?:\\.[^"\\]*)*"'
_ELEMENT = rf'\[[^\]\\"]*(?:(?:\\.|{_QUOTED})[^\]\\"]*)*\]'
_RFC5424 = re.compile(
    rf"<(\d{{1,3}})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (-|(?:{_ELEMENT})+)(?: (.*))?", re.DOTALL
)
# One pass over SD: a match opens an element ([id) or is one of its params (name="value").
_SD_TOKEN = re.compile(rf'\[([^\s\]="]+)|([^\s=\]"]+)=({_QUOTED})')
_SD_ESCAPE = re.compile(r'\\(["\\\]])')
_RFC3339_PATTERN = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)"
_RFC3339 = re.compile(_RFC3339_PATTERN)
# The fast path: a valid timestamp and structured data without escapes, in one match.
# Lines it does not take go through _RFC5424 above, which says what is wrong.
_SIMPLE_PARAM = r'[^\s=\]"]+="[^"\\]*"'
_RFC5424_FAST = re.compile(
    rf"<(\d{{1,3}})>1 (-|{_RFC3339_PATTERN}) (\S+) (\S+) (\S+) (\S+) "
    rf'(-|(?:\[[^\s\]="]+(?: {_SIMPLE_PARAM})*\])+)(?: (.*))?',
    re.DOTALL,
)
_FAST_ELEMENT = re.compile(rf'\[([^\s\]="]+)((?: {_SIMPLE_PARAM})*)\]')
_FAST_PARAM = re.compile(r'([^\s=\]"]+)="([^"\\]*)"')
# RFC 3164: <PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG (the tag and pid are optional).
_RFC3164 = re.compile(
    r"<(\d{1,3})>([A-Z][a-z]{2}) ([ \d]\d) (\d\d:\d\d:\d\d) (\S+) "
    r"(?:([^\s\[\]:]+)(?:\[([^\]]*)\])?: ?)?(.*)",
    re.DOTALL,
)
# JSON field names that mean the same as a normalized key, first match wins.
_JSON_ALIASES = {
    "timestamp": ("timestamp", "@timestamp", "time", "ts"),
    "host": ("host", "hostname"),
    "app": ("app", "appname", "program", "service"),
    "pid": ("pid", "procid"),
    "msgid": ("msgid",),
    "facility": ("facility",),
    "severity": ("severity", "level"),
    "message": ("message", "msg"),
}


class ParseError(ValueError):
    """A line that no supported format accepts; the message says why."""


def _priority(text: str) -> tuple[str, str]:
    pri = int(text)
    if pri > 191:
        raise ParseError(f"syslog priority {pri} is above 191")
    return FACILITIES[pri >> 3], SEVERITIES[pri & 7]


def _nil(text: str) -> str | None:
    return None if text == "-" else text


def _pid(text: str | None) -> int | str | None:
    """A PROCID that is a process id as a number, anything else as its text.

    ASCII digits only (str.isdigit() also takes '²', which int() refuses) and at most 10 of
    them: process ids are 32-bit, and JSON output must not carry integers beyond 64 bits."""
    if text and len(text) <= 10 and text.isascii() and text.isdigit():
        return int(text)
    return text


def _structured_data(text: str) -> dict[str, dict[str, str]]:
    elements: dict[str, dict[str, str]] = {}
    params: dict[str, str] = {}
    if text == "-":
        return elements
    for sd_id, name, quoted in _SD_TOKEN.findall(text):
        if sd_id:
            params = elements.setdefault(sd_id, {})
        else:
            value = quoted[1:-1]
            params[name] = _SD_ESCAPE.sub(r"\1", value) if "\\" in value else value
    return elements


def _rfc5424(line: str) -> dict[str, Any]:
    fast = _RFC5424_FAST.fullmatch(line)
    if fast is None:
        return _rfc5424_checked(line)
    pri, stamp, host, app, procid, msgid, sd, message = fast.groups()
    pri_value = int(pri)
    if pri_value > 191:
        raise ParseError(f"syslog priority {pri_value} is above 191")
    if message and message[0] == "\ufeff":
        message = message[1:]
    return {
        "timestamp": None if stamp == "-" else stamp,
        "host": None if host == "-" else host,
        "app": None if app == "-" else app,
        "pid": None if procid == "-" else _pid(procid),
        "msgid": None if msgid == "-" else msgid,
        "facility": FACILITIES[pri_value >> 3],
        "severity": SEVERITIES[pri_value & 7],
        "message": message or "",
        "structured_data": {}
        if sd == "-"
        else {i: dict(_FAST_PARAM.findall(ps)) for i, ps in _FAST_ELEMENT.findall(sd)},
        "format": "rfc5424",
    }


def _rfc5424_checked(line: str) -> dict[str, Any]:
    """Lines off the fast path: escapes in structured data, or something wrong to name."""
    match = _RFC5424.fullmatch(line)
    if not match:
        raise ParseError("not RFC 5424: expected <PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG")
    pri, stamp, host, app, procid, msgid, sd, message = match.groups()
    if stamp != "-" and not _RFC3339.fullmatch(stamp):
        raise ParseError(f"RFC 5424 timestamp {stamp!r} is not RFC 3339")
    facility, severity = _priority(pri)
    if message and message[0] == "\ufeff":
        message = message[1:]  # the BOM RFC 5424 allows before a UTF-8 message
    return {
        "timestamp": _nil(stamp),
        "host": _nil(host),
        "app": _nil(app),
        "pid": _pid(_nil(procid)),
        "msgid": _nil(msgid),
        "facility": facility,
        "severity": severity,
        "message": message or "",
        "structured_data": _structured_data(sd),
        "format": "rfc5424",
    }


def _rfc3164(line: str, received: datetime) -> dict[str, Any]:
    match = _RFC3164.fullmatch(line)
    if not match:
        raise ParseError("not RFC 3164: expected <PRI>Mmm dd hh:mm:ss HOST TAG: MSG")
    pri, month, day, clock, host, tag, pid, message = match.groups()
    if month not in _MONTHS:
        raise ParseError(f"RFC 3164 month {month!r} is not a month")
    hour, minute, second = (int(x) for x in clock.split(":"))
    try:
        # RFC 3164 has no year: take the year the record was received in, or the one
        # before when that would put the line more than a day in the future.
        stamp = datetime(received.year, _MONTHS[month], int(day), hour, minute, second, tzinfo=UTC)
        if stamp - received > timedelta(days=1):
            stamp = stamp.replace(year=received.year - 1)
    except ValueError as err:
        raise ParseError(f"RFC 3164 timestamp is not a date: {err}") from None
    facility, severity = _priority(pri)
    return {
        "timestamp": stamp.isoformat().replace("+00:00", "Z"),
        "host": host,
        "app": tag,
        "pid": _pid(pid),
        "msgid": None,
        "facility": facility,
        "severity": severity,
        "message": message,
        "structured_data": {},
        "format": "rfc3164",
    }


def _json(line: str) -> dict[str, Any]:
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as err:
        raise ParseError(f"not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ParseError(f"a JSON line must be an object, got {type(data).__name__}")
    record: dict[str, Any] = {}
    for key, aliases in _JSON_ALIASES.items():
        record[key] = next((data.pop(a) for a in aliases if a in data), None)
    if record["message"] is None:
        raise ParseError("a JSON line needs a message (or msg) field")
    record["structured_data"] = data  # every field without a normalized name
    record["format"] = "json"
    return record


def parse(value: bytes | None, received_ms: int) -> dict[str, Any]:
    """One log line (a Kafka record value) -> the normalized record."""
    if not value:
        raise ParseError("empty record")
    try:
        line = value.decode()
    except UnicodeDecodeError as err:
        raise ParseError(f"not UTF-8: {err.reason} at byte {err.start}") from None
    line = line.rstrip("\r\n")
    first = line[:1]
    if first == "<":
        close = line.find(">", 1, 5)
        if close > 1 and line[close + 1 : close + 3] == "1 ":
            return _rfc5424(line)
        return _rfc3164(line, datetime.fromtimestamp(received_ms / 1000, UTC))
    if first == "{":
        return _json(line)
    raise ParseError("not syslog (<PRI>...) and not a JSON object")
