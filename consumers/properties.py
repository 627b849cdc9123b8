"""Java properties files: reading them as Kafka does (java.util.Properties.load), and
how values are spelled in them.

Written here rather than taken from jproperties because the checker needs what
that library drops: the line of every entry, and every duplicate key (Java keeps
the last one silently, which hides a mistake).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)
# A key runs to the first unescaped '=', ':' or whitespace.
_KEY = re.compile(r"((?:\\.|[^=:\s\\])*)\s*[=:]?\s*(.*)", re.DOTALL)


def to_property(value: object) -> str:
    """How a value is spelled in a properties file (true/false, comma-separated lists)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(to_property(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class Entry:
    line: int
    key: str
    value: str


def _unescape(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        code = match[1]
        if code.startswith("u") and len(code) == 5:
            return chr(int(code[1:], 16))
        return _ESCAPES.get(code, code)

    return _ESCAPE.sub(one, text)


def _logical_lines(text: str):
    """(first line number, logical line): joins lines ending in an odd number of '\\'."""
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.lstrip() if pending else raw.lstrip(" \t\f")
        if not pending and (not line or line[0] in "#!"):
            continue
        if not pending:
            start = number
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2:
            pending += line[:-1]
            continue
        yield start, pending + line
        pending = ""
    if pending:
        yield start, pending


def parse(text: str) -> list[Entry]:
    entries = []
    for number, line in _logical_lines(text):
        match = _KEY.match(line)
        assert match  # the pattern matches any string
        entries.append(Entry(number, _unescape(match[1]), _unescape(match[2])))
    return entries
