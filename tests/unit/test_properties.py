"""The properties reader follows java.util.Properties.load where our files can reach it."""

from __future__ import annotations

from consumers.properties import Entry, parse


def test_separators_comments_and_blank_lines():
    text = "# comment\n! also a comment\n\na=1\nb : 2\nc 3\n  d=4\ne=\n"
    assert [(e.key, e.value) for e in parse(text)] == [
        ("a", "1"),
        ("b", "2"),
        ("c", "3"),
        ("d", "4"),
        ("e", ""),
    ]


def test_continuation_lines_join_and_keep_the_first_line_number():
    text = "x=1\nlisteners=INTERNAL://:9092,\\\n    EXTERNAL://:9094\ny=2\n"
    assert parse(text) == [
        Entry(1, "x", "1"),
        Entry(2, "listeners", "INTERNAL://:9092,EXTERNAL://:9094"),
        Entry(4, "y", "2"),
    ]


def test_escapes_and_an_even_number_of_backslashes_is_not_a_continuation():
    text = "path=C:\\\\data\\\\\nkey\\=with\\:seps=v\\tw\nu=\\u00e9\n"
    assert [(e.key, e.value) for e in parse(text)] == [
        ("path", "C:\\data\\"),
        ("key=with:seps", "v\tw"),
        ("u", "é"),
    ]


def test_duplicates_are_kept_for_the_checker_to_see():
    assert [e.line for e in parse("a=1\na=2\n")] == [1, 2]
