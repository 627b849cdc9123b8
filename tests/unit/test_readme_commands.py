"""Every command the README shows parses, and every verb and make target it names exists.

The README writes commands in usage notation: `[x]` optional, `(a | b)` one of, `...`
repeatable, upper-case placeholders. Each line is expanded into every combination it
allows, with the placeholders filled in, and handed to the CLI's own parser.
"""

from __future__ import annotations

import itertools
import re
import shlex

import pytest

from infra.cli import _parser
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
PLACEHOLDERS = {
    "SPEC": "specs/single-node.yaml",
    "DIR": "build/readme",
    "FILE": "build/readme.json",
    "NAME": "dev",
    "N": "100",
    "URL": "unix:///var/run/docker.sock",
}
GROUP = re.compile(r"\[([^\[\]()]*)\]|\(([^\[\]()]*)\)")


def _after_prefix(texts: list[str]) -> list[str]:
    found = []
    for text in texts:
        command = text.split("#", 1)[0].strip()
        if "python -m infra " in command:
            found.append(command.split("python -m infra ", 1)[1].strip())
    return found


BLOCKS = re.findall(r"^```[^\n]*\n(.*?)^```", README, flags=re.S | re.M)
SPANS = _after_prefix(re.findall(r"`([^`\n]*python -m infra [^`\n]*)`", README))
# Code-block lines are command lines; an inline span with arguments is one too, while
# a span that only names a verb (`python -m infra render`) refers to it.
COMMANDS = _after_prefix([line for block in BLOCKS for line in block.splitlines()]) + [
    span for span in SPANS if " " in span
]


def _expansions(usage: str) -> list[list[str]]:
    """Every argument list a usage line allows: `[a | b]` is a, b or nothing; `(a | b)` a or b."""
    groups = list(GROUP.finditer(usage))
    choices = []
    for group in groups:
        optional, required = group.group(1), group.group(2)
        if optional is not None:
            choices.append([a.strip() for a in optional.split("|")] + [""])
        else:
            choices.append([a.strip() for a in required.split("|")])
    expanded = []
    for picked in itertools.product(*choices):
        text, last = "", 0
        for group, choice in zip(groups, picked, strict=True):
            text += usage[last : group.start()] + choice
            last = group.end()
        text += usage[last:]
        words = [PLACEHOLDERS.get(w, w) for w in shlex.split(text) if w != "..."]
        expanded.append(words)
    return expanded


def test_the_readme_shows_every_verb_and_only_those():
    parser = _parser()
    verbs = next(a for a in parser._actions if a.dest == "verb").choices
    assert {c.split()[0] for c in COMMANDS} == set(verbs)
    assert {s.split()[0] for s in SPANS} <= set(verbs)


@pytest.mark.parametrize("usage", COMMANDS)
def test_every_form_of_a_shown_command_parses(usage):
    for words in _expansions(usage):
        try:
            _parser().parse_args(words)
        except SystemExit as exit_:
            pytest.fail(f"README shows `python -m infra {usage}`; {words} does not parse ({exit_})")


def test_expansion_covers_alternatives_and_optional_groups():
    forms = _expansions("verify (SPEC | --stack NAME) [--junit FILE]")
    assert forms == [
        ["verify", "specs/single-node.yaml", "--junit", "build/readme.json"],
        ["verify", "specs/single-node.yaml"],
        ["verify", "--stack", "dev", "--junit", "build/readme.json"],
        ["verify", "--stack", "dev"],
    ]


def test_a_flag_the_cli_lacks_would_fail_the_parse():
    with pytest.raises(SystemExit):
        _parser().parse_args(_expansions("plan SPEC --no-such-flag")[0])


def test_every_make_target_the_readme_names_exists():
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.M))
    named = set(re.findall(r"\bmake ([a-z][a-z-]*)", README))
    assert named and named <= targets, named - targets
